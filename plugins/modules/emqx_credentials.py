#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_credentials
short_description: Give a running EMQX 4.4.4 cluster the management application secret and dashboard password it is configured with
version_added: 1.0.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - EMQX 4.4.4 stores the management API's default application and the dashboard's users in mnesia when the
    cluster is first made, and never updates them from C(emqx_management.conf) or C(emqx_dashboard.conf)
    again. Changing C(management.default_application.secret) or C(dashboard.default_user.password) in the
    files alone therefore changes nothing, and the API goes on asking for the old secret.
  - This module reads what the cluster stores (through C(emqx eval) in one node's container) and, where it
    differs, sets the secret (C(emqx_mgmt_auth:force_add_app/6)) and the password
    (C(emqx_dashboard_admin:change_password/2)). Every node of the cluster sees the change at once; nothing
    restarts.
  - The new values reach the node through a file in its data directory, readable by the node's user only and
    deleted at once, never through a command line, which the host's other users could read.
  - Creates the application or the dashboard user when the cluster has none of that name.
attributes:
  check_mode:
    support: full
    description: Reads what the cluster stores and reports whether it would change.
  diff_mode:
    support: full
    description: Says which credential changes, never its value.
extends_documentation_fragment:
  - mqttaction.emqx.emqx.cli
options:
  container:
    required: true
  data_dir:
    description:
      - The node's data directory on this host, mounted at C(/opt/emqx/data) in its container (the C(emqx)
        role's C(<emqx_base_dir>/<node>/data)).
    type: path
    required: true
  app_id:
    description: The management application (C(management.default_application.id)).
    type: str
    required: true
  app_secret:
    description: Its secret.
    type: str
    required: true
  dashboard_username:
    description: The dashboard user (C(dashboard.default_user.login)).
    type: str
    default: admin
  dashboard_password:
    description: Its password.
    type: str
    required: true
  api_url:
    description:
      - The node's management API (for example V(http://127.0.0.1:8081)). With O(dashboard_url), the module first
        asks both with the given credentials; when both accept them, nothing differs and no C(emqx eval) runs
        (an eval starts an Erlang VM in the container, about a second).
      - Anything but acceptance (a refusal, no answer) falls back to reading what the cluster stores.
    type: str
  dashboard_url:
    description: The node's dashboard (for example V(http://127.0.0.1:18083)), asked with the dashboard user.
    type: str
  ca_path:
    description: The CA that signed the node's certificate, when O(api_url) is https.
    type: path
"""

EXAMPLES = r"""
- name: Give the running cluster the secrets of the inventory
  mqttaction.emqx.emqx_credentials:
    container: emqx
    data_dir: /opt/mqttaction-emqx/emqx/data
    app_id: mqttaction
    app_secret: "{{ vault_emqx_management_app_secret }}"
    dashboard_password: "{{ vault_emqx_dashboard_admin_password }}"
    api_url: http://127.0.0.1:8081
    dashboard_url: http://127.0.0.1:18083
  run_once: true
  no_log: true
"""

RETURN = r"""
app_secret_changed:
  description: Whether the application's secret was (or, in check mode, would be) set.
  returned: always
  type: bool
dashboard_password_changed:
  description: Whether the dashboard user's password was (or would be) set.
  returned: always
  type: bool
"""

import hashlib
import hmac
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import ApiError, EmqxApi
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import CtlError, EmqxCtl, cli_argument_spec

CONTAINER_DATA = "/opt/emqx/data"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def read_expression(app_id, username):
    return ('case emqx_mgmt_auth:lookup_app(<<"%s">>) of '
            '{_, S, _, _, _, _} -> io:format("app ~s~n", [binary:encode_hex(S)]); _ -> io:format("app none~n") end, '
            'case mnesia:dirty_read(mqtt_admin, <<"%s">>) of '
            '[{mqtt_admin, _, P, _}] -> io:format("admin ~s~n", [binary:encode_hex(P)]); _ -> io:format("admin none~n") end.'
            % (app_id, username))


def parse_stored(text):
    """{'app': bytes or None, 'admin': bytes or None} from what read_expression prints."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^(app|admin) (none|[0-9A-Fa-f]*)$", line.strip())
        if match:
            found[match.group(1)] = None if match.group(2) == "none" else bytes.fromhex(match.group(2))
    if set(found) != {"app", "admin"}:
        raise CtlError("emqx eval did not print the stored credentials: %r" % text[:200])
    return found


def dashboard_password_matches(stored, password):
    """4.4.4's dashboard stores 4 salt bytes and md5(salt ++ password)."""
    if stored is None or len(stored) != 20:
        return False
    return hmac.compare_digest(hashlib.md5(stored[:4] + password.encode("utf-8")).digest(), stored[4:])


