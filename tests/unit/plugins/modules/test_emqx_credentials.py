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


class _Api(object):
    """A management API or dashboard on localhost that takes one user's basic auth on GET /api/v4/brokers."""

    def __init__(self, username, password):
        import base64
        import http.server
        import threading
        wanted = "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode()).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                ok = self.path == "/api/v4/brokers" and self.headers.get("Authorization") == wanted
                body = json.dumps({"code": 0, "data": []} if ok else {"message": "unauthorized"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_credentials_both_apis_take_cost_no_eval(docker, tmp_path, run_module):
    docker.set({"emqx1": {"node": "emqx@10.0.0.1", "state": "up", "group": "c"}},
               credentials={"app": b"new-secret".hex(), "admin": OLD_ADMIN}, data_dir=str(data_dir(tmp_path)))
    api, dashboard = _Api("mqttaction", "new-secret"), _Api("admin", "new-dash")
    try:
        failed, result = run_module(emqx_credentials.main, args(docker, tmp_path, api_url=api.url,
                                                                dashboard_url=dashboard.url))
        assert not failed and not result["changed"] and docker.commands() == []
    finally:
        api.close()
        dashboard.close()


def test_a_refusal_by_either_api_falls_back_to_what_the_cluster_stores(docker, tmp_path, run_module):
    docker.set({"emqx1": {"node": "emqx@10.0.0.1", "state": "up", "group": "c"}},
               credentials={"app": b"new-secret".hex(), "admin": OLD_ADMIN}, data_dir=str(data_dir(tmp_path)))
    api, dashboard = _Api("mqttaction", "new-secret"), _Api("admin", "public")  # the dashboard has the old one
    try:
        failed, result = run_module(emqx_credentials.main, args(docker, tmp_path, api_url=api.url,
                                                                dashboard_url=dashboard.url))
    finally:
        api.close()
        dashboard.close()
    assert not failed and result["changed"] and not result["app_secret_changed"] and result["dashboard_password_changed"]
    assert emqx_credentials.dashboard_password_matches(bytes.fromhex(docker.state()["credentials"]["admin"]),
                                                       "new-dash")
