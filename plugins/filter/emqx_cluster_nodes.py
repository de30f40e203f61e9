# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_cluster_nodes
short_description: Every EMQX node of the cluster's hosts, in inventory order
version_added: 1.0.0
author: mqttaction.emqx contributors
description:
  - A host that worked out its own nodes (the C(emqx) role's preflight sets C(emqx_nodes)) brings them; any other
    host (outside C(--limit)) is worked out from its inventory variables with P(mqttaction.emqx.emqx_instances#filter),
    taking what its inventory does not set from O(defaults).
options:
  _input:
    description: The variables of each host of the cluster's group, in inventory order (from C(hostvars)).
    type: list
    elements: dict
    required: true
  defaults:
    description:
      - The role's values of C(emqx_instances_per_host), C(emqx_node_basename), C(emqx_rpc_port_discovery),
        C(emqx_rpc_tcp_server_port), C(emqx_instance_port_step), C(emqx_host_ports), C(emqx_with_epmd) and
        C(emqx_dist_listen_min).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Work out every node of the cluster
  ansible.builtin.set_fact:
    cluster_nodes: >-
      {{ groups['emqx'] | map('extract', hostvars) | mqttaction.emqx.emqx_cluster_nodes(
           {'emqx_instances_per_host': 1, 'emqx_node_basename': 'emqx', 'emqx_rpc_port_discovery': 'auto',
            'emqx_rpc_tcp_server_port': 5369, 'emqx_instance_port_step': 10, 'emqx_host_ports': {},
            'emqx_with_epmd': false, 'emqx_dist_listen_min': 6369}) }}
"""

RETURN = r"""
_value:
  description: Each node as P(mqttaction.emqx.emqx_instances#filter) describes it.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_topology import TopologyError, group_instances


def emqx_cluster_nodes(hosts, defaults):
    try:
        return group_instances(hosts, defaults)
    except TopologyError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"emqx_cluster_nodes": emqx_cluster_nodes}