def set_app_expression(path, app_id):
    return ('F = "%s", {ok, S} = file:read_file(F), ok = file:delete(F), '
            'case emqx_mgmt_auth:lookup_app(<<"%s">>) of '
            '{Id, _, N, D, St, E} -> emqx_mgmt_auth:force_add_app(Id, N, S, D, St, E); '
            '_ -> emqx_mgmt_auth:force_add_app(<<"%s">>, <<"%s">>, S, <<"made by mqttaction.emqx">>, true, undefined) end.'
            % (path, app_id, app_id, app_id))


def set_admin_expression(path, username, exists):
    action = ('emqx_dashboard_admin:change_password(<<"%s">>, P)' % username if exists
              else 'emqx_dashboard_admin:add_user(<<"%s">>, P, <<"administrator">>)' % username)
    return 'F = "%s", {ok, P} = file:read_file(F), ok = file:delete(F), %s.' % (path, action)


def hand_over(data_dir, value):
    """A file of the node's data directory holding value, owned by the directory's owner, mode 0600.

    Returns (host path, path in the container)."""
    name = ".mqttaction-handoff-%s" % os.urandom(8).hex()
    host_path = os.path.join(data_dir, name)
    owner = os.stat(data_dir)
    fd = os.open(host_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchown(fd, owner.st_uid, owner.st_gid)
        os.write(fd, value.encode("utf-8"))
    finally:
        os.close(fd)
    return host_path, "%s/%s" % (CONTAINER_DATA, name)


def apply(ctl, data_dir, value, expression_for):
    host_path, node_path = hand_over(data_dir, value)
    try:
        said = ctl.eval(expression_for(node_path))
    finally:
        if os.path.exists(host_path):
            os.remove(host_path)
    if not re.search(r"(^|\n)ok\s*$", said.strip()):
        raise CtlError("the node answered %r" % said.strip()[:200])


def accepted(url, username, password, ca_path=None):
    """Whether an API of the node (management or dashboard: each knows its own users only) takes these credentials."""
    try:
        EmqxApi(url=url, username=username, password=password, timeout=5, ca_path=ca_path).get("brokers")
    except ApiError:
        return False
    return True


def main():
    argument_spec = dict(
        data_dir=dict(type="path", required=True),
        app_id=dict(type="str", required=True),
        app_secret=dict(type="str", required=True, no_log=True),
        dashboard_username=dict(type="str", default="admin"),
        dashboard_password=dict(type="str", required=True, no_log=True),
        api_url=dict(type="str"),
        dashboard_url=dict(type="str"),
        ca_path=dict(type="path"),
    )
    argument_spec.update(cli_argument_spec())
    argument_spec["container"]["required"] = True
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    for option in ("app_id", "dashboard_username"):
        if not _NAME.match(params[option]):
            module.fail_json(msg="%s must be letters, digits and . _ @ - only, not %r" % (option, params[option]))
    if not os.path.isdir(params["data_dir"]):
        module.fail_json(msg="data_dir %s is not a directory on this host" % params["data_dir"])

    if params["api_url"] and params["dashboard_url"] \
            and accepted(params["api_url"], params["app_id"], params["app_secret"], params["ca_path"]) \
            and accepted(params["dashboard_url"], params["dashboard_username"], params["dashboard_password"]):
        module.exit_json(changed=False, app_secret_changed=False, dashboard_password_changed=False)

    ctl = EmqxCtl(module, params["container"], params["docker_cli"])
    try:
        stored = parse_stored(ctl.eval(read_expression(params["app_id"], params["dashboard_username"])))
    except CtlError as exc:
        module.fail_json(msg="Could not read the stored credentials: %s" % exc)
    app_changes = stored["app"] is None or not hmac.compare_digest(stored["app"], params["app_secret"].encode("utf-8"))
    admin_changes = not dashboard_password_matches(stored["admin"], params["dashboard_password"])
    result = dict(changed=app_changes or admin_changes, app_secret_changed=app_changes,
                  dashboard_password_changed=admin_changes)
    if module._diff:
        result["diff"] = {"before": "", "after": "".join(
            ["management application %s: secret %s\n" % (params["app_id"], "set" if stored["app"] is None else "changes")
             if app_changes else "",
             "dashboard user %s: password %s\n" % (params["dashboard_username"],
                                                   "set" if stored["admin"] is None else "changes")
             if admin_changes else ""])}
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    try:
        if app_changes:
            apply(ctl, params["data_dir"], params["app_secret"],
                  lambda path: set_app_expression(path, params["app_id"]))
        if admin_changes:
            apply(ctl, params["data_dir"], params["dashboard_password"],
                  lambda path: set_admin_expression(path, params["dashboard_username"], stored["admin"] is not None))
        after = parse_stored(ctl.eval(read_expression(params["app_id"], params["dashboard_username"])))
    except (CtlError, OSError) as exc:
        module.fail_json(msg="Setting the credentials failed: %s" % exc, **result)
    if after["app"] != params["app_secret"].encode("utf-8") \
            or not dashboard_password_matches(after["admin"], params["dashboard_password"]):
        module.fail_json(msg="The cluster does not store the credentials it was given", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
