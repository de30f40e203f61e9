#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_auth_mnesia
short_description: MQTT users and ACL rules that EMQX 4.4.4 keeps itself (emqx_auth_mnesia)
version_added: 1.0.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Makes the MQTT users and ACL rules of EMQX 4.4.4's built-in authentication (the C(emqx_auth_mnesia)
    plugin) those listed. They live in the cluster's mnesia tables, so one run against one node serves
    the whole cluster, and they survive restarts and upgrades with the nodes' data directories.
  - A user whose stored password already accepts the one listed is left alone (the stored value is read
    with C(emqx eval) in the node's container and checked here), so a re-run changes nothing. Passwords
    travel only in the bodies of management API requests, and are never returned or logged.
  - ACL rules of a login (a username, a client ID, or every client) are written again only when they
    differ from those listed, in content or order. 4.4.4 checks a client's rules for its client ID
    first, then those for its username, then those for every client; within each, the rule listed first
    is checked first. A rule that matches decides; with none, C(acl.conf) and C(acl_nomatch) do.
  - With O(exclusive=true), users and the rules of logins that are not listed are removed.
extends_documentation_fragment:
  - mqttaction.emqx.emqx.action_group
  - mqttaction.emqx.emqx.api
  - mqttaction.emqx.emqx.cli
attributes:
  check_mode:
    support: full
    description: >-
      Reads the users and rules and reports what would change; on a host where the node does not run yet
      (check mode before the first deployment), reports every listed user and rule as to be created.
  diff_mode:
    support: full
    description: Shows users (names only, and which passwords change) and rules before and after.
options:
  container:
    required: true
  users:
    description: MQTT users.
    type: list
    elements: dict
    default: []
    suboptions:
      username:
        description: The MQTT username.
        type: str
        required: true
      password:
        description: The password, in clear; only 4.4.4's salted hash of it is stored.
        type: str
        required: true
  acl:
    description: ACL rules; for each login, in the order they are checked.
    type: list
    elements: dict
    default: []
    suboptions:
      permission:
        description: Allow or deny.
        type: str
        choices: [allow, deny]
        default: allow
      action:
        description: What the rule is about.
        type: str
        choices: [publish, subscribe, pubsub]
        required: true
      topic:
        description: A topic filter (C(+) and C(#) wildcards).
        type: str
        required: true
      username:
        description: The user the rule is for; C($all), or neither this nor O(acl[].clientid), is every client.
        type: str
      clientid:
        description: The client ID the rule is for.
        type: str
  exclusive:
    description: Remove users, and the rules of logins, that are not listed.
    type: bool
    default: false
  password_hash:
    description: C(auth.mnesia.password_hash) of the nodes, the hash 4.4.4 stores passwords with.
    type: str
    choices: [md5, sha, sha256, sha512]
    default: sha256
notes:
  - Runs on the host of one node of the cluster (the API's default address is that host's published port 8081).
"""

EXAMPLES = r"""
- name: MQTT users and rules of the cluster, kept by EMQX itself
  mqttaction.emqx.emqx_auth_mnesia:
    container: emqx
    api_username: mqttaction
    api_password: "{{ vault_emqx_management_app_secret }}"
    users:
      - {username: sensor1, password: "{{ vault_mqtt_sensor1_password }}"}
    acl:
      - {permission: deny, action: subscribe, topic: "sensors/secret/#", username: sensor1}
      - {action: pubsub, topic: "sensors/%u/#", username: sensor1}
    exclusive: true
  run_once: true
  no_log: true
"""

RETURN = r"""
users_created:
  description: Users created (or, in check mode, to be created).
  returned: always
  type: list
  elements: str
users_updated:
  description: Users whose password was set again because the stored one no longer matched.
  returned: always
  type: list
  elements: str
users_removed:
  description: Users removed (O(exclusive=true)).
  returned: always
  type: list
  elements: str
acl_written:
  description: Logins whose rules were written anew, as C(username alice), C(clientid c1) or C(all $all).
  returned: always
  type: list
  elements: str
acl_removed:
  description: Logins whose rules were removed (O(exclusive=true)).
  returned: always
  type: list
  elements: str
"""

import time
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import ApiError, EmqxApi, api_argument_spec
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_auth_mnesia import (
    describe_acl,
    existing_acl,
    plan_acl,
    plan_users,
    rule_errors,
    wanted_acl,
)
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import CtlError, EmqxCtl, cli_argument_spec

# Every user's login and stored password, both hex, one per line: nothing secret
# goes into the command line, and no stored value leaves this module.
# Without the table (the plugin does not run) it prints NOTABLE instead.
READ_STORED = ('case ets:info(emqx_user, size) of undefined -> io:format("NOTABLE~n"); _ -> '
               'lists:foreach(fun({emqx_user, {username, U}, P, _}) -> '
               'io:format("~s ~s~n", [binary:encode_hex(U), binary:encode_hex(P)]); (_) -> ok end, '
               'ets:tab2list(emqx_user)) end.')
PAGE = 10000
API_PATHS = {"username": "acl/username", "clientid": "acl/clientid", "all": "acl/$all"}


def parse_stored(text):
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and all(part and all(c in "0123456789ABCDEFabcdef" for c in part) for part in parts):
            found[bytes.fromhex(parts[0]).decode("utf-8")] = bytes.fromhex(parts[1])
    return found


def paged(api, path):
    items, page = [], 1
    while True:
        separator = "&" if "?" in path else "?"
        data = api.call("GET", "%s%s_page=%d&_limit=%d" % (path, separator, page, PAGE))
        items.extend(data or [])
        if not data or len(data) < PAGE:
            return items
        page += 1


def login_path(login):
    kind, who = login
    if kind == "all":
        return "acl/$all"
    return "acl/%s/%s" % (kind, quote(who, safe=""))


def read_acl(api):
    """{login: rules} of every login with rules, each in the order 4.4.4 checks them."""
    logins = set()
    for kind, path in API_PATHS.items():
        for entry in paged(api, path):
            logins.add((kind, entry.get(kind, "$all") if kind != "all" else "$all"))
    acl = {}
    for login in logins:
        entries = api.call("GET", login_path(login)) if login[0] != "all" else paged(api, "acl/$all")
        acl[login] = existing_acl(entries)
    return acl


def write_acl(api, login, rules, existing):
    """Replace a login's rules: remove its topics, then add the rules last one first, a millisecond apart."""
    kind, who = login
    for topic in sorted({topic for action in existing.values() for topic, _access in action}):
        api.call("DELETE", "%s/topic/%s" % (login_path(login), quote(topic, safe="")))
    # 4.4.4 checks the newest rule of a login first: write the last one first.
    for action in ("pub", "sub"):
        for topic, access in reversed(rules[action]):
            body = {"topic": topic, "action": action, "access": access}
            if kind != "all":
                body[kind] = who
            api.call("POST", "acl", body)
            time.sleep(0.002)  # rules are ordered by their creation time, in milliseconds


def remove_acl(api, login, existing):
    for topic in sorted({topic for action in existing.values() for topic, _access in action}):
        api.call("DELETE", "%s/topic/%s" % (login_path(login), quote(topic, safe="")))


def label(login):
    return "%s %s" % login


def main():
    argument_spec = dict(
        users=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
            username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True))),
        acl=dict(type="list", elements="dict", default=[], options=dict(
            permission=dict(type="str", choices=["allow", "deny"], default="allow"),
            action=dict(type="str", choices=["publish", "subscribe", "pubsub"], required=True),
            topic=dict(type="str", required=True),
            username=dict(type="str"),
            clientid=dict(type="str"))),
        exclusive=dict(type="bool", default=False),
        password_hash=dict(type="str", choices=["md5", "sha", "sha256", "sha512"], default="sha256", no_log=False),
    )
    argument_spec.update(api_argument_spec())
    argument_spec.update(cli_argument_spec())
    argument_spec["container"]["required"] = True
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    errors = rule_errors(params["acl"])
    names = [user["username"] for user in params["users"]]
    errors += ["users: %s is listed twice" % name for name in sorted(set(names)) if names.count(name) > 1]
    if errors:
        module.fail_json(msg="; ".join(errors))
    wanted_users = dict((user["username"], user["password"]) for user in params["users"])
    wanted = wanted_acl(params["acl"])

    api = EmqxApi.from_module_params(params)
    ctl = EmqxCtl(module, params["container"], params["docker_cli"])
    try:
        printed = ctl.eval(READ_STORED)
        if "NOTABLE" in printed.split():
            module.fail_json(msg="The emqx_auth_mnesia plugin does not run on the node of container %s: load it "
                                 "(the emqx role does when emqx_auth_mnesia_enabled is true) and wait until it is "
                                 "active" % params["container"])
        stored = parse_stored(printed)
        existing = read_acl(api)
    except (ApiError, CtlError) as exc:
        if module.check_mode and getattr(exc, "transient", False):
            # Check mode before the first deployment: nothing runs yet, so everything is to come.
            stored, existing = {}, {}
            module.warn("The node does not answer (%s); check mode reports every user and rule as new." % exc)
        else:
            module.fail_json(msg="Could not read the users and rules: %s" % exc)

    create, update, remove = plan_users(wanted_users, stored, params["password_hash"], params["exclusive"])
    rewrite, drop = plan_acl(wanted, existing, params["exclusive"])
    result = dict(changed=bool(create or update or remove or rewrite or drop), users_created=create,
                  users_updated=update, users_removed=remove, acl_written=[label(login) for login in rewrite],
                  acl_removed=[label(login) for login in drop])

    if result["changed"] and not module.check_mode:
        try:
            for name in create:
                api.call("POST", "auth_username", {"username": name, "password": wanted_users[name]})
            for name in update:
                api.call("PUT", "auth_username/%s" % quote(name, safe=""), {"password": wanted_users[name]})
            for name in remove:
                api.call("DELETE", "auth_username/%s" % quote(name, safe=""))
            for login in rewrite:
                write_acl(api, login, wanted[login], existing.get(login, {"pub": [], "sub": []}))
            for login in drop:
                remove_acl(api, login, existing[login])
        except ApiError as exc:
            module.fail_json(msg="Changing the users and rules failed part way: %s" % exc, **result)

    if module._diff:
        after_users = sorted((set(stored) - set(remove)) | set(create))
        after_acl = dict((login, rules) for login, rules in existing.items() if login not in drop)
        after_acl.update(wanted)
        result["diff"] = [
            {"before_header": "users", "after_header": "users",
             "before": "".join("%s\n" % name for name in sorted(stored)),
             "after": "".join("%s%s\n" % (name, " (password changes)" if name in update else "")
                              for name in after_users)},
            {"before_header": "acl", "after_header": "acl",
             "before": "".join("%s\n" % line for line in describe_acl(existing)),
             "after": "".join("%s\n" % line for line in describe_acl(after_acl))},
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
