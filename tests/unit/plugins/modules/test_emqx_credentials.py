"""emqx_credentials: what a running cluster stores is read, and set through a file of the data directory only."""

from __future__ import annotations

import json

from ansible_collections.mqttaction.emqx.plugins.modules import emqx_credentials

OLD_ADMIN = "55b53dc47c24670cc205eb4b9bc57e8fdf095ff6"  # 4.4.4's stored form of "public", read from a node


def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


def args(docker, tmp_path, **extra):
    return dict({"container": "emqx1", "docker_cli": str(docker.cli), "data_dir": str(data_dir(tmp_path)),
                 "app_id": "mqttaction", "app_secret": "new-secret", "dashboard_password": "new-dash"}, **extra)


def test_changed_secrets_are_set_once_and_never_shown(docker, tmp_path, run_module):
    docker.set({"emqx1": {"node": "emqx@10.0.0.1", "state": "up", "group": "c"}},
               credentials={"app": b"old-secret".hex(), "admin": OLD_ADMIN}, data_dir=str(data_dir(tmp_path)))
    failed, predicted = run_module(emqx_credentials.main, args(docker, tmp_path), check_mode=True, diff=True)
    assert not failed and predicted["app_secret_changed"] and predicted["dashboard_password_changed"]
    assert docker.state()["credentials"]["app"] == b"old-secret".hex(), "check mode changes nothing"
    assert predicted["diff"]["after"] == ("management application mqttaction: secret changes\n"
                                          "dashboard user admin: password changes\n")
    failed, result = run_module(emqx_credentials.main, args(docker, tmp_path))
    assert not failed and result["changed"]
    assert bytes.fromhex(docker.state()["credentials"]["app"]) == b"new-secret"
    assert emqx_credentials.dashboard_password_matches(bytes.fromhex(docker.state()["credentials"]["admin"]),
                                                       "new-dash")
    assert list(data_dir(tmp_path).iterdir()) == [], "the handed-over file is gone"
    commands = " ".join(docker.commands())
    assert "new-secret" not in commands and "new-dash" not in commands, "no secret on a command line"
    assert "new-secret" not in json.dumps(result) and "new-dash" not in json.dumps(result)
    failed, again = run_module(emqx_credentials.main, args(docker, tmp_path))
    assert not failed and not again["changed"]


def test_the_stored_dashboard_password_is_checked_as_4_4_4_stores_it():
    stored = bytes.fromhex(OLD_ADMIN)
    assert emqx_credentials.dashboard_password_matches(stored, "public")
    assert not emqx_credentials.dashboard_password_matches(stored, "public2")
    assert not emqx_credentials.dashboard_password_matches(None, "public")


def test_names_that_would_break_the_expression_are_refused(docker, tmp_path, run_module):
    docker.set({"emqx1": {"node": "emqx@10.0.0.1", "state": "up", "group": "c"}})
    failed, result = run_module(emqx_credentials.main, args(docker, tmp_path, app_id='x">>, halt()'))
    assert failed and result["msg"].startswith("app_id must be letters") and docker.commands() == []
