"""Parsing emqx_ctl's 4.4.4 output, as printed by the real broker (FACTS.md §4)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_cluster_status import FilterModule
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_cli as cli

ONE_LINE = ("Cluster status: #{running_nodes => ['emqx@node1.emqx.io','emqx@node2.emqx.io'],\n"
            "                  stopped_nodes => []}\n")
THREE_WRAPPED = ("Cluster status: #{running_nodes =>\n"
                 "                      ['emq01@10.11.11.1','emq02@10.11.12.1','emq03@10.11.13.1'],\n"
                 "                  stopped_nodes => []}\n")
LIST_WRAPPED = ("Cluster status: #{running_nodes =>\n"
                "                      ['emqx@172.28.42.11','emqx@172.28.42.12',\n"
                "                       'emqx@172.28.42.13'],\n"
                "                  stopped_nodes => []}\n")
STOPPED = ("Cluster status: #{running_nodes => ['emqx@172.28.42.12','emqx@172.28.42.11'],\n"
           "                  stopped_nodes => ['emqx@172.28.42.13']}\n")
ALONE = "Cluster status: #{running_nodes => ['emqx@172.28.42.14'],stopped_nodes => []}\n"
PLUGINS = ("Plugin(emqx_auth_mysql, description=EMQX Authentication/ACL with MySQL, active=false)\n"
           "Plugin(emqx_dashboard, description=EMQX Web Dashboard, active=true)\n"
           "Plugin(emqx_management, description=EMQX Management API and CLI, active=true)\n")


@pytest.mark.parametrize(
    ("text", "running", "stopped"),
    [
        (ONE_LINE, ["emqx@node1.emqx.io", "emqx@node2.emqx.io"], []),
        (THREE_WRAPPED, ["emq01@10.11.11.1", "emq02@10.11.12.1", "emq03@10.11.13.1"], []),
        (LIST_WRAPPED, ["emqx@172.28.42.11", "emqx@172.28.42.12", "emqx@172.28.42.13"], []),
        (STOPPED, ["emqx@172.28.42.11", "emqx@172.28.42.12"], ["emqx@172.28.42.13"]),
        (ALONE, ["emqx@172.28.42.14"], []),
        ("Cluster status: #{running_nodes => [],stopped_nodes => []}", [], []),
    ],
)
def test_cluster_status(text, running, stopped):
    assert cli.parse_cluster_status(text) == {"running_nodes": running, "stopped_nodes": stopped}


@pytest.mark.parametrize(
    "text",
    ["", "Node 'emqx@127.0.0.1' not responding to pings.",
     "Cluster status: [{running_nodes,['emqx@127.0.0.1']}]",  # the pre-4.3 form the docs still show
     "cluster status                  # Cluster status", None],
)
def test_not_a_cluster_status(text):
    with pytest.raises(cli.CliOutputError):
        cli.parse_cluster_status(text)


def test_plugins():
    assert cli.parse_plugins(PLUGINS) == {"emqx_auth_mysql": False, "emqx_dashboard": True,
                                          "emqx_management": True}
    with pytest.raises(cli.CliOutputError):
        cli.parse_plugins("Node 'emqx@h' not responding to pings.")


def test_filters():
    filters = FilterModule().filters()
    assert filters["emqx_cluster_status"](STOPPED)["stopped_nodes"] == ["emqx@172.28.42.13"]
    assert filters["emqx_plugins"](PLUGINS)["emqx_dashboard"] is True
    with pytest.raises(AnsibleFilterError, match="not an EMQX 4.4.4 cluster status"):
        filters["emqx_cluster_status"]("garbage")


def test_node_status():
    assert cli.parse_node_status("Node 'emqx@172.18.0.2' 4.4.4 is started\n") == {
        "node": "emqx@172.18.0.2", "version": "4.4.4", "status": "started"}
    # 4.3.0 printed a second line; the first is the same.
    assert cli.parse_node_status("Node 'emqx1@10.0.0.1' 4.3.0 is started\nemqx 4.3.0 is running\n")["node"] \
        == "emqx1@10.0.0.1"
    with pytest.raises(cli.CliOutputError):
        cli.parse_node_status("Node 'emqx@h' not responding to pings.")


JOINED = ("Join the cluster successfully.\n"
          "Cluster status: #{running_nodes => ['emqx@10.0.0.1','emqx@10.0.0.2'],\n"
          "                  stopped_nodes => []}\n")


@pytest.mark.parametrize(("action", "text", "outcome", "tag", "node"), [
    ("join", JOINED, "done", None, None),
    ("join", "Ignore.\n", "ignored", None, None),
    ("join", "Failed to join the cluster: {node_down,'emqx@10.0.0.1'}\n", "failed", "node_down", "emqx@10.0.0.1"),
    ("join", "Failed to join the cluster: {already_in_cluster,'emqx@10.0.0.1'}\n", "failed",
     "already_in_cluster", "emqx@10.0.0.1"),
    ("leave", "Leave the cluster successfully.\nCluster status: #{running_nodes => ['emqx@h'],stopped_nodes => []}\n",
     "done", None, None),
    ("leave", "Failed to leave the cluster: node_not_in_cluster\n", "failed", "node_not_in_cluster", None),
    ("leave", "Failed to leave the cluster: {failed_to_leave,['emqx@a','emqx@b']}\n", "failed",
     "failed_to_leave", "emqx@a"),
    ("force-leave", "Remove the node from cluster successfully.\n", "done", None, None),
    ("force-leave", "Ignore.\n", "ignored", None, None),
    ("force-leave", "Failed to remove the node from cluster: node_not_in_cluster\n", "failed",
     "node_not_in_cluster", None),
])
def test_parse_change(action, text, outcome, tag, node):
    result = cli.parse_change(action, text)
    assert (result.outcome, result.tag, result.node) == (outcome, tag, node)


def test_parse_change_refuses_other_output():
    with pytest.raises(cli.CliOutputError):
        cli.parse_change("join", "cluster join <Node>                             # Join the cluster\n")
    with pytest.raises(cli.CliOutputError):
        cli.parse_change("leave", "Join the cluster successfully.\n")


def test_explain_change_failure():
    node_down = cli.parse_change("join", "Failed to join the cluster: {node_down,'emqx@10.0.0.1'}")
    text = cli.explain_change_failure("join", node_down, "emqx@10.0.0.1")
    assert text.startswith("emqx_ctl cluster join said: {node_down,'emqx@10.0.0.1'}.")
    assert "cookie" in text and "4370+N" in text and "5369" in text
    schema = cli.parse_change("join", "Failed to join the cluster: {merge_schema_failed,"
                                      "\"Bad cookie in table definition\"}")
    assert "data/mnesia" in cli.explain_change_failure("join", schema, "emqx@a")
    other = cli.parse_change("leave", "Failed to leave the cluster: timeout")
    assert cli.explain_change_failure("leave", other, "emqx@a") == "emqx_ctl cluster leave said: timeout."


VM_OUTPUT = """cpu/load1               : 0.42
cpu/load5               : 0.40
cpu/load15              : 0.38
memory/total            : 99995208
memory/processes        : 26000000
process/limit           : 2097152
process/count           : 315
io/max_fds              : 16384
io/active_fds           : 0
ports/count           : 18
ports/limit           : 1048576
"""

LISTENERS_OUTPUT = """mqtt:ssl:external
  listen_on       : 0.0.0.0:8883
  acceptors       : 32
  max_conns       : 102400
  current_conn    : 0
  shutdown_count  : []
