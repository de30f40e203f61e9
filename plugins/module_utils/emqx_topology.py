# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Where the EMQX 4.4.4 nodes of one host live: names, node names and ports.

Shared by the roles (through the filter plugins), the firewall and the
membership modules, so that every part computes the same ports from the same
inventory. The port rules are EMQX 4.4.4's own:

* Erlang distribution (ekka mode, no epmd): 4370 + N, where N is the number at
  the end of the node's short name (``emqx`` -> 4370, ``emqx2`` -> 4372), rem 60000.
* Erlang distribution with epmd (WITH_EPMD set): 4369 for epmd and
  ``node.dist_listen_min`` for the node.
* Cluster RPC (gen_rpc): ``rpc.tcp_server_port`` (5369) when
  ``rpc.port_discovery = manual`` (what the Docker image forces), 5370 + N
  when ``stateless``.
"""

from __future__ import annotations

import re

from ansible.module_utils.parsing.convert_bool import boolean

DIST_BASE_PORT = 4370
RPC_STATELESS_BASE_PORT = 5370
EPMD_PORT = 4369
SHORT_NAME = re.compile(r"^[0-9A-Za-z_-]+$")
TRAILING_NUMBER = re.compile(r"[0-9]+$")

# Host ports of the first instance; instance i adds (i - 1) * port_step.
DEFAULT_PORTS = {
    "mqtt": 1883,
    "mqtts": 8883,
    "ws": 8083,
    "wss": 8084,
    "api": 8081,
    "dashboard": 18083,
}
# The ports the same listeners use inside the container (EMQX's defaults).
CONTAINER_PORTS = dict(DEFAULT_PORTS)
CLIENT_LISTENERS = ("mqtt", "mqtts", "ws", "wss")
ADMIN_LISTENERS = ("api", "dashboard")


class TopologyError(ValueError):
    """An inventory setting that cannot give a working node; names the variable."""


def name_offset(short_name):
    """ekka's offset: the trailing integer of the short name, rem 60000 (0 if none)."""
    match = TRAILING_NUMBER.search(short_name)
    return int(match.group(0)) % 60000 if match else 0


def dist_port(short_name):
    """The Erlang distribution port of a node in ekka mode."""
    return DIST_BASE_PORT + name_offset(short_name)


def rpc_port(short_name, discovery, tcp_server_port=5369):
    """The gen_rpc port of a node for rpc.port_discovery manual or stateless."""
    if discovery == "manual":
        return int(tcp_server_port)
    if discovery == "stateless":
        return RPC_STATELESS_BASE_PORT + name_offset(short_name)
    raise TopologyError(
        "emqx_rpc_port_discovery must be 'auto', 'manual' or 'stateless', not %r" % (discovery,)
    )


def resolve_discovery(discovery, count):
    """'auto' picks manual (the Docker image's choice) for one node per host.

    Several nodes on one host address cannot share manual's single port, so
    they need stateless (5370 + N).
    """
    if discovery == "auto":
        return "manual" if count == 1 else "stateless"
    if discovery == "manual" and count > 1:
        raise TopologyError(
            "emqx_rpc_port_discovery is 'manual', which gives every node the same cluster RPC "
            "port (emqx_rpc_tcp_server_port), but emqx_instances_per_host is %d: the nodes "
            "would clash on one host. Set emqx_rpc_port_discovery to 'stateless' (ports "
            "5370+N) or 'auto'." % count
        )
    return discovery


