"""Membership views, comparison, messages and waiting (emqx_membership)."""

from __future__ import annotations

import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_membership as m
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import ApiError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_cli import CliOutputError, CtlError

A, B, C = "emqx@10.0.0.1", "emqx@10.0.0.2", "emqx@10.0.0.3"


def entry(node, **extra):
    base = {"node": node, "node_status": "Running", "version": "4.4.4", "uptime": "7 seconds",
            "connections": 0}
    base.update(extra)
    return base


def test_api_view_healthy_and_error_entries():
    view = m.api_view([entry(B), entry(A), {"node": C, "error": "badrpc"}])
    assert view["running_nodes"] == [A, B]
    assert view["unhealthy_nodes"] == [C]
    assert view["stopped_nodes"] is None
    assert view["nodes"][A]["healthy"] is True and view["nodes"][A]["version"] == "4.4.4"
    assert view["nodes"][C] == {"error": "badrpc", "healthy": False}


def test_api_view_status_other_than_running_is_unhealthy():
    view = m.api_view([entry(A, node_status="Stopped")])
    assert view["running_nodes"] == [] and view["unhealthy_nodes"] == [A]


@pytest.mark.parametrize("bad", [[{"version": "4.4.4"}], ["emqx@a"], [{"node": 7}]])
def test_api_view_refuses_entries_without_a_node(bad):
    with pytest.raises(ApiError) as info:
        m.api_view(bad)
    assert info.value.kind == "envelope" and not info.value.transient


def test_api_view_empty():
    assert m.api_view([])["running_nodes"] == []


def test_combined_view():
    cli = m.cli_view({"running_nodes": [B, A], "stopped_nodes": [C]})
    api = m.api_view([entry(A), {"node": B, "error": "timeout"}])
    view = m.combined_view(cli, api)
    assert view["running_nodes"] == [A]
    assert view["stopped_nodes"] == [C]
    assert view["unhealthy_nodes"] == [B]
    # A node only emqx_ctl sees running, or only the API lists, is unhealthy, not running.
    view = m.combined_view(m.cli_view({"running_nodes": [A, B], "stopped_nodes": []}),
                           m.api_view([entry(A), entry(C)]))
    assert view["running_nodes"] == [A]
    assert view["unhealthy_nodes"] == [B, C]
    assert "does not list it" in view["nodes"][B]["error"]
    assert "emqx_ctl does not" in view["nodes"][C]["error"]


def test_compare():
    view = m.cli_view({"running_nodes": [A, C], "stopped_nodes": []})
    assert m.compare(view, [A, B]) == {"missing_nodes": [B], "unexpected_nodes": [C], "match": False}
    assert m.compare(view, [C, A])["match"] is True


def test_compare_counts_an_unhealthy_stranger_and_not_a_stopped_one():
    view = m.combined_view(m.cli_view({"running_nodes": [A, C], "stopped_nodes": [B]}),
                           m.api_view([entry(A), {"node": C, "error": "badrpc"}]))
    assert m.compare(view, [A]) == {"missing_nodes": [], "unexpected_nodes": [C], "match": False}
    view = m.cli_view({"running_nodes": [A], "stopped_nodes": [B]})
    assert m.compare(view, [A])["match"] is True


def test_mismatch_message_names_nodes_and_causes():
    view = m.combined_view(m.cli_view({"running_nodes": [A, B, "emqx@9.9.9.9"], "stopped_nodes": [C]}),
                           m.api_view([entry(A), {"node": B, "error": "rpc"}, entry("emqx@9.9.9.9")]))
    text = m.mismatch_message(view, [A, B, C, "emqx@10.0.0.4"], "container emqx")
    assert "seen from container emqx" in text
    assert "down: %s" % C in text and "docker logs" in text
    assert "unhealthy: %s (%s: rpc)" % (B, B) in text and "cluster RPC port" in text
    assert "not members: emqx@10.0.0.4" in text and "cookie" in text and "4370+N" in text
    assert "Unexpected, running but not expected: emqx@9.9.9.9" in text


def test_mismatch_message_api_only_says_it_cannot_see_stopped_nodes():
    text = m.mismatch_message(m.api_view([entry(A)]), [A, B], "http://127.0.0.1:8081")
    assert "cannot see members that are down" in text


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def reader(*answers):
    """read() giving the answers in turn (an exception instance is raised); each read takes 0.5 s."""
    answers = list(answers)

    def read():
        read.calls += 1
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return m.cli_view({"running_nodes": answer, "stopped_nodes": []})
    read.calls = 0
    return read


