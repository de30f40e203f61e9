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
