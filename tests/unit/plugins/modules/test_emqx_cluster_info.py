"""emqx_cluster_info run in-process: emqx_ctl through a fake docker, the API through a local server."""

from __future__ import annotations

import json

import pytest
from ansible_collections.mqttaction.emqx.plugins.modules import emqx_cluster_info

A = "emqx@10.0.0.1"
B = "emqx@10.0.0.2"
C = "emqx@10.0.0.3"


def up(node, group="c"):
    return {"node": node, "state": "up", "group": group}


@pytest.fixture
def api(api_server):
    return api_server


def entry(node, **extra):
    return dict({"node": node, "node_status": "Running", "version": "4.4.4", "uptime": "1 minutes, 2 seconds",
                 "connections": 3}, **extra)


def cli_args(docker, **extra):
    return dict({"source": "cli", "container": "emqx1", "docker_cli": str(docker.cli)}, **extra)


def api_args(api, **extra):
    return dict({"api_url": api.url, "api_username": api.user, "api_password": api.secret}, **extra)


def test_cli_reports_running_and_stopped_nodes(docker, run_module):
    docker.set({"emqx1": up(A), "emqx2": up(B), "emqx3": dict(up(C), state="stopped")})
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker))
    assert not failed and result["changed"] is False
    assert result["running_nodes"] == [A, B] and result["stopped_nodes"] == [C]
    assert "match" not in result and result["attempts"] == 1
    assert result["cli_output"].startswith("Cluster status: #{running_nodes =>")


def test_cli_waits_for_a_node_that_starts(docker, run_module):
    docker.set({"emqx1": up(A), "emqx2": up(B)}, fail_next={"emqx1": 2})
    failed, result = run_module(emqx_cluster_info.main,
                                cli_args(docker, expected_nodes=[B, A], poll_interval=0.05))
    assert not failed and result["match"] is True and result["attempts"] == 3
    assert result["missing_nodes"] == [] and result["unexpected_nodes"] == []


def test_cli_waits_through_the_restart_of_a_join(docker, run_module):
    """4.4.4 restarts a node's applications when ekka joins it to the cluster; emqx_ctl fails meanwhile."""
    docker.set({"emqx1": up(A), "emqx2": up(B)}, restarting_next={"emqx1": 2})
    failed, result = run_module(emqx_cluster_info.main,
                                cli_args(docker, expected_nodes=[A, B], poll_interval=0.05))
    assert not failed and result["match"] is True and result["attempts"] == 3


def test_mismatch_fails_with_the_nodes_and_causes(docker, run_module):
    docker.set({"emqx1": up(A), "emqx3": dict(up(C), state="stopped"), "emqx9": up("emqx@10.9.9.9")})
    failed, result = run_module(emqx_cluster_info.main, cli_args(
        docker, expected_nodes=[A, B, C], wait_timeout=1, poll_interval=0.3))
    assert failed and result["match"] is False
    assert result["missing_nodes"] == [B, C] and result["unexpected_nodes"] == ["emqx@10.9.9.9"]
    assert result["attempts"] >= 3
    assert "down: %s" % C in result["msg"] and "not members: %s" % B in result["msg"]
    assert "cookie" in result["msg"] and "Unexpected" in result["msg"]


def test_report_only(docker, run_module):
    docker.set({"emqx1": up(A)})
    failed, result = run_module(emqx_cluster_info.main, cli_args(
        docker, expected_nodes=[A, B], wait_timeout=0, fail_on_mismatch=False))
    assert not failed and result["match"] is False and result["missing_nodes"] == [B]
    assert result["attempts"] == 1


def test_cli_errors(docker, run_module):
    docker.set({"emqx1": up(A)})
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker, container="nope"))
    assert failed and "there is no container nope" in result["msg"]
    docker.set({"emqx1": dict(up(A), state="down")})
    failed, result = run_module(emqx_cluster_info.main, cli_args(
        docker, expected_nodes=[A], wait_timeout=1, poll_interval=0.4))
    assert failed and "not responding to pings" in result["msg"] and "attempts" in result["msg"]
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker, docker_cli="/nonexistent/docker"))
    assert failed and "/nonexistent/docker" in result["msg"]


def test_api_reports_details_and_unhealthy_nodes(api, run_module):
    api.nodes = [entry(A), entry(B), {"node": C, "error": "badrpc"}]
    failed, result = run_module(emqx_cluster_info.main, api_args(api))
    assert not failed and result["running_nodes"] == [A, B] and result["unhealthy_nodes"] == [C]
    assert result["stopped_nodes"] is None
    assert result["nodes"][A]["connections"] == 3 and result["nodes"][C]["healthy"] is False
    assert "cli_output" not in result


def test_api_401_fails_at_once_without_the_password(api, run_module):
    failed, result = run_module(emqx_cluster_info.main, api_args(
        api, api_password="public-wrong", expected_nodes=[A], wait_timeout=30))
    assert failed and "401" in result["msg"] and result["attempts"] == 1
    assert "public-wrong" not in json.dumps(result)


def test_both_combines_the_sources(api, docker, run_module):
    docker.set({"emqx1": up(A), "emqx2": up(B), "emqx3": dict(up(C), state="stopped")})
    api.nodes = [entry(A), {"node": B, "error": "timeout"}]
    failed, result = run_module(emqx_cluster_info.main, dict(
        api_args(api), **cli_args(docker, source="both", expected_nodes=[A, B, C], wait_timeout=0)))
    assert failed and result["running_nodes"] == [A] and result["stopped_nodes"] == [C]
    assert result["unhealthy_nodes"] == [B] and result["missing_nodes"] == [B, C]
    assert "running but unhealthy: %s" % B in result["msg"]


