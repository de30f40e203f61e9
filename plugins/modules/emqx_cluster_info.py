#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_cluster_info
short_description: Read, check and wait for the membership of an EMQX 4.4.4 cluster
version_added: 0.1.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Reads who is in the cluster, as one node sees it, through the management API
    (C(GET /api/v4/nodes)), through C(emqx_ctl cluster status) inside the node's container,
    or both.
  - With O(expected_nodes) it compares what runs with what should, polls until they are equal
    or O(wait_timeout) runs out, and fails with a message that names the missing and unexpected
    nodes and the likely causes (cookie, ports, node host, seeds).
  - "The two sources differ, because 4.4.4 differs: the API lists the running nodes only,
    with details (version, uptime, connections, status), and cannot see a member that is down;
    C(emqx_ctl) shows mnesia's view: running and stopped members, without details. O(source=both)
    combines them: a node runs when C(emqx_ctl) says so and the API lists it healthy."
  - "With O(source=api) and O(container), a wait that ends without the expected nodes asks
    C(emqx_ctl) once (each call starts an Erlang VM in the container, about a second of CPU),
    so that the message tells members that are down from nodes that never joined."
  - A node the API lists with an C(error) entry, or with a status other than C(Running), is
    unhealthy and does not count as running.
extends_documentation_fragment:
  - mqttaction.emqx.emqx.action_group
  - mqttaction.emqx.emqx.api
  - mqttaction.emqx.emqx.cli
  - mqttaction.emqx.emqx.wait
options:
  source:
    description:
      - Where to read membership. V(api) needs O(api_username) and O(api_password); V(cli)
        needs O(container); V(both) needs all three.
    type: str
    choices: [api, cli, both]
    default: api
  expected_nodes:
    description:
      - The node names (C(name@host)) that should be running in the cluster, no more and no less.
      - Without it the module reports and never waits or fails on membership.
    type: list
    elements: str
  fail_on_mismatch:
    description:
      - Fail when the running nodes are not O(expected_nodes) once O(wait_timeout) has passed.
      - V(false) only reports, in RV(match), RV(missing_nodes) and RV(unexpected_nodes).
      - Members that are down but not expected (left behind by a removed host, until
        C(cluster.autoclean) drops them) do not make a mismatch; they are in RV(stopped_nodes).
    type: bool
    default: true
  node:
    description:
      - The name (C(name@host)) of the node O(api_url) belongs to. Needed with O(expected_plugins).
      - When it runs, its listeners are returned too (RV(listeners)), read once the wait is over.
    type: str
  expected_plugins:
    description:
      - Plugins that must be active on O(node), read through the API
        (C(GET /api/v4/nodes/<node>/plugins)), so O(source) must be V(api) or V(both).
      - "4.4.4 serves the API before it has loaded every plugin, and it starts without a plugin it cannot
        configure: with this option the wait for O(expected_nodes) ends only once O(node) also runs
        every one of them, and the module fails naming those that are not active (with
        O(fail_on_mismatch=true))."
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: The module only reads, so it does the same in check mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to compare.
notes:
  - The node's C(emqx_management) plugin must run; 4.4.4 registers the C(cluster) commands of
    C(emqx_ctl) and serves the API only with it.
  - The module runs on the host of the node it asks. Docker's CLI must be there for the
    C(cli) source; the API is reached over HTTP from that host.
seealso:
  - module: mqttaction.emqx.emqx_cluster
"""

EXAMPLES = r"""
- name: Fail unless exactly the three inventory nodes run, waiting up to two minutes
  mqttaction.emqx.emqx_cluster_info:
    source: both
    container: emqx
    api_username: "{{ emqx_management_app_id }}"
    api_password: "{{ emqx_management_app_secret }}"
    expected_nodes:
      - emqx@10.0.0.1
      - emqx@10.0.0.2
      - emqx@10.0.0.3
    wait_timeout: 120

- name: Read the membership through the API of a node published on 28081, only report
  mqttaction.emqx.emqx_cluster_info:
    api_url: http://127.0.0.1:28081
    api_username: mqttaction
    api_password: "{{ vault_emqx_api_secret }}"
    expected_nodes: "{{ groups['emqx'] | map('regex_replace', '^', 'emqx@') | list }}"
    wait_timeout: 0
    fail_on_mismatch: false
  register: membership

- name: Wait until the node restarted on this host is back in the cluster with its plugins active
  mqttaction.emqx.emqx_cluster_info:
    api_url: http://127.0.0.1:8081
    api_username: mqttaction
    api_password: "{{ vault_emqx_api_secret }}"
    expected_nodes: [emqx@10.0.0.1, emqx@10.0.0.2, emqx@10.0.0.3]
    node: emqx@10.0.0.1
    expected_plugins: [emqx_management, emqx_dashboard, emqx_auth_mnesia]
    wait_timeout: 120

