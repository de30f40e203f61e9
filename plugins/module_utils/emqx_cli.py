# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Parse what EMQX 4.4.4's emqx_ctl prints.

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
