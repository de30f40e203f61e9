"""emqx_auth_mnesia against a management API that keeps users and rules as 4.4.4's emqx_auth_mnesia does."""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_auth_mnesia import password_matches, stored_password
from ansible_collections.mqttaction.emqx.plugins.modules import emqx_auth_mnesia

AUTH = "Basic " + base64.b64encode(b"mqttaction:s3cret").decode()


class AuthApi(BaseHTTPRequestHandler):
    """Users are kept in the fake docker's state (emqx eval reads them there); rules here, with a clock."""

    def _answer(self, payload, status=200):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _users(self):
        return json.loads(self.server.state_file.read_text()).get("auth_users", {})

    def _save_users(self, users):
        state = json.loads(self.server.state_file.read_text())
        state["auth_users"] = users
        self.server.state_file.write_text(json.dumps(state))

    def _dispatch(self, method):
        self.server.calls.append((method, self.path))
        if self.headers.get("Authorization") != AUTH:
            self.send_response(401)
            self.end_headers()
            return
        url = urlparse(self.path)
        parts = [unquote(p) for p in url.path.split("/")[3:]]  # after /api/v4/
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        users, rules = self._users(), self.server.rules
        if parts[0] == "auth_username":
            if method == "POST":
                if body["username"] in users:
                    return self._answer({"message": "existed"})
                users[body["username"]] = stored_password(os.urandom(4), body["password"]).hex()
                self._save_users(users)
                return self._answer({"code": 0})
            if method == "PUT":
                users[parts[1]] = stored_password(os.urandom(4), body["password"]).hex()
                self._save_users(users)
                return self._answer({"code": 0})
            if method == "DELETE":
                users.pop(parts[1], None)
                self._save_users(users)
                return self._answer({"code": 0})
        if parts[0] == "acl":
            if method == "POST":
                kind = "clientid" if "clientid" in body else "username" if "username" in body else "all"
                who = body.get(kind, "$all")
                actions = ["pub", "sub"] if body["action"] == "pubsub" else [body["action"]]
                for action in actions:
                    self.server.clock += 1
                    rules[:] = [r for r in rules if (r["kind"], r["who"], r["topic"], r["action"])
                                != (kind, who, body["topic"], action)]
                    rules.append({"kind": kind, "who": who, "topic": body["topic"], "action": action,
                                  "access": body["access"], "created": self.server.clock})
                return self._answer({"data": dict(body, result="ok"), "code": 0})
            kind = "all" if parts[1] == "$all" else parts[1]
            if method == "DELETE":
                who = "$all" if kind == "all" else parts[2]
                topic = parts[-1]
                rules[:] = [r for r in rules if not (r["kind"] == kind and r["who"] == who and r["topic"] == topic)]
                return self._answer({"code": 0})
            selected = [r for r in rules if r["kind"] == kind and (kind == "all" or len(parts) < 3 or r["who"] == parts[2])]
            entries = [dict({"all" if r["kind"] == "all" else r["kind"]: r["who"]}, topic=r["topic"],
                            action=r["action"], access=r["access"])
                       for r in sorted(selected, key=lambda r: -r["created"])]
            if len(parts) < 3 or kind == "all":
                query = parse_qs(url.query)
                page, limit = int(query.get("_page", ["1"])[0]), int(query.get("_limit", ["50"])[0])
                return self._answer({"meta": {"page": page, "limit": limit, "count": len(entries)},
                                     "data": entries[(page - 1) * limit:page * limit], "code": 0})
            return self._answer({"data": entries, "code": 0})
        self._answer({"message": "not found"}, 404)

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def log_message(self, *args):
        pass


@pytest.fixture
def broker(docker):
    docker.set({"emqx1": {"node": "emqx@10.0.0.1", "state": "up", "group": "c"}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), AuthApi)
    server.state_file, server.rules, server.calls, server.clock = docker.state_file, [], [], 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    server.args = {"container": "emqx1", "docker_cli": str(docker.cli), "api_url": "http://127.0.0.1:%d" % server.server_address[1],
                   "api_username": "mqttaction", "api_password": "s3cret"}
    server.docker = docker
    yield server
    server.shutdown()
    server.server_close()


USERS = [{"username": "sensor1", "password": "pw-1"}, {"username": "ops", "password": "pw-ops"}]
ACL = [{"permission": "deny", "action": "subscribe", "topic": "sensors/secret/#", "username": "sensor1"},
       {"action": "pubsub", "topic": "sensors/#", "username": "sensor1"},
       {"action": "publish", "topic": "cmd/#", "clientid": "console"},
       {"permission": "deny", "action": "subscribe", "topic": "#", "username": "$all"}]


def stored_users(broker):
    return dict((name, bytes.fromhex(value)) for name, value in broker.docker.state().get("auth_users", {}).items())


