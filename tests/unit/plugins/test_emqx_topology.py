"""The port and name rules of EMQX 4.4.4 nodes, as the roles compute them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_instances import FilterModule
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_topology as topo


@pytest.mark.parametrize(
    ("name", "port"),
    [("emqx", 4370), ("emqx1", 4371), ("emqx-2", 4372), ("emqx_12", 4382), ("node07", 4377),
     ("emqx60001", 4371), ("e1x", 4370)],
)
def test_dist_port_follows_ekka(name, port):
    assert topo.dist_port(name) == port


def test_rpc_port_manual_and_stateless():
    assert topo.rpc_port("emqx3", "manual") == 5369
    assert topo.rpc_port("emqx3", "manual", 6000) == 6000
    assert topo.rpc_port("emqx3", "stateless") == 5373
    assert topo.rpc_port("emqx", "stateless") == 5370
    with pytest.raises(topo.TopologyError, match="emqx_rpc_port_discovery"):
        topo.rpc_port("emqx", "dns")


def test_single_node_host_is_the_docker_default():
    (node,) = topo.host_instances("10.0.0.1")
    assert node["name"] == "emqx" and node["node"] == "emqx@10.0.0.1" and node["container"] == "emqx"
    assert (node["dist_port"], node["rpc_port"], node["rpc_port_discovery"]) == (4370, 5369, "manual")
    assert node["listeners"] == topo.DEFAULT_PORTS
    assert node["published"] == {1883: 1883, 8883: 8883, 8083: 8083, 8084: 8084, 8081: 8081,
                                 18083: 18083, 4370: 4370, 5369: 5369}
    assert node["publish"] == ["1883:1883", "4370:4370", "5369:5369", "8081:8081", "8083:8083", "8084:8084",
                               "8883:8883", "18083:18083"]


def test_three_nodes_on_one_host_like_the_seed():
    nodes = topo.host_instances("192.0.2.7", count=3)
    assert [n["node"] for n in nodes] == ["emqx1@192.0.2.7", "emqx2@192.0.2.7", "emqx3@192.0.2.7"]
    assert [n["dist_port"] for n in nodes] == [4371, 4372, 4373]
    assert [n["rpc_port"] for n in nodes] == [5371, 5372, 5373]
    assert {n["rpc_port_discovery"] for n in nodes} == {"stateless"}
    assert [n["listeners"]["mqtt"] for n in nodes] == [1883, 1893, 1903]
    assert nodes[1]["published"][1893] == 1883, "inside the container the listener keeps its port"
    assert nodes[2]["published"][18103] == 18083
    assert [n["cluster_ports"] for n in nodes] == [[4371, 5371], [4372, 5372], [4373, 5373]]
    assert nodes[1]["client_ports"] == [1893, 8893, 8093, 8094]
    assert nodes[1]["admin_ports"] == [8091, 18093]


def test_manual_discovery_with_several_nodes_is_refused():
    with pytest.raises(topo.TopologyError, match="emqx_rpc_port_discovery.*emqx_instances_per_host is 2"):
        topo.host_instances("h1", count=2, rpc_port_discovery="manual")


@pytest.mark.parametrize("count", [0, -1, "3", 1.5, True])
def test_bad_instance_count(count):
    with pytest.raises(topo.TopologyError, match="emqx_instances_per_host"):
        topo.host_instances("h1", count=count)


@pytest.mark.parametrize("basename", ["emqx.a", "", "em qx", "emqx1", "é"])
def test_bad_basename(basename):
    with pytest.raises(topo.TopologyError, match="emqx_node_basename"):
        topo.host_instances("h1", basename=basename)


@pytest.mark.parametrize("host", ["", " 10.0.0.1", "a@b", None])
def test_bad_host(host):
    with pytest.raises(topo.TopologyError, match="emqx_node_host"):
        topo.host_instances(host)


def test_port_clash_between_instances_names_both():
    # a step of 1 puts emqx2's ws listener (8084) on emqx1's wss listener (8084)
    with pytest.raises(topo.TopologyError, match=r"host port 8084 .*emqx1 wss.*emqx2 ws"):
        topo.host_instances("h1", count=2, port_step=1)


def test_port_clash_within_one_node():
    with pytest.raises(topo.TopologyError, match="host port 4370"):
        topo.host_instances("h1", ports={"api": 4370})


def test_unknown_listener_is_refused():
    with pytest.raises(topo.TopologyError, match="unknown listeners coap"):
        topo.host_instances("h1", ports={"coap": 5683})


def test_epmd_mode():
    (node,) = topo.host_instances("h1", with_epmd=True)
    assert node["dist_port"] == 6369 and node["published"][4369] == 4369 and node["epmd"]
    assert node["cluster_ports"] == [4369, 5369, 6369]
    with pytest.raises(topo.TopologyError, match="emqx_with_epmd"):
        topo.host_instances("h1", count=2, with_epmd=True)


def test_seeds_have_no_spaces_and_keep_inventory_order():
    hosts = [topo.host_instances("b.lab"), topo.host_instances("a.lab")]
    assert topo.seeds(hosts) == "emqx@b.lab,emqx@a.lab"
    assert topo.cluster_nodes(hosts) == ["emqx@b.lab", "emqx@a.lab"]


def test_filter_raises_ansible_errors():
    emqx_instances = FilterModule().filters()["emqx_instances"]
    assert emqx_instances("h1", count=2)[1]["name"] == "emqx2"
    with pytest.raises(AnsibleFilterError, match="emqx_instances_per_host"):
        emqx_instances("h1", count=0)


TOPOLOGY_DEFAULTS = {"emqx_instances_per_host": 1, "emqx_node_basename": "emqx", "emqx_rpc_port_discovery": "auto",
                     "emqx_rpc_tcp_server_port": 5369, "emqx_instance_port_step": 10, "emqx_host_ports": {},
                     "emqx_with_epmd": False, "emqx_dist_listen_min": 6369}


def test_a_group_brings_the_nodes_its_hosts_worked_out_and_works_out_the_others():
    worked_out = topo.host_instances("192.0.2.11", count=2)
    hosts = [{"inventory_hostname": "h1", "emqx_nodes": worked_out},
             {"inventory_hostname": "h2", "ansible_host": "192.0.2.12", "emqx_instances_per_host": "3"},
             {"inventory_hostname": "h3", "emqx_node_host": "h3.example.net", "emqx_with_epmd": "true"}]
    nodes = topo.group_instances(hosts, TOPOLOGY_DEFAULTS)
    assert [node["node"] for node in nodes] == ["emqx1@192.0.2.11", "emqx2@192.0.2.11", "emqx1@192.0.2.12",
                                                "emqx2@192.0.2.12", "emqx3@192.0.2.12", "emqx@h3.example.net"]
    assert nodes[-1]["epmd"] is True and nodes[-1]["dist_port"] == 6369
