"""emqx_cluster run in-process against the fake docker's cluster model."""

from __future__ import annotations

from ansible_collections.mqttaction.emqx.plugins.modules import emqx_cluster

A = "emqx1@10.0.0.1"
B = "emqx2@10.0.0.1"
C = "emqx3@10.0.0.1"


def node(name, group, state="up", cookie="k"):
    return {"node": name, "state": state, "group": group, "cookie": cookie}


def three_alone(docker, **extra):
    docker.set({"emqx1": node(A, "1"), "emqx2": node(B, "2"), "emqx3": node(C, "3")}, **extra)


def args(docker, **extra):
    return dict({"container": "emqx2", "docker_cli": str(docker.cli), "poll_interval": 0.05}, **extra)


def test_join_then_nothing_to_do(docker, run_module):
    three_alone(docker)
    failed, result = run_module(emqx_cluster.main, args(docker, seed=A), diff=True)
    assert not failed and result["changed"] is True and result["node"] == B
    assert result["before"] == {"running_nodes": [B], "stopped_nodes": []}
    assert result["after"] == {"running_nodes": [A, B], "stopped_nodes": []}
    assert result["cli_output"].startswith("Join the cluster successfully.")
    assert result["diff"]["before"] == "running_nodes:\n  - %s\nstopped_nodes: []\n" % B
    assert "  - %s\n  - %s\n" % (A, B) in result["diff"]["after"]
    assert docker.commands()[-2:] == ["cluster join %s" % A, "cluster status"]

    failed, result = run_module(emqx_cluster.main, args(docker, seed=A))
    assert not failed and result["changed"] is False
    assert not any("join" in command for command in docker.commands()[3:])


def test_join_check_mode_changes_nothing(docker, run_module):
    three_alone(docker)
    failed, result = run_module(emqx_cluster.main, args(docker, seed=A), check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["after"] == {"running_nodes": [A, B], "stopped_nodes": []}
    assert docker.commands() == ["status", "cluster status"]
    assert docker.state()["containers"]["emqx2"]["group"] == "2"


def test_join_through_a_seed_with_another_cookie_explains_node_down(docker, run_module):
    docker.set({"emqx1": node(A, "1", cookie="other"), "emqx2": node(B, "2")})
    failed, result = run_module(emqx_cluster.main, args(docker, seed=A))
    assert failed
    assert "Failed to join" not in result["msg"]  # the parsed words, not the raw line twice
    assert "said: {node_down,'%s'}" % A in result["msg"]
    assert "%s did not answer over Erlang distribution" % A in result["msg"]
    assert "cookie" in result["msg"] and "4370+N" in result["msg"]


def test_join_to_itself_or_a_stopped_member_changes_nothing(docker, run_module):
    docker.set({"emqx1": node(A, "c", state="stopped"), "emqx2": node(B, "c")})
    failed, result = run_module(emqx_cluster.main, args(docker, seed=B))
    assert not failed and result["changed"] is False
    failed, result = run_module(emqx_cluster.main, args(docker, seed=A))
    assert not failed and result["changed"] is False
    assert any("is a member of this node's cluster but is down" in w["event"]["msg"] for w in result["warnings"])


def test_leave(docker, run_module):
    docker.set({"emqx1": node(A, "c"), "emqx2": node(B, "c"), "emqx3": node(C, "c")})
    failed, result = run_module(emqx_cluster.main, args(docker, state="absent"), diff=True)
    assert not failed and result["changed"] is True
    assert result["before"]["running_nodes"] == [A, B, C]
    assert result["after"] == {"running_nodes": [B], "stopped_nodes": []}
    failed, result = run_module(emqx_cluster.main, args(docker, state="absent", node=B))
    assert not failed and result["changed"] is False
    assert "cluster leave" not in docker.commands()[-2:]


def test_force_leave_a_dead_node_from_a_member(docker, run_module):
    docker.set({"emqx1": node(A, "c"), "emqx2": node(B, "c"), "emqx3": node(C, "c", state="stopped")})
    failed, result = run_module(emqx_cluster.main, args(docker, container="emqx1", state="absent", node=C),
                                check_mode=True)
    assert not failed and result["changed"] is True
    assert result["after"] == {"running_nodes": [A, B], "stopped_nodes": []}
    assert "cluster force-leave %s" % C not in docker.commands()
    failed, result = run_module(emqx_cluster.main, args(docker, container="emqx1", state="absent", node=C))
    assert not failed and result["changed"] is True
    assert result["before"]["stopped_nodes"] == [C] and result["after"]["stopped_nodes"] == []
    failed, result = run_module(emqx_cluster.main, args(docker, container="emqx1", state="absent", node=C))
    assert not failed and result["changed"] is False


def test_waits_for_a_node_that_starts(docker, run_module):
    three_alone(docker, fail_next={"emqx2": 3})
    failed, result = run_module(emqx_cluster.main, args(docker, seed=A))
    assert not failed and result["changed"] is True


def test_bad_input(docker, run_module):
    three_alone(docker)
    for extra, words in (({}, "seed"), ({"seed": "emqx1"}, "seed must be a node name"),
                         ({"seed": A, "node": C}, "node applies to state=absent only"),
                         ({"state": "absent", "node": "emqx@a b"}, "node must be a node name")):
        failed, result = run_module(emqx_cluster.main, args(docker, **extra))
        assert failed and words in result["msg"], (extra, result["msg"])
    assert docker.commands() == []


def test_a_missing_container_is_named(docker, run_module):
    three_alone(docker)
    failed, result = run_module(emqx_cluster.main, args(docker, container="emqx9", seed=A))
    assert failed and "there is no container emqx9" in result["msg"]