def test_creates_users_and_rules_then_changes_nothing(broker, run_module):
    failed, result = run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS, acl=ACL), diff=True)
    assert not failed and result["changed"]
    assert result["users_created"] == ["ops", "sensor1"] and result["acl_written"] == [
        "all $all", "clientid console", "username sensor1"]
    users = stored_users(broker)
    assert password_matches(users["sensor1"], "pw-1") and password_matches(users["ops"], "pw-ops")
    # The rule listed first is the one 4.4.4 checks first: the newest of its login.
    sensor_sub = [r for r in sorted(broker.rules, key=lambda r: -r["created"])
                  if r["who"] == "sensor1" and r["action"] == "sub"]
    assert [(r["topic"], r["access"]) for r in sensor_sub] == [("sensors/secret/#", "deny"), ("sensors/#", "allow")]
    assert "pw-1" not in json.dumps(result) and "pw-ops" not in json.dumps(result)
    assert "username sensor1: deny sub sensors/secret/#\n" in result["diff"][1]["after"]

    calls = len(broker.calls)
    failed, again = run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS, acl=ACL))
    assert not failed and not again["changed"]
    assert all(method == "GET" for method, _path in broker.calls[calls:]), "a run with nothing to change only reads"


def test_a_changed_password_or_rule_order_is_written_again_alone(broker, run_module):
    run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS, acl=ACL))
    before = stored_users(broker)["ops"]
    users = [USERS[0], {"username": "ops", "password": "new-ops"}]
    acl = [ACL[1], ACL[0]] + ACL[2:]
    failed, result = run_module(emqx_auth_mnesia.main, dict(broker.args, users=users, acl=acl), check_mode=True)
    assert not failed and result["changed"] and result["users_updated"] == ["ops"]
    assert result["acl_written"] == ["username sensor1"] and stored_users(broker)["ops"] == before
    failed, result = run_module(emqx_auth_mnesia.main, dict(broker.args, users=users, acl=acl))
    assert not failed and result["users_updated"] == ["ops"] and result["users_created"] == []
    assert password_matches(stored_users(broker)["ops"], "new-ops")
    sensor_sub = [r for r in sorted(broker.rules, key=lambda r: -r["created"])
                  if r["who"] == "sensor1" and r["action"] == "sub"]
    assert [r["topic"] for r in sensor_sub] == ["sensors/#", "sensors/secret/#"]


def test_exclusive_removes_what_is_not_listed_and_keeps_it_otherwise(broker, run_module):
    run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS, acl=ACL))
    failed, kept = run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS[:1], acl=ACL[:2]))
    assert not failed and not kept["changed"], "without exclusive, nothing a user set up is lost"
    failed, result = run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS[:1], acl=ACL[:2], exclusive=True))
    assert not failed and result["users_removed"] == ["ops"]
    assert result["acl_removed"] == ["all $all", "clientid console"]
    assert set(stored_users(broker)) == {"sensor1"} and {r["who"] for r in broker.rules} == {"sensor1"}


def test_bad_rules_and_duplicate_users_fail_before_anything_is_read(broker, run_module):
    bad = [{"action": "publish", "topic": " t", "username": "a"},
           {"action": "publish", "topic": "t", "username": "a", "clientid": "c"}]
    failed, result = run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS + USERS[:1], acl=bad))
    assert failed and broker.calls == []
    assert result["msg"] == ("acl[0] needs a topic filter without leading or trailing spaces; acl[1] names both "
                             "a username and a client ID; a rule is for one login; users: sensor1 is listed twice")


def test_check_mode_before_the_first_deployment_reports_everything_as_new(docker, run_module):
    docker.set({"emqx1": {"node": "emqx@10.0.0.1", "state": "stopped", "group": "c"}})
    args = {"container": "emqx1", "docker_cli": str(docker.cli), "api_url": "http://127.0.0.1:9",
            "api_username": "mqttaction", "api_password": "s3cret", "users": USERS, "acl": ACL}
    failed, result = run_module(emqx_auth_mnesia.main, args, check_mode=True)
    assert not failed and result["users_created"] == ["ops", "sensor1"]
    failed, result = run_module(emqx_auth_mnesia.main, args)
    assert failed and "Could not read the users and rules" in result["msg"]


def test_stored_passwords_are_checked_as_4_4_4_stores_them():
    # A value read from EMQX 4.4.4: salt 9F59461C, then sha256(salt ++ "pw-a2") in hex.
    stored = bytes.fromhex("9F59461C313963643464306138373563353637386132386366613033343736626433623833336264"
                           "63323330646136323264386330306539626331616366306561656464")
    assert password_matches(stored, "pw-a2") and not password_matches(stored, "pw-a")
    assert not password_matches(stored, "pw-a2", "sha512")


def test_a_node_without_the_plugin_is_named_and_nothing_is_written(broker, run_module):
    state = broker.docker.state()
    state["auth_mnesia_loaded"] = False
    broker.docker.state_file.write_text(json.dumps(state))
    failed, result = run_module(emqx_auth_mnesia.main, dict(broker.args, users=USERS, acl=ACL))
    assert failed and "emqx_auth_mnesia plugin does not run on the node of container emqx1" in result["msg"]
    assert [call for call in broker.calls if call[0] != "GET"] == []
