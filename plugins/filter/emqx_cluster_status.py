# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_cluster_status
short_description: Parse the output of EMQX 4.4.4's C(emqx_ctl cluster status)
version_added: 0.1.0
author: mqttaction.emqx contributors
description:
  - "Reads the Erlang map 4.4.4 prints (C(Cluster status: #{running_nodes => [...], stopped_nodes => [...]})),
    also when it is wrapped over several lines."
  - Fails on output that is not a 4.4.4 cluster status, so a node that did not answer is never
    mistaken for an empty cluster.
options:
  _input:
    description: The standard output of C(emqx_ctl cluster status).
    type: string
    required: true
"""

EXAMPLES = r"""
- name: Read the cluster status of a node
  ansible.builtin.command: docker exec emqx emqx_ctl cluster status
  register: status
  changed_when: false

- name: Show the running nodes
  ansible.builtin.debug:
    msg: "{{ (status.stdout | mqttaction.emqx.emqx_cluster_status).running_nodes }}"
"""

RETURN = r"""
_value:
  description: The nodes, each list sorted.
  type: dict
  contains:
    running_nodes: {description: Nodes running in the cluster., type: list, elements: str}
    stopped_nodes: {description: Known members that are down., type: list, elements: str}
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import (
    CliOutputError,
    parse_cluster_status,
    parse_listeners,
    parse_plugins,
    parse_vm,
)


def _filter(parse):
    """A filter that runs an emqx_ctl output parser and reports its complaint as a filter error."""

    def run(text):
        try:
            return parse(text)
        except CliOutputError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    run.__name__ = parse.__name__
    return run


emqx_cluster_status = _filter(parse_cluster_status)
emqx_plugins = _filter(parse_plugins)
emqx_vm = _filter(parse_vm)
emqx_listeners = _filter(parse_listeners)


class FilterModule:
    """Parsers of emqx_ctl output."""

    def filters(self):
        return {"emqx_cluster_status": emqx_cluster_status, "emqx_plugins": emqx_plugins,
                "emqx_vm": emqx_vm, "emqx_listeners": emqx_listeners}
