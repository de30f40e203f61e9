# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Who is in an EMQX 4.4.4 cluster, as one node sees it, and waiting for it.

Two readers see membership differently, because of how 4.4.4 builds them:

* ``emqx_ctl cluster status`` prints mnesia's view: ``running_nodes`` and
  ``stopped_nodes`` (known members that are down).
* ``GET /api/v4/nodes`` lists the running nodes only, with details (version,
  uptime, connections...); a member that is down is simply absent, and a
  running node that fails the RPC is listed with an ``error``.

A *view* is a dict: ``running_nodes``, ``stopped_nodes`` (None when only the
API was asked), ``unhealthy_nodes`` and ``nodes`` (details per node).
"""

from __future__ import annotations

import time

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import ApiError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import CliOutputError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_errors import EmqxError


def is_node_name(value):
    """Whether a string is an Erlang node name as 4.4.4 uses it: name@host, no spaces."""
    return "@" in value and " " not in value and value == value.strip()


def api_view(entries):
    """A view from the entries of ``GET /api/v4/nodes``."""
    running, unhealthy, details = [], [], {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("node"), str):
            raise ApiError("envelope", "/api/v4/nodes: an entry without a node name: %r" % (entry,))
        detail = dict((key, value) for key, value in entry.items() if key != "node")
        detail["healthy"] = "error" not in entry and entry.get("node_status") == "Running"
        details[entry["node"]] = detail
        (running if detail["healthy"] else unhealthy).append(entry["node"])
    return {"running_nodes": sorted(running), "stopped_nodes": None,
            "unhealthy_nodes": sorted(unhealthy), "nodes": details}


def cli_view(status):
    """A view from parsed ``emqx_ctl cluster status`` (see emqx_cli.parse_cluster_status)."""
    return {"running_nodes": sorted(status["running_nodes"]),
            "stopped_nodes": sorted(status["stopped_nodes"]),
            "unhealthy_nodes": [], "nodes": {}}


def combined_view(cli, api):
    """mnesia's members (CLI) with the API's health and details.

    A node runs when emqx_ctl says so and the API lists it healthy; one that
    emqx_ctl sees running but the API leaves out or lists with an error is
    unhealthy, and so is one only the API lists.
    """
    cli_running, api_running = set(cli["running_nodes"]), set(api["running_nodes"])
    details = dict(api["nodes"])
    for node in sorted(cli_running - set(details)):
        details[node] = {"healthy": False,
                         "error": "emqx_ctl lists it running, the management API does not list it"}
    for node in sorted(api_running - cli_running):
        details[node]["healthy"] = False
        details[node]["error"] = "the management API lists it, emqx_ctl does not"
    return {"running_nodes": sorted(cli_running & api_running),
            "stopped_nodes": cli["stopped_nodes"],
            "unhealthy_nodes": sorted(node for node, detail in details.items() if not detail["healthy"]),
            "nodes": details}


def compare(view, expected):
    """missing_nodes, unexpected_nodes and match of a view against the expected node names.

    Missing: expected but not running healthy. Unexpected: up (healthy or not)
    but not expected; a member that is down is only reported in stopped_nodes.
    """
    running, wanted = set(view["running_nodes"]), set(expected)
    up = running | set(view["unhealthy_nodes"])
    missing, unexpected = sorted(wanted - running), sorted(up - wanted)
    return {"missing_nodes": missing, "unexpected_nodes": unexpected,
            "match": not missing and not unexpected}


def mismatch_message(view, expected, where):
    """Why the cluster is not the expected one, with the likely causes."""
    diff = compare(view, expected)
    stopped = set(view["stopped_nodes"] or [])
    unhealthy = set(view["unhealthy_nodes"])
    lines = ["The EMQX cluster seen from %s is not the expected one. Running: %s."
             % (where, ", ".join(view["running_nodes"]) or "none")]
    down = [node for node in diff["missing_nodes"] if node in stopped]
    sick = [node for node in diff["missing_nodes"] if node in unhealthy]
    never = [node for node in diff["missing_nodes"] if node not in stopped and node not in unhealthy]
    if down:
        lines.append("Missing, known members that are down: %s. The node is not running: look at "
                     "its container (docker ps -a, docker logs) on its host." % ", ".join(down))
    if sick:
        errors = "; ".join("%s: %s" % (node, view["nodes"][node].get("error"))
                           for node in sick if node in view["nodes"])
        lines.append("Missing, running but unhealthy: %s (%s). The node runs but does not answer "
                     "the management RPC: check the cluster RPC port (5369, or 5370+N when "
                     "stateless) between the hosts." % (", ".join(sick), errors))
    if never:
        lines.append("Missing, not members: %s. Likely causes: a different Erlang cookie "
                     "(emqx_cookie), the distribution port (4370+N) or cluster RPC port closed "
                     "between the hosts, a node host (after the @) the others cannot resolve or "
                     "reach, a node name not in cluster.static.seeds, or (manual discovery) a node "
                     "never joined." % ", ".join(never))
        if view["stopped_nodes"] is None:
            lines.append("The management API cannot see members that are down; ask emqx_ctl "
                         "(source cli or both) to tell a stopped node from one that never joined.")
    if diff["unexpected_nodes"]:
        lines.append("Unexpected, running but not expected: %s. A stale or foreign node joined (one "
                     "with the same cookie that can reach these nodes), or the expected list is "
                     "incomplete; remove a node with mqttaction.emqx.emqx_cluster state=absent."
                     % ", ".join(diff["unexpected_nodes"]))
    return " ".join(lines)


def split_views(views):
    """Group the nodes asked by what they see running.

    ``views`` maps each asked node to the running nodes it sees. Returns a list
    of parts, biggest first (ties: by name), each ``{"nodes": [...], "sees":
    [...]}``: the asked nodes that see the same running set. More than one part
    means the nodes disagree about who is in the cluster.
    """
    groups = {}
    for node, running in views.items():
        groups.setdefault(tuple(sorted(running)), []).append(node)
    parts = [{"nodes": sorted(nodes), "sees": list(sees)} for sees, nodes in groups.items()]
    return sorted(parts, key=lambda part: (-len(part["sees"]), -len(part["nodes"]), part["nodes"]))


def split_message(views):
    """Why the cluster is split and how 4.4.4 heals it; empty when all views agree."""
    parts = split_views(views)
    if len(parts) < 2:
        return ""
    lines = ["The nodes disagree about who is in the cluster: a network partition (split brain)."]
    for part in parts:
        lines.append("%s %s running: %s." % (", ".join(part["nodes"]), "sees" if len(part["nodes"]) == 1 else "see",
                                             ", ".join(part["sees"]) or "none"))
    biggest, second = parts[0], parts[1]
    if len(parts) > 2:
        lines.append("EMQX 4.4.4's autoheal cannot decide between more than two parts and leaves them split.")
    elif len(biggest["sees"]) == len(second["sees"]):
        lines.append("The two parts are of equal size: autoheal (cluster.autoheal = on) keeps the part holding the "
                     "oldest node and restarts the other.")
    else:
        lines.append("Autoheal (cluster.autoheal = on) keeps the majority (%s) and restarts the other part once every "
                     "node reaches every other again." % ", ".join(biggest["sees"]))
    lines.append("It does nothing while a node is unreachable or with autoheal off, and the nodes it restarts drop "
                 "their clients and lose what was written only on their side. To heal by hand, restore the "
                 "network between the hosts (Erlang distribution 4370+N and cluster RPC), then restart the nodes "
                 "of the smaller part one at a time: ansible-playbook mqttaction.emqx.rolling_restart "
                 "--limit <their hosts> -e emqx_rolling_health_check=false.")
    return " ".join(lines)


def wait_argument_spec(wait_timeout=60):
    """The module options of waiting (see the emqx doc fragment's ``wait``)."""
    return dict(wait_timeout=dict(type="int", default=wait_timeout),
                poll_interval=dict(type="float", default=2))


def wait_until(read, done, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """Call ``read()`` until ``done(view)`` or ``timeout`` seconds have passed.

    Errors that waiting may cure (``transient``) are retried; others end the
    wait at once. Returns ``(view, error, attempts, elapsed)``: the last view
    read (None if none), the last error (None after a good read).
    """
    start = clock()
    attempts = 0
    view = None
    while True:
        attempts += 1
        try:
            view, error = read(), None
        except (EmqxError, CliOutputError) as exc:
            error = exc
        elapsed = clock() - start
        if error is None and done(view):
            break
        if error is not None and not getattr(error, "transient", False):
            break
        if elapsed + interval > timeout:
            break
        sleep(interval)
    return view, error, attempts, round(clock() - start, 3)