- name: List members that are down (only emqx_ctl sees them)
  mqttaction.emqx.emqx_cluster_info:
    source: cli
    container: emqx
  register: members

- name: Show them
  ansible.builtin.debug:
    msg: "Down: {{ members.stopped_nodes }}"

- name: Ask the API over https with the site's CA
  mqttaction.emqx.emqx_cluster_info:
    api_url: https://127.0.0.1:8081
    ca_path: /etc/ssl/mqtt/ca.pem
    api_username: mqttaction
    api_password: "{{ vault_emqx_api_secret }}"
"""

RETURN = r"""
running_nodes:
  description:
    - Nodes running in the cluster, sorted. With V(both), only nodes C(emqx_ctl) lists running
      and the API lists healthy.
  returned: success
  type: list
  elements: str
  sample: [emqx@10.0.0.1, emqx@10.0.0.2]
stopped_nodes:
  description:
    - Members that are down (mnesia C(db_nodes) that do not run), sorted.
    - V(null) with O(source=api), which cannot see them, unless a wait ended without O(expected_nodes)
      and O(container) let C(emqx_ctl) be asked.
  returned: success
  type: list
  elements: str
  sample: [emqx@10.0.0.3]
unhealthy_nodes:
  description: Nodes the API lists with an C(error) or a status other than C(Running), or that only one source lists.
  returned: success
  type: list
  elements: str
  sample: []
missing_nodes:
  description: Expected nodes that are not running.
  returned: when O(expected_nodes) is given
  type: list
  elements: str
  sample: [emqx@10.0.0.3]
unexpected_nodes:
  description:
    - Nodes that run, healthy or not, but are not expected.
    - A member that is down is not counted here; it is in RV(stopped_nodes).
  returned: when O(expected_nodes) is given
  type: list
  elements: str
  sample: []
match:
  description: Whether the running nodes are exactly O(expected_nodes).
  returned: when O(expected_nodes) is given
  type: bool
  sample: true
mismatch:
  description:
    - Why the running nodes are not O(expected_nodes), with the likely causes; empty when they are.
    - The message the module fails with, returned also with O(fail_on_mismatch=false).
  returned: when O(expected_nodes) is given
  type: str
  sample: ""
nodes:
  description:
    - Details per node from the API, keyed by node name, as 4.4.4 returns them (C(node_status),
      C(version), C(uptime), C(connections), C(otp_release), C(memory_used), C(memory_total),
      C(max_fds), C(process_used), C(process_available), C(load1), C(load5), C(load15)), plus
      C(healthy), and C(error) for a node that failed.
    - Empty with O(source=cli).
  returned: success
  type: dict
  sample:
    emqx@10.0.0.1:
      node_status: Running
      version: 4.4.4
      uptime: 2 minutes, 21 seconds
      connections: 1520
      healthy: true
cli_output:
  description: What C(emqx_ctl cluster status) printed, last time it was asked.
  returned: when O(source) is V(cli) or V(both)
  type: str
  sample: "Cluster status: #{running_nodes => ['emqx@10.0.0.1'],stopped_nodes => []}"
inactive_plugins:
  description: Plugins of O(expected_plugins) that O(node) did not run when last asked, sorted.
  returned: when O(expected_plugins) is given
  type: list
  elements: str
  sample: [emqx_auth_mysql]
listeners:
  description:
    - The listeners of O(node) as 4.4.4's API lists them (C(GET /api/v4/nodes/<node>/listeners)), with
      C(identifier), C(protocol), C(listen_on), C(acceptors), C(max_conns) and C(current_conns).
    - "What runs: the official image's entrypoint variables override C(emqx.conf)."
  returned: when O(node) is given and runs
  type: list
  elements: dict
  sample: [{identifier: "mqtt:tcp:external", protocol: "mqtt:tcp", listen_on: "0.0.0.0:1883", acceptors: 64,
            max_conns: 1024000, current_conns: 0}]
attempts:
  description: How many times the membership was read.
  returned: always
  type: int
  sample: 3
elapsed:
  description: Seconds spent reading and waiting.
  returned: always
  type: float
  sample: 4.02
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import EmqxApi, api_argument_spec
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import (
    CliOutputError,
    EmqxCtl,
    cli_argument_spec,
    parse_cluster_status,
)
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_errors import EmqxError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_membership import (
    api_view,
    cli_view,
    combined_view,
    compare,
    is_node_name,
    mismatch_message,
    wait_argument_spec,
    wait_until,
)