def match(expected):
    return lambda view: m.compare(view, expected)["match"]


def test_wait_until_returns_at_once_when_done():
    clock = FakeClock()
    view, error, attempts, elapsed = m.wait_until(reader([A, B]), match([A, B]), 60, 2, clock, clock.sleep)
    assert (view["running_nodes"], error, attempts, elapsed, clock.sleeps) == ([A, B], None, 1, 0, [])


def test_wait_until_polls_through_transient_errors_until_the_cluster_forms():
    clock = FakeClock()
    read = reader(CtlError("not responding to pings", transient=True),
                  ApiError("refused", "connection refused"), [A], [A, B], [A, B, C])
    view, error, attempts, elapsed = m.wait_until(read, match([A, B, C]), 60, 2, clock, clock.sleep)
    assert error is None and view["running_nodes"] == [A, B, C]
    assert attempts == 5 and clock.sleeps == [2, 2, 2, 2] and elapsed == 8


def test_wait_until_gives_up_when_the_time_is_over():
    clock = FakeClock()
    view, error, attempts, elapsed = m.wait_until(reader([A]), match([A, B]), 7, 2, clock, clock.sleep)
    # Looks at 0, 2, 4 and 6 s; one more would end after the timeout.
    assert attempts == 4 and elapsed == 6 and error is None and view["running_nodes"] == [A]


def test_wait_until_stops_at_once_on_an_error_waiting_cannot_cure():
    clock = FakeClock()
    read = reader(ApiError("auth", "401 Unauthorized", status=401))
    view, error, attempts, elapsed = m.wait_until(read, match([A]), 60, 2, clock, clock.sleep)
    assert view is None and error.kind == "auth" and attempts == 1 and elapsed == 0 and clock.sleeps == []
    read = reader(CliOutputError("not a status"))
    assert m.wait_until(read, match([A]), 60, 2, clock, clock.sleep)[2] == 1


def test_wait_until_keeps_the_last_error_when_time_runs_out():
    clock = FakeClock()
    read = reader([A], CtlError("container emqx is restarting", transient=True))
    view, error, attempts, elapsed = m.wait_until(read, match([A, B]), 5, 2, clock, clock.sleep)
    assert isinstance(error, CtlError) and view["running_nodes"] == [A] and attempts == 3 and elapsed == 4


def test_wait_until_zero_timeout_looks_once():
    clock = FakeClock()
    assert m.wait_until(reader([A]), match([B]), 0, 2, clock, clock.sleep)[2] == 1


def test_split_views_agreeing_nodes_are_one_part():
    views = {A: [A, B, C], B: [C, B, A], C: [A, B, C]}
    assert m.split_views(views) == [{"nodes": [A, B, C], "sees": [A, B, C]}]
    assert m.split_message(views) == ""


def test_split_message_names_the_majority_autoheal_keeps():
    views = {A: [A, B], B: [A, B], C: [C]}
    parts = m.split_views(views)
    assert parts == [{"nodes": [A, B], "sees": [A, B]}, {"nodes": [C], "sees": [C]}]
    message = m.split_message(views)
    assert "network partition" in message
    assert "%s, %s see running: %s, %s." % (A, B, A, B) in message
    assert "%s sees running: %s." % (C, C) in message
    assert "keeps the majority (%s, %s)" % (A, B) in message
    assert "rolling_restart --limit" in message


def test_split_message_on_a_tie_and_with_three_parts():
    assert "equal size" in m.split_message({A: [A], B: [B]})
    message = m.split_message({A: [A], B: [B], C: [C]})
    assert "cannot decide between more than two parts" in message


def test_split_message_of_a_node_that_sees_nothing():
    assert "sees running: none." in m.split_message({A: [A, B], B: [A, B], C: []})


def test_split_filter_takes_module_results():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mqttaction.emqx.plugins.filter.emqx_cluster_split import emqx_cluster_split

    results = [{"item": {"node": A}, "running_nodes": [A, B]}, {"item": {"node": B}, "running_nodes": [A, B]},
               {"item": {"node": C}, "running_nodes": [C]}]
    assert "network partition" in emqx_cluster_split(results)
    assert emqx_cluster_split(results[:2]) == ""
    with pytest.raises(AnsibleFilterError):
        emqx_cluster_split([{"running_nodes": []}])
    with pytest.raises(AnsibleFilterError):
        emqx_cluster_split("emqx@a")
