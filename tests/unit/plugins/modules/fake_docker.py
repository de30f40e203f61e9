"""A stand-in for `docker exec <container> emqx_ctl ...`, for the module unit tests.

It keeps a small cluster model in the JSON file named by FAKE_DOCKER_STATE and
prints what EMQX 4.4.4's emqx_ctl prints (FACTS.md §4), with its exit codes:

    {"containers": {"emqx1": {"node": "emqx1@10.0.0.1", "state": "up", "group": "a"}},
     "fail_next": {"emqx1": 2}}

state: up, down (the node does not answer emqx_ctl), stopped (the container
is stopped). Nodes with the same group are one cluster; an up node of it is
running, the others are stopped. fail_next makes that many calls answer
"not responding to pings" first; restarting_next makes that many answer as
4.4.4 does while the node's applications restart for a join (nodetool's
"RPC to ... failed: {'EXIT',{badarg,...", "No commands available."). Every call is
appended to "calls".
"""

from __future__ import annotations

import hashlib
import json
import os
import sys


def cluster_status(state, me):
    group = state["containers"][me]["group"]
    members = [c for c in state["containers"].values() if c["group"] == group]
    running = sorted("'%s'" % c["node"] for c in members if c["state"] == "up")
    stopped = sorted("'%s'" % c["node"] for c in members if c["state"] != "up")
    one_line = "Cluster status: #{running_nodes => [%s],\n" % ",".join(running)
    if len(one_line) <= 80:
        head = one_line
    else:  # ~p wraps a long list onto its own, indented lines
        head = "Cluster status: #{running_nodes =>\n                      [%s],\n" % ",\n                       ".join(running)
    return head + "                  stopped_nodes => [%s]}\n" % ",".join(stopped)


def by_node(state, node):
    for name, container in state["containers"].items():
        if container["node"] == node:
            return name, container
    return None, None


def ctl(state, me, args):
    mine = state["containers"][me]
    if args == ["status"]:
        return "Node '%s' 4.4.4 is started\n" % mine["node"]
    if args == ["cluster", "status"]:
        return cluster_status(state, me)
    if args[:2] == ["cluster", "join"]:
        name, seed = by_node(state, args[2])
        if seed is not None and seed is mine:
            return "Ignore.\n"
        if seed is not None and seed["group"] == mine["group"]:
            return "Failed to join the cluster: {already_in_cluster,'%s'}\n" % args[2]
        if seed is None or seed["state"] != "up" or seed.get("cookie") != mine.get("cookie"):
            return "Failed to join the cluster: {node_down,'%s'}\n" % args[2]
        mine["group"] = seed["group"]
        return "Join the cluster successfully.\n" + cluster_status(state, me)
    if args == ["cluster", "leave"]:
        others = [c for n, c in state["containers"].items()
                  if n != me and c["group"] == mine["group"] and c["state"] == "up"]
        if not others:
            return "Failed to leave the cluster: node_not_in_cluster\n"
        mine["group"] = "left-" + me
        return "Leave the cluster successfully.\n" + cluster_status(state, me)
    if args[:2] == ["cluster", "force-leave"]:
        name, target = by_node(state, args[2])
        if target is mine:
            return "Ignore.\n"
        if target is None or target["group"] != mine["group"]:
            return "Failed to remove the node from cluster: node_not_in_cluster\n"
        target["group"] = "removed-" + name
        return "Remove the node from cluster successfully.\n" + cluster_status(state, me)
    return "Command %s not found\n" % args[0], 1


def evaluate(state, expression):
    """What `emqx eval` prints for the expressions the modules send."""
    if "emqx_user" in expression:
        # emqx_auth_mnesia's stored users: "HEXNAME HEXSTORED" lines.
        if not state.get("auth_mnesia_loaded", True):
            return "NOTABLE\nok\n"
        users = state.get("auth_users", {})
        return "".join("%s %s\n" % (name.encode().hex().upper(), stored.upper()) for name, stored in users.items()) + "ok\n"
    credentials = state.setdefault("credentials", {})
    if "file:read_file" in expression:
        # A value handed over through the data directory: read it there, as the node would.
        name = expression.split('F = "/opt/emqx/data/', 1)[1].split('"', 1)[0]
        path = os.path.join(state["data_dir"], name)
        with open(path, "rb") as handle:
            value = handle.read()
        os.remove(path)
        if "force_add_app" in expression:
            credentials["app"] = value.hex()
        else:
            salt = b"\x01\x02\x03\x04"
            credentials["admin"] = (salt + hashlib.md5(salt + value).digest()).hex()
        return "ok\n"
    return "app %s\nadmin %s\nok\n" % (credentials.get("app", "none").upper(), credentials.get("admin", "none").upper())


def main(argv):
    path = os.environ["FAKE_DOCKER_STATE"]
    with open(path) as handle:
        state = json.load(handle)
    state.setdefault("calls", []).append(argv)
    rc = 0
    if argv[:1] == ["exec"] and state["containers"].get(argv[1], {}).get("state") == "stopped":
        out, err, rc = "", "Error response from daemon: container %s is not running\n" % argv[1], 1
    elif argv[:1] == ["exec"] and argv[2:4] == ["/opt/emqx/bin/emqx", "eval"] and argv[1] in state["containers"]:
        out, err, rc = evaluate(state, argv[4]), "", 0
    elif argv[:1] != ["exec"] or argv[2:3] != ["emqx_ctl"]:
        out, err, rc = "", "fake docker: only `exec <container> emqx_ctl ...`\n", 2
    elif argv[1] not in state["containers"]:
        out, err, rc = "", "Error response from daemon: No such container: %s\n" % argv[1], 1
    else:
        me = argv[1]
        container = state["containers"][me]
        if container["state"] == "stopped":
            out, err, rc = "", "Error response from daemon: container %s is not running\n" % me, 1
        elif state.get("restarting_next", {}).get(me, 0) > 0:
            # The two answers 4.4.4 gives while the applications restart, in turn.
            state["restarting_next"][me] -= 1
            if state["restarting_next"][me] % 2:
                out, err, rc = ("RPC to '%s' failed: {'EXIT',\n    {badarg,\n        [{ets,match,\n"
                                "             [emqx_command,{{'_',cluster},'$1','_'}],\n" % container["node"]), "", 1
            else:
                out, err, rc = "No commands available.\n", "", 1
        elif container["state"] == "down" or state.get("fail_next", {}).get(me, 0) > 0:
            if state.get("fail_next", {}).get(me, 0) > 0:
                state["fail_next"][me] -= 1
            out, err, rc = "", "Node '%s' not responding to pings.\n" % container["node"], 1
        else:
            answer = ctl(state, me, argv[3:])
            out, err = (answer, "") if isinstance(answer, str) else (answer[0], "")
            rc = 0 if isinstance(answer, str) else answer[1]
    with open(path, "w") as handle:
        json.dump(state, handle)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