def test_api_asks_emqx_ctl_once_to_explain_a_mismatch(api, docker, run_module):
    """The API cannot see a member that is down; emqx_ctl is asked only when the wait ends without a match."""
    docker.set({"emqx1": up(A), "emqx2": up(B), "emqx3": dict(up(C), state="stopped")})
    api.nodes = [entry(A), entry(B)]
    failed, result = run_module(emqx_cluster_info.main, api_args(api, container="emqx1", docker_cli=str(docker.cli),
                                                                 expected_nodes=[A, B], wait_timeout=0))
    assert not failed and result["stopped_nodes"] is None and docker.commands() == []
    failed, result = run_module(emqx_cluster_info.main, api_args(api, container="emqx1", docker_cli=str(docker.cli),
                                                                 expected_nodes=[A, B, C], wait_timeout=0))
    assert failed and result["stopped_nodes"] == [C] and "known members that are down: %s" % C in result["msg"]
    assert docker.commands() == ["cluster status"]


def plugins(**active):
    return [{"type": "feature", "name": name, "description": "", "active": on} for name, on in active.items()]


def test_the_wait_ends_once_the_node_runs_its_plugins(api, run_module):
    """4.4.4 serves the API before every plugin is loaded: membership alone does not end the wait."""
    api.nodes = [entry(A), entry(B)]
    api.plugins[A] = [plugins(emqx_management=True, emqx_auth_mnesia=False)] * 2 + [
        plugins(emqx_management=True, emqx_auth_mnesia=True, emqx_lua_hook=False)]
    failed, result = run_module(emqx_cluster_info.main, api_args(
        api, expected_nodes=[A, B], node=A, expected_plugins=["emqx_management", "emqx_auth_mnesia"],
        poll_interval=0.05))
    assert not failed and result["match"] is True and result["inactive_plugins"] == []
    assert result["attempts"] == 3 and "plugins" not in result
    assert [path for path, _auth in api.seen].count("/api/v4/nodes/%s/plugins" % A) == 3


def test_the_node_s_listeners_are_read_once_the_wait_is_over(api, run_module):
    """What runs, for the tuning check: the official entrypoint's variables override emqx.conf."""
    tcp = {"identifier": "mqtt:tcp:external", "protocol": "mqtt:tcp", "listen_on": "0.0.0.0:1883",
           "acceptors": 16, "max_conns": 1024000, "current_conns": 0}
    api.nodes, api.listeners[A] = [entry(A, process_available=2097152, max_fds=16384)], [tcp]
    failed, result = run_module(emqx_cluster_info.main, api_args(api, expected_nodes=[A], node=A))
    assert not failed and result["listeners"] == [tcp]
    assert result["nodes"][A]["process_available"] == 2097152 and result["nodes"][A]["max_fds"] == 16384
    assert [path for path, _auth in api.seen].count("/api/v4/nodes/%s/listeners" % A) == 1


def test_a_plugin_that_does_not_start_fails_naming_it(api, run_module):
    api.nodes = [entry(A)]
    api.plugins[A] = [plugins(emqx_management=True, emqx_auth_mysql=False)]
    failed, result = run_module(emqx_cluster_info.main, api_args(
        api, expected_nodes=[A], node=A, expected_plugins=["emqx_auth_mysql", "emqx_management"],
        container="emqx", wait_timeout=1, poll_interval=0.3))
    assert failed and result["match"] is True and result["inactive_plugins"] == ["emqx_auth_mysql"]
    assert result["msg"].startswith("%s: plugins not active after" % A)
    assert "emqx_auth_mysql." in result["msg"] and "docker logs emqx" in result["msg"]


def test_plugins_are_not_asked_of_a_node_that_is_not_running(api, run_module):
    api.nodes = [entry(B)]
    failed, result = run_module(emqx_cluster_info.main, api_args(
        api, expected_nodes=[A, B], node=A, expected_plugins=["emqx_management"],
        wait_timeout=0, fail_on_mismatch=False))
    assert not failed and result["missing_nodes"] == [A] and result["inactive_plugins"] == ["emqx_management"]
    assert all("plugins" not in path for path, _auth in api.seen)


def test_plugins_only_through_the_api(docker, run_module):
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker, node=A, expected_plugins=["emqx_management"]))
    assert failed and "management API" in result["msg"]
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker, expected_plugins=["emqx_management"]))
    assert failed and "node" in result["msg"]


@pytest.mark.parametrize(("args", "needs"), [
    ({"source": "api"}, "api_username, api_password"),
    ({"source": "cli"}, "container"),
    ({"source": "both", "api_username": "a", "api_password": "b"}, "container"),
])
def test_required_options(run_module, args, needs):
    failed, result = run_module(emqx_cluster_info.main, args)
    assert failed and needs in result["msg"]


def test_expected_nodes_are_node_names(docker, run_module):
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker, expected_nodes=["10.0.0.1", " emqx@h"]))
    assert failed and "'10.0.0.1'" in result["msg"] and "' emqx@h'" in result["msg"]


def test_check_mode_reads_the_same(docker, run_module):
    docker.set({"emqx1": up(A)})
    failed, result = run_module(emqx_cluster_info.main, cli_args(docker, expected_nodes=[A]), check_mode=True)
    assert not failed and result["match"] is True and result["changed"] is False