def instance_names(count, basename="emqx"):
    """Short names: 'emqx' for a single node per host, else emqx1, emqx2, ..."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise TopologyError("emqx_instances_per_host must be a whole number of at least 1, not %r" % (count,))
    if not SHORT_NAME.match(basename or "") or TRAILING_NUMBER.search(basename):
        raise TopologyError(
            "emqx_node_basename %r must match [0-9A-Za-z_-]+ (EMQX 4.4.4 refuses other node "
            "names) and must not end in a digit (the digit would shift the ports)" % (basename,)
        )
    if count == 1:
        return [basename]
    return ["%s%d" % (basename, index) for index in range(1, count + 1)]


def host_instances(host, count=1, basename="emqx", rpc_port_discovery="auto",
                   rpc_tcp_server_port=5369, port_step=10, ports=None,
                   with_epmd=False, dist_listen_min=6369):
    """Every EMQX node on one host, with its node name and ports.

    ``host`` is the address the other nodes reach this host at (EMQX_HOST).
    Each entry: index, name, node, host, container, dist_port, rpc_port,
    epmd (bool), listeners (listener -> host port), published (host port ->
    container port), publish (the same as "host:container" strings), and
    cluster_ports, client_ports and admin_ports (host ports by who may reach them).
    """
    if not host or not isinstance(host, str) or " " in host or "@" in host:
        raise TopologyError("emqx_node_host %r must be an address or host name without spaces" % (host,))
    names = instance_names(count, basename)
    discovery = resolve_discovery(rpc_port_discovery, len(names))
    if with_epmd and len(names) > 1:
        raise TopologyError(
            "emqx_with_epmd gives every node on a host the port emqx_dist_listen_min; it needs "
            "emqx_instances_per_host = 1"
        )
    base_ports = dict(DEFAULT_PORTS)
    base_ports.update(ports or {})
    unknown = sorted(set(base_ports) - set(DEFAULT_PORTS))
    if unknown:
        raise TopologyError("emqx_host_ports has unknown listeners %s; known: %s"
                            % (", ".join(unknown), ", ".join(sorted(DEFAULT_PORTS))))
    if len(names) > 1 and (not isinstance(port_step, int) or port_step < 1):
        raise TopologyError("emqx_instance_port_step must be a positive whole number, not %r" % (port_step,))

    nodes = []
    for index, name in enumerate(names, start=1):
        shift = (index - 1) * (port_step if len(names) > 1 else 0)
        listeners = dict((listener, int(port) + shift) for listener, port in base_ports.items())
        node_dist = int(dist_listen_min) if with_epmd else dist_port(name)
        node_rpc = rpc_port(name, discovery, rpc_tcp_server_port)
        published = dict((listeners[key], CONTAINER_PORTS[key]) for key in DEFAULT_PORTS)
        published[node_dist] = node_dist
        published[node_rpc] = node_rpc
        if with_epmd:
            published[EPMD_PORT] = EPMD_PORT
        nodes.append({
            "index": index,
            "name": name,
            "node": "%s@%s" % (name, host),
            "host": host,
            "container": name,
            "dist_port": node_dist,
            "rpc_port": node_rpc,
            "rpc_port_discovery": discovery,
            "epmd": bool(with_epmd),
            "listeners": listeners,
            "published": published,
            "publish": ["%d:%d" % (port, published[port]) for port in sorted(published)],
            # What the firewall opens to whom: peers, client networks, admin networks.
            "cluster_ports": sorted({node_dist, node_rpc} | ({EPMD_PORT} if with_epmd else set())),
            "client_ports": [listeners[key] for key in CLIENT_LISTENERS],
            "admin_ports": [listeners[key] for key in ADMIN_LISTENERS],
        })
    check_port_clashes(nodes)
    return nodes


def check_port_clashes(nodes):
    """Fail when one host port is wanted twice, by one node or by two."""
    owner = {}
    for node in nodes:
        wanted = [(port, "%s %s listener" % (node["name"], listener))
                  for listener, port in sorted(node["listeners"].items())]
        wanted.append((node["dist_port"], "%s distribution" % node["name"]))
        wanted.append((node["rpc_port"], "%s cluster RPC" % node["name"]))
        if node["epmd"]:
            wanted.append((EPMD_PORT, "%s epmd" % node["name"]))
        for port, what in wanted:
            if port in owner:
                raise TopologyError(
                    "host port %d is wanted by %s and by %s; change emqx_host_ports or "
                    "emqx_instance_port_step" % (port, owner[port], what))
            owner[port] = what


TOPOLOGY_SETTINGS = {
    # host_instances() argument: (inventory variable, how it is read)
    "count": ("emqx_instances_per_host", int),
    "basename": ("emqx_node_basename", str),
    "rpc_port_discovery": ("emqx_rpc_port_discovery", str),
    "rpc_tcp_server_port": ("emqx_rpc_tcp_server_port", int),
    "port_step": ("emqx_instance_port_step", int),
    "ports": ("emqx_host_ports", dict),
    "with_epmd": ("emqx_with_epmd", bool),
    "dist_listen_min": ("emqx_dist_listen_min", int),
}


def group_instances(hosts, defaults):
    """Every node of a group of hosts, in inventory order.

    ``hosts``: each host's variables (Ansible's hostvars). A host that worked
    out its nodes (``emqx_nodes``) brings them; any other (outside ``--limit``)
    is worked out here from its inventory variables, with ``defaults`` (the
    role's, by variable name) for what its inventory does not set.
    """
    nodes = []
    for variables in hosts:
        if "emqx_nodes" in variables:
            nodes.extend(variables["emqx_nodes"])
            continue
        options = {}
        for option, (name, kind) in TOPOLOGY_SETTINGS.items():
            value = variables[name] if name in variables else defaults[name]
            options[option] = boolean(value, strict=False) if kind is bool else kind(value)
        host = variables.get("emqx_node_host") or variables.get("ansible_host") or variables["inventory_hostname"]
        nodes.extend(host_instances(host, **options))
    return nodes


def cluster_nodes(hosts):
    """All node names of a cluster, in inventory order, from host_instances() lists."""
    return [node["node"] for instances in hosts for node in instances]


def seeds(hosts):
    """cluster.static.seeds: comma-separated, no spaces (4.4.4 does not trim them)."""
    return ",".join(cluster_nodes(hosts))