def membership_reader(module, api):
    """A function that reads one view from the chosen source (api: an EmqxApi, or None for the cli
    source), and what it last printed.

    With expected_plugins, a view in which the asked node runs also holds its
    plugins (name to active).
    """
    source = module.params["source"]
    node, plugins = module.params["node"], module.params["expected_plugins"]
    ctl = EmqxCtl(module, module.params["container"], module.params["docker_cli"]) if source != "api" else None
    printed = {}

    def read():
        cli = None
        if ctl is not None:
            printed["cli_output"] = ctl.run("cluster", "status")
            cli = cli_view(parse_cluster_status(printed["cli_output"]))
        api_nodes = api_view(api.nodes()) if api is not None else None
        view = api_nodes if cli is None else (cli if api_nodes is None else combined_view(cli, api_nodes))
        if plugins and node in view["running_nodes"]:
            view["plugins"] = api.plugins(node)
        return view

    return read, printed


def where(module):
    source = module.params["source"]
    parts = []
    if source != "cli":
        parts.append(module.params["api_url"])
    if source != "api":
        parts.append("container %s" % module.params["container"])
    return " and ".join(parts)


def with_stopped_members(module, view):
    """The API's view with mnesia's stopped members from emqx_ctl, when it answers."""
    try:
        status = parse_cluster_status(EmqxCtl(module, module.params["container"], module.params["docker_cli"])
                                      .run("cluster", "status"))
    except (EmqxError, CliOutputError):
        return view
    return dict(view, stopped_nodes=sorted(status["stopped_nodes"]))


def plugins_message(module, view, names, elapsed):
    """Why the node does not run its plugins, and where to look."""
    node, container = module.params["node"], module.params["container"]
    if "plugins" not in view:
        return "%s is not running in the cluster seen from %s, so its plugins could not be asked (waited %.0f s)." % (
            node, where(module), elapsed)
    return ("%s: plugins not active after %.0f s: %s. EMQX 4.4.4 starts without a plugin it cannot "
            "configure; check its settings (emqx_plugin_conf_extra) and the node's log%s." % (
                node, elapsed, ", ".join(names), " (docker logs %s)" % container if container else ""))


def main():
    argument_spec = dict(
        source=dict(type="str", choices=["api", "cli", "both"], default="api"),
        expected_nodes=dict(type="list", elements="str"),
        fail_on_mismatch=dict(type="bool", default=True),
        node=dict(type="str"),
        expected_plugins=dict(type="list", elements="str"),
    )
    argument_spec.update(api_argument_spec())
    argument_spec.update(cli_argument_spec())
    argument_spec.update(wait_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[
            ("source", "api", ("api_username", "api_password")),
            ("source", "cli", ("container",)),
            ("source", "both", ("api_username", "api_password", "container")),
        ],
        required_by={"expected_plugins": ("node",)},
        supports_check_mode=True,
    )
    expected = module.params["expected_nodes"]
    if expected is not None:
        bad = [node for node in expected if not is_node_name(node)]
        if bad:
            module.fail_json(msg="expected_nodes must be node names written name@host without spaces: %s"
                                 % ", ".join(repr(node) for node in bad))

    plugins = module.params["expected_plugins"]
    if plugins is not None and module.params["source"] == "cli":
        module.fail_json(msg="expected_plugins are read through the management API: use source api or both")

    def inactive(view):
        return sorted(name for name in plugins if not view.get("plugins", {}).get(name)) if plugins else []

    api = EmqxApi.from_module_params(module.params) if module.params["source"] != "cli" else None
    read, printed = membership_reader(module, api)
    if expected is None and plugins is None:
        view, error, attempts, elapsed = wait_until(read, lambda view: True, 0, 0)
    else:
        view, error, attempts, elapsed = wait_until(
            read, lambda view: (expected is None or compare(view, expected)["match"]) and not inactive(view),
            module.params["wait_timeout"], module.params["poll_interval"])

    if (error is None and expected is not None and module.params["source"] == "api" and module.params["container"]
            and not compare(view, expected)["match"]):
        view = with_stopped_members(module, view)

    result = dict(changed=False, attempts=attempts, elapsed=elapsed)
    if "cli_output" in printed:
        result["cli_output"] = printed["cli_output"]
    if error is not None:
        waited = " (after %d attempts in %.0f s)" % (attempts, elapsed) if attempts > 1 else ""
        module.fail_json(msg="%s%s" % (error, waited), **result)

    result.update((key, value) for key, value in view.items() if key != "plugins")
    if expected is not None:
        result.update(compare(view, expected))
        result["mismatch"] = "" if result["match"] else "%s (waited %.0f s, %d looks)" % (
            mismatch_message(view, expected, where(module)), elapsed, attempts)
        if not result["match"] and module.params["fail_on_mismatch"]:
            module.fail_json(msg=result["mismatch"], **result)
    node = module.params["node"]
    if node and node in view["running_nodes"] and api is not None:
        try:
            result["listeners"] = api.listeners(node)
        except EmqxError as exc:
            module.fail_json(msg=str(exc), **result)
    if plugins is not None:
        result["inactive_plugins"] = inactive(view)
        if result["inactive_plugins"] and module.params["fail_on_mismatch"]:
            module.fail_json(msg=plugins_message(module, view, result["inactive_plugins"], elapsed), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
