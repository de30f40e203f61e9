"""Which nodes run, and which of them must restart, from docker_host_info's containers."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_node_states import node_states

NODES = [{"name": "emqx%d" % n, "container": "emqx%d" % n, "node": "emqx%d@10.0.0.1" % n} for n in (1, 2, 3)]


def container(name, state="running", digest="d1", cookie=None):
    labels = {"org.mqttaction.emqx.config": digest, "org.mqttaction.emqx.node": "%s@10.0.0.1" % name}
    if cookie:
        labels["org.mqttaction.emqx.cookie"] = cookie
    return {"Names": ["/" + name], "State": state, "Image": "registry/emqx:4.4.4", "Labels": labels}


def test_a_running_node_with_its_digest_is_left_alone_and_one_with_another_is_pending():
    states = node_states([container("emqx1"), container("emqx2", digest="old")], NODES,
                         {"emqx1": "d1", "emqx2": "d1", "emqx3": "d1"})
    assert states["running"] == ["emqx1", "emqx2"] and states["pending"] == ["emqx2"]
    assert states["changed"] == ["emqx2"]


def test_stopped_missing_and_foreign_containers_do_not_run():
    states = node_states([container("emqx1", state="exited"), container("other")], NODES, {"emqx1": "d1"})
    assert states == {"running": [], "pending": [], "changed": [], "cookie_changed": []}


def test_restart_all_makes_every_running_node_pending_and_says_which_have_other_settings():
    states = node_states([container("emqx2", digest="old"), container("emqx3")], NODES,
                         {"emqx2": "d1", "emqx3": "d1"}, restart_all=True)
    assert states["pending"] == ["emqx2", "emqx3"] and states["changed"] == ["emqx2"]


def test_text_instead_of_containers_is_refused():
    with pytest.raises(AnsibleFilterError, match="verbose_output=true"):
        node_states(["emqx1 running"], NODES, {})


def test_a_running_node_with_another_cookie_is_named_and_one_without_the_label_is_not():
    states = node_states([container("emqx1", cookie="c1"), container("emqx2", cookie="c0"), container("emqx3")],
                         NODES, {}, cookie="c1")
    assert states["cookie_changed"] == ["emqx2@10.0.0.1"]