mqtt:tcp:external
  listen_on       : 0.0.0.0:1883
  acceptors       : 64
  max_conns       : 1024000
  current_conn    : 12
  shutdown_count  : [{closed,3}]
http:management
  listen_on       : 0.0.0.0:8081
  acceptors       : 2
  max_conns       : 512
  current_conn    : 0
  shutdown_count  : []
"""


def test_parse_vm_reads_4_4_4_lines_with_short_ports_padding():
    from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import parse_vm

    vm = parse_vm(VM_OUTPUT)
    assert vm["process/limit"] == 2097152 and vm["io/max_fds"] == 16384
    assert vm["ports/limit"] == 1048576 and vm["cpu/load1"] == "0.42"


def test_parse_listeners_reads_every_block():
    from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import parse_listeners

    listeners = parse_listeners(LISTENERS_OUTPUT)
    assert list(listeners) == ["mqtt:ssl:external", "mqtt:tcp:external", "http:management"]
    assert listeners["mqtt:tcp:external"] == {"listen_on": "0.0.0.0:1883", "acceptors": 64, "max_conns": 1024000,
                                              "current_conn": 12, "shutdown_count": "[{closed,3}]"}


def test_vm_and_listeners_refuse_other_output():
    import pytest
    from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import (
        CliOutputError,
        parse_listeners,
        parse_vm,
    )

    for parse in (parse_vm, parse_listeners):
        with pytest.raises(CliOutputError):
            parse("Node 'emqx@127.0.0.1' not responding to pings.\n")
