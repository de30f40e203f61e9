# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_instances
short_description: The EMQX 4.4.4 nodes of one host, with their node names and ports
version_added: 0.1.0
author: mqttaction.emqx contributors
description:
  - Computes the nodes one host runs, as the roles, the firewall and the membership
    check all need them, from the same inventory settings.
  - Distribution ports follow EMQX 4.4.4 (ekka) - 4370 plus the number that ends the node's
    short name (V(emqx) is 4370, V(emqx2) is 4372); with epmd, O(dist_listen_min).
  - Cluster RPC ports follow gen_rpc - O(rpc_tcp_server_port) with V(manual) discovery (what the
    Docker image forces), 5370 plus that number with V(stateless).
  - Fails, naming the inventory variable, when the nodes of the host would clash on a port or
    a name EMQX 4.4.4 refuses.
options:
  _input:
    description: The address the other nodes reach this host at (C(EMQX_HOST)).
    type: string
    required: true
  count:
    description: How many nodes this host runs (O(count=1) gives one node named V(emqx)).
    type: integer
    default: 1
  basename:
    description: Short name of the nodes; several nodes get V(1), V(2), ... appended.
    type: string
    default: emqx
  rpc_port_discovery:
    description:
      - V(auto) is V(manual) for one node per host and V(stateless) for several.
    type: string
    choices: [auto, manual, stateless]
    default: auto
  rpc_tcp_server_port:
    description: The cluster RPC port with V(manual) discovery.
    type: integer
    default: 5369
  port_step:
    description: How far each further node's listener ports are shifted on the host.
    type: integer
    default: 10
  ports:
    description:
      - Host ports of the first node's listeners, by listener name
        (V(mqtt), V(mqtts), V(ws), V(wss), V(api), V(dashboard)).
    type: dict
    default: {}
  with_epmd:
    description: Whether the nodes run with epmd (C(WITH_EPMD)), which needs one node per host.
    type: boolean
    default: false
  dist_listen_min:
    description: The distribution port in epmd mode (C(node.dist_listen_min)).
    type: integer
    default: 6369
"""

EXAMPLES = r"""
- name: Three nodes on one host
  ansible.builtin.debug:
    msg: "{{ '10.0.0.5' | mqttaction.emqx.emqx_instances(count=3) | map(attribute='node') }}"
  # ['emqx1@10.0.0.5', 'emqx2@10.0.0.5', 'emqx3@10.0.0.5']
  # distribution ports 4371-4373, cluster RPC ports 5371-5373, MQTT on 1883, 1893, 1903
"""

RETURN = r"""
_value:
  description: One entry per node.
  type: list
  elements: dict
  contains:
    index: {description: Position of the node on its host, from 1., type: int}
    name: {description: Short name (C(EMQX_NAME))., type: str}
    node: {description: Erlang node name, C(name@host)., type: str}
    host: {description: C(EMQX_HOST)., type: str}
    container: {description: Container name., type: str}
    dist_port: {description: Erlang distribution port., type: int}
    rpc_port: {description: Cluster RPC port., type: int}
    rpc_port_discovery: {description: V(manual) or V(stateless)., type: str}
    epmd: {description: Whether epmd mode is on., type: bool}
    listeners: {description: Host port of each listener., type: dict}
    published: {description: Host port to container port, for every port the node publishes., type: dict}
    publish: {description: The same as C(host:container) strings, sorted by host port., type: list, elements: str}
    cluster_ports: {description: Host ports only the cluster's hosts may reach (distribution, cluster RPC, epmd)., type: list, elements: int}
    client_ports: {description: Host ports of the MQTT listeners (mqtt, mqtts, ws, wss)., type: list, elements: int}
    admin_ports: {description: Host ports of the management API and the dashboard., type: list, elements: int}
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_topology import (
    TopologyError,
    host_instances,
)


def emqx_instances(host, count=1, basename="emqx", rpc_port_discovery="auto", rpc_tcp_server_port=5369,
                   port_step=10, ports=None, with_epmd=False, dist_listen_min=6369):
    """The filter: host_instances() with Ansible's error type."""
    try:
        return host_instances(host, count=count, basename=basename, rpc_port_discovery=rpc_port_discovery,
                              rpc_tcp_server_port=rpc_tcp_server_port, port_step=port_step, ports=ports,
                              with_epmd=with_epmd, dist_listen_min=dist_listen_min)
    except TopologyError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """EMQX topology filters."""

    def filters(self):
        return {"emqx_instances": emqx_instances}
