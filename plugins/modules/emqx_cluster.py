#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_cluster
short_description: Join an EMQX 4.4.4 node to a cluster, or take a node out of it
version_added: 0.1.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Changes the membership of an EMQX 4.4.4 cluster with C(emqx_ctl cluster join|leave|force-leave),
    run by C(docker exec) in a node's container on the managed host. 4.4.4's REST API cannot
    change membership.
  - O(state=present) makes the node in O(container) join the cluster of O(seed). Nothing is done
    when the seed is already a member (running or stopped) of the node's cluster.
  - O(state=absent) without O(node), or with the container's own node, makes that node leave
    its cluster. With another O(node) it removes that node (C(force-leave)) from the cluster of
    the running member in O(container); this is how a dead node is taken out. Nothing is done
    when the node is not a member.
  - After a change it waits until the node sees the new membership.
  - "Failures carry 4.4.4's own words and what they mean, for example
    C(Failed to join the cluster: {node_down,'emqx@10.0.0.1'}) (a different cookie, closed
    ports or an unreachable node host)."
extends_documentation_fragment:
  - mqttaction.emqx.emqx.action_group
  - mqttaction.emqx.emqx.cli
  - mqttaction.emqx.emqx.wait
options:
  container:
    description:
      - Name or ID of the Docker container, on the managed host, of the node that joins or leaves,
        or of the running member that removes another O(node).
    type: str
    required: true
  state:
    description: Whether the node should be a member (V(present)) or not (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  seed:
    description:
      - A running member of the cluster to join (C(name@host)), for O(state=present).
      - A join replaces the node's own mnesia schema and data with the seed cluster's (ekka deletes
        the local schema first), and 4.4.4 restarts the node's broker applications, which drops its
        MQTT clients. A cluster the node was in before keeps it listed as stopped until it is
        force-left there.
    type: str
  node:
    description:
      - For O(state=absent), the node to take out (C(name@host)). Defaults to the node in
        O(container), which then leaves its cluster.
      - Any other node is removed with C(force-leave) from the cluster of the node in O(container),
        whether it runs or is down.
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Reads the membership and reports what would change. The predicted membership after a join
        shows the node and the seed only, since the rest of the seed's cluster is not read.
  diff_mode:
    support: full
    description: The membership the node sees, before and after.
notes:
  - The node's C(emqx_management) plugin must run; 4.4.4 registers the C(cluster) commands of
    C(emqx_ctl) only with it.
  - With static discovery (C(cluster.discovery = static)) a node still listed in
    C(cluster.static.seeds) may join again when it restarts; take it out of the seeds everywhere
    too.
seealso:
  - module: mqttaction.emqx.emqx_cluster_info
"""

EXAMPLES = r"""
- name: Join the node of this host to the first node's cluster (manual discovery)
  mqttaction.emqx.emqx_cluster:
    container: emqx
    seed: emqx@10.0.0.1
  throttle: 1  # one join at a time; each join restarts the joining node's applications

- name: Make the node of this host leave its cluster
  mqttaction.emqx.emqx_cluster:
    container: emqx
    state: absent

- name: Remove a dead node from the cluster, from a running member
  mqttaction.emqx.emqx_cluster:
    container: emqx
    state: absent
    node: emqx@10.0.0.3
  delegate_to: emqx-host-1
  run_once: true

- name: See what a join would change
  mqttaction.emqx.emqx_cluster:
    container: emqx2
    seed: emqx1@10.0.0.1
  check_mode: true
  diff: true
"""

RETURN = r"""
node:
  description: The node in O(container), as C(emqx_ctl status) names it.
  returned: always
  type: str
  sample: emqx@10.0.0.2
before:
  description: The membership the node in O(container) saw before.
  returned: success
  type: dict
  contains: &membership
    running_nodes:
      description: Running members, sorted.
      type: list
      elements: str
    stopped_nodes:
      description: Members that are down, sorted.
      type: list
      elements: str
  sample: {running_nodes: [emqx@10.0.0.2], stopped_nodes: []}
after:
  description:
    - The membership the node in O(container) sees after the change (predicted in check mode).
    - After O(state=absent) for its own node, the node alone.
  returned: success
  type: dict
  contains: *membership
  sample: {running_nodes: [emqx@10.0.0.1, emqx@10.0.0.2], stopped_nodes: []}
cli_output:
  description: What the C(emqx_ctl cluster) command that made the change printed.
  returned: when a command changed the membership
  type: str
  sample: "Join the cluster successfully.\nCluster status: #{running_nodes => ['emqx@10.0.0.1','emqx@10.0.0.2'],\n ..."
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import (
    EmqxCtl,
    cli_argument_spec,
    explain_change_failure,
    parse_change,
)
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_membership import (
    is_node_name,
    wait_argument_spec,
    wait_until,
)

# A failure that means the wanted membership is already there.
_ALREADY = {"join": ("already_in_cluster",), "leave": ("node_not_in_cluster",),
            "force-leave": ("node_not_in_cluster",)}


def membership(status):
    return {"running_nodes": sorted(status["running_nodes"]),
            "stopped_nodes": sorted(status["stopped_nodes"])}


def as_text(view):
    lines = []
    for key in ("running_nodes", "stopped_nodes"):
        lines.append("%s:%s" % (key, "" if view[key] else " []"))
        lines.extend("  - %s" % node for node in view[key])
    return "\n".join(lines) + "\n"


def checked_node_name(module, option):
    value = module.params[option]
    if value is not None and not is_node_name(value):
        module.fail_json(msg="%s must be a node name written name@host without spaces, not %r" % (option, value))
    return value


class Membership(object):
    """One node's membership, read and changed through emqx_ctl."""

    def __init__(self, module):
        self.module = module
        self.ctl = EmqxCtl(module, module.params["container"], module.params["docker_cli"])
        self.timeout = module.params["wait_timeout"]
        self.interval = module.params["poll_interval"]

    def wait(self, read, done, what):
        view, error, attempts, elapsed = wait_until(read, done, self.timeout, self.interval)
        if error is not None:
            self.module.fail_json(msg="%s: %s (%d attempts in %.0f s)" % (what, error, attempts, elapsed))
        if not done(view):
            self.module.fail_json(msg="%s: not done after %.0f s (wait_timeout); the node sees %s"
                                      % (what, elapsed, view), after=view)
        return view

    def read(self):
        return membership(self.ctl.cluster_status())

    def own_node(self):
        status = self.wait(self.ctl.node_status, lambda status: True,
                           "reading the node in container %s" % self.module.params["container"])
        return status["node"]

    def change(self, action, target, done):
        """Run one emqx_ctl cluster command and wait for its effect.

        Returns what it printed and the membership after, or (None, None)
        when 4.4.4 answers that it was already so.
        """
        args = ["cluster", action] + ([target] if action != "leave" else [])
        out = self.ctl.run(*args)
        result = parse_change(action, out)
        if result.outcome == "ignored" or (result.outcome == "failed" and result.tag in _ALREADY[action]):
            return None, None
        if result.outcome == "failed":
            self.module.fail_json(msg=explain_change_failure(action, result, target), cli_output=out)
        return out, self.wait(self.read, done, "waiting for the node to see the cluster after %s" % action)


def main():
    argument_spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        seed=dict(type="str"),
        node=dict(type="str"),
    )
    argument_spec.update(cli_argument_spec())
    argument_spec["container"]["required"] = True
    argument_spec.update(wait_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec,
                           required_if=[("state", "present", ("seed",))],
                           supports_check_mode=True)
    seed = checked_node_name(module, "seed")
    target = checked_node_name(module, "node")
    state = module.params["state"]
    if state == "present" and target is not None:
        module.fail_json(msg="node applies to state=absent only; with state=present the node in "
                             "container joins the cluster of seed")

    members = Membership(module)
    own = members.own_node()
    before = members.wait(members.read, lambda view: True, "reading the cluster status")
    known = set(before["running_nodes"]) | set(before["stopped_nodes"])
    result = dict(changed=False, node=own, before=before, after=before)

    if state == "present":
        action = None if seed == own or seed in known else "join"
        if seed in before["stopped_nodes"]:
            module.warn("The seed %s is a member of this node's cluster but is down." % seed)
        predicted = {"running_nodes": sorted({own, seed}), "stopped_nodes": []}

        def done(view):
            return {own, seed} <= set(view["running_nodes"])
    elif target is None or target == own:
        target = own
        action = "leave" if known - {own} else None
        predicted = {"running_nodes": [own], "stopped_nodes": []}

        def done(view):
            return view == predicted
    else:
        action = "force-leave" if target in known else None
        predicted = dict((key, [node for node in nodes if node != target]) for key, nodes in before.items())

        def done(view):
            return target not in view["running_nodes"] and target not in view["stopped_nodes"]

    if action is not None:
        result["changed"] = True
        result["after"] = predicted
        if not module.check_mode:
            out, after = members.change(action, seed if action == "join" else target, done)
            if out is None:
                result.update(changed=False, after=members.read())
            else:
                result.update(cli_output=out, after=after)
    if module._diff:
        result["diff"] = {"before": as_text(result["before"]), "after": as_text(result["after"]),
                          "before_header": "%s membership" % own, "after_header": "%s membership" % own}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
