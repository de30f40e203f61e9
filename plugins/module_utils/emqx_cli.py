# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Run EMQX 4.4.4's emqx_ctl and parse what it prints.

``emqx_ctl cluster status`` prints an Erlang map with ``~p``, wrapped over
lines at about 80 columns::

    Cluster status: #{running_nodes =>
                          ['emqx@10.0.0.1','emqx@10.0.0.2'],
                      stopped_nodes => []}

4.4.4 has no JSON output (``--json`` is 5.x), and the 4.4 docs still show the
older ``[{running_nodes,[...]}]`` form, which 4.4.4 does not print.
"""

from __future__ import annotations

import re

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_errors import EmqxError

_STATUS = re.compile(r"Cluster status:\s*#\{(.*)\}", re.S)
_LIST = r"%s\s*=>\s*\[([^\]]*)\]"
_ATOM = re.compile(r"'([^']+)'|([A-Za-z0-9_@.\-]+)")
_PLUGIN = re.compile(r"^Plugin\((\w+),.*active=(true|false)\)\s*$", re.M)


class CliOutputError(ValueError):
    """emqx_ctl printed something that is not the expected 4.4.4 output."""


def _node_list(body, name):
    match = re.search(_LIST % name, body)
    if match is None:
        raise CliOutputError("no %s in the cluster status" % name)
    return sorted(quoted or bare for quoted, bare in _ATOM.findall(match.group(1)))


def parse_cluster_status(text):
    """{'running_nodes': [...], 'stopped_nodes': [...]} from ``emqx_ctl cluster status``."""
    match = _STATUS.search(text or "")
    if match is None:
        raise CliOutputError("not an EMQX 4.4.4 cluster status: %r" % (text or "")[:200])
    body = match.group(1)
    return {"running_nodes": _node_list(body, "running_nodes"),
            "stopped_nodes": _node_list(body, "stopped_nodes")}


def parse_plugins(text):
    """{plugin: active} from ``emqx_ctl plugins list``."""
    found = dict((name, active == "true") for name, active in _PLUGIN.findall(text or ""))
    if not found:
        raise CliOutputError("not an EMQX 4.4.4 plugin list: %r" % (text or "")[:200])
    return found


# ---- emqx_ctl status ------------------------------------------------------

_VM_LINE = re.compile(r"^([a-z_]+/[a-z_0-9]+)\s*:\s*(\S+)\s*$", re.M)


def parse_vm(text):
    """``emqx_ctl vm`` (``cpu/load1 : 0.42``, ``process/limit : 2097152``...) as {key: int or text}."""
    found = dict((key, int(value) if value.isdigit() else value) for key, value in _VM_LINE.findall(text))
    if "process/limit" not in found:
        raise CliOutputError("not the output of emqx_ctl vm: %r" % text[:200])
    return found


_LISTENER = re.compile(r"^(\S+)\n((?:[ ]{2}\S+\s*:.*\n?)+)", re.M)
_LISTENER_FIELD = re.compile(r"^[ ]{2}(\S+)\s*:\s*(.*?)\s*$", re.M)


def parse_listeners(text):
    """``emqx_ctl listeners`` as {listener id (``mqtt:tcp:external``): {field: int or text}}."""
    found = {}
    for name, body in _LISTENER.findall(text):
        found[name] = dict((key, int(value) if value.isdigit() else value)
                           for key, value in _LISTENER_FIELD.findall(body))
    if not found:
        raise CliOutputError("not the output of emqx_ctl listeners: %r" % text[:200])
    return found


_NODE_STATUS = re.compile(r"^Node '?([^'\s]+)'? (\S+) is (\w+)\s*$", re.M)


def parse_node_status(text):
    """{'node', 'version', 'status'} from ``emqx_ctl status``.

    4.4.4 prints one line, ``Node 'emqx@172.18.0.2' 4.4.4 is started``.
    """
    match = _NODE_STATUS.search(text or "")
    if match is None:
        raise CliOutputError("not an EMQX 4.4.4 node status: %r" % (text or "")[:200])
    return {"node": match.group(1), "version": match.group(2), "status": match.group(3)}


# ---- cluster join / leave / force-leave -----------------------------------

# What emqx_mgmt_cli 4.4.4 prints for each change: (success, failure prefix).
CHANGE_TEXTS = {
    "join": ("Join the cluster successfully.", "Failed to join the cluster: "),
    "leave": ("Leave the cluster successfully.", "Failed to leave the cluster: "),
    "force-leave": ("Remove the node from cluster successfully.",
                    "Failed to remove the node from cluster: "),
}
_REASON_TAG = re.compile(r"^\{?\s*'?([A-Za-z_][A-Za-z0-9_]*)'?")
_REASON_NODE = re.compile(r"'([^'@\s]+@[^'\s]+)'")


class ChangeResult(object):
    """The outcome of ``emqx_ctl cluster join|leave|force-leave``.

    ``outcome`` is ``done``, ``ignored`` (4.4.4's ``Ignore.``: the node named
    is the node itself) or ``failed``; for a failure ``reason`` is the Erlang
    term 4.4.4 printed, ``tag`` its first atom (``node_down``) and ``node`` the
    node it names, if any.
    """

    def __init__(self, outcome, reason=None):
        self.outcome = outcome
        self.reason = reason
        self.tag = None
        self.node = None
        if reason:
            tag = _REASON_TAG.match(reason)
            node = _REASON_NODE.search(reason)
            self.tag = tag.group(1) if tag else None
            self.node = node.group(1) if node else None


def parse_change(action, text):
    """Read what ``emqx_ctl cluster <action>`` printed (action: join, leave, force-leave)."""
    success, failure = CHANGE_TEXTS[action]
    text = text or ""
    if success in text:
        return ChangeResult("done")
    for line in text.splitlines():
        if line.startswith(failure):
            return ChangeResult("failed", line[len(failure):].strip())
    if text.strip() == "Ignore.":
        return ChangeResult("ignored")
    raise CliOutputError("not an EMQX 4.4.4 answer to cluster %s: %r" % (action, text[:200]))


def explain_change_failure(action, result, target):
    """A message for an operator: what 4.4.4 said, what it means, what to do."""
    said = "emqx_ctl cluster %s said: %s" % (action, result.reason)
    if result.tag == "node_down":
        return ("%s. %s did not answer over Erlang distribution. Likely causes: a different "
                "Erlang cookie on the two nodes (emqx_cookie / EMQX_NODE_COOKIE), the distribution "
                "port (4370+N, or epmd 4369 with WITH_EPMD) or the cluster RPC port (5369, or "
                "5370+N when stateless) closed between the hosts, the node not running, or a "
                "host part (after the @) that the other node cannot resolve or reach."
                % (said, result.node or target))
    if result.tag in ("merge_schema_failed", "bad_cookie") or "Bad cookie" in (result.reason or ""):
        return ("%s. The joining node holds the mnesia data of another cluster. Make it leave "
                "that cluster first, or stop it and remove its data/mnesia/<node name> "
                "directory, then join again." % said)
    if result.tag == "failed_to_leave":
        return ("%s. No other member confirmed the removal; check that the other nodes "
                "run and can be reached over Erlang distribution." % said)
    return said + "."


# ---- running emqx_ctl inside the node's container -------------------------


class CtlError(EmqxError):
    """emqx_ctl could not be run in the container, or the node did not answer."""


# docker exec and emqx_ctl failures worth waiting for, and what they mean.
_TRANSIENT = (
    (re.compile(r"not responding to pings"),
     "the node is not running, or the cookie emqx_ctl uses differs from the node's"),
    (re.compile(r"[Cc]ontainer \S+ is (not running|restarting)"), "the container is not running"),
    (re.compile(r"^Command \S+ not found", re.M),
     "the command is not registered yet (emqx_management is not running)"),
    # nodetool's answer while the node's applications stop and start again,
    # as when ekka joins it to a cluster ("emqx shutdown for join"): the
    # command table emqx_ctl looks in is gone for a moment.
    (re.compile(r"RPC to '?\S+?'? failed: \{'EXIT'"),
     "the node's applications are restarting (as when it joins a cluster)"),
    # emqx_ctl's answer while the commands are unregistered, between the stop
    # and the start of the node's applications.
    (re.compile(r"^No commands available\.", re.M),
     "no emqx_ctl command is registered yet (the node's applications are starting or restarting)"),
)


def cli_argument_spec():
    """The module options of the emqx_ctl path (see the emqx doc fragment's ``cli``)."""
    return dict(container=dict(type="str"), docker_cli=dict(type="str", default="docker"))


class EmqxCtl(object):
    """Runs ``emqx_ctl`` in a container with ``docker exec``, through an AnsibleModule."""

    def __init__(self, module, container, docker_cli="docker"):
        self.module = module
        self.container = container
        self.docker = module.get_bin_path(docker_cli, required=True)

    def run(self, *args):
        return self._exec(["emqx_ctl"] + list(args), "emqx_ctl %s" % " ".join(args))

    def eval(self, expression):
        """What ``emqx eval <expression>`` prints: the node runs an Erlang expression.

        The expression reaches the node through nodetool with the container's
        cookie; it must not hold a secret (it shows in the host's process list).
        """
        return self._exec(["/opt/emqx/bin/emqx", "eval", expression], "emqx eval")

    def _exec(self, command, what):
        argv = [self.docker, "exec", self.container] + command
        rc, out, err = self.module.run_command(argv)
        if rc == 0:
            return out
        said = (err or out or "").strip() or "no output"
        where = "%s in container %s failed (rc %d)" % (what, self.container, rc)
        for pattern, meaning in _TRANSIENT:
            if pattern.search(said):
                raise CtlError("%s: %s: %s" % (where, meaning, said), transient=True)
        if "No such container" in said:
            raise CtlError("%s: there is no container %s on this host; check the container option"
                           % (where, self.container))
        if "executable file not found" in said:
            raise CtlError("%s: the container has no emqx_ctl; is it an EMQX 4.4.4 node? %s"
                           % (where, said))
        raise CtlError("%s: %s" % (where, said))

    def cluster_status(self):
        return parse_cluster_status(self.run("cluster", "status"))

    def node_status(self):
        return parse_node_status(self.run("status"))
