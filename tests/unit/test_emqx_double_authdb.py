"""The test double's emqx_auth_mysql side (emqx_double_authdb.py), checked against the
collection's own hashing: two separate implementations must agree."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_passwd as p

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "lab" / "images" / "emqx-double" / "emqx_double_authdb.py"
spec = importlib.util.spec_from_file_location("emqx_double_authdb", SCRIPT)
authdb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(authdb)


@pytest.mark.parametrize("value", ["plain", "md5", "sha", "sha256", "sha512", "bcrypt", "salt,sha256",
                                   "sha256,salt", "salt,md5", "salt,bcrypt", "pbkdf2,sha256,1000,20",
                                   "pbkdf2,sha,10,32"])
def test_the_double_accepts_what_the_module_stores(value):
    scheme = p.parse(value)
    salt = p.new_salt(scheme)
    stored = p.hash_password(scheme, "pässword", salt)
    double = authdb.hash_spec(value)
    assert authdb.check_password(double, stored, salt, "pässword")
    assert not authdb.check_password(double, stored, salt, "password")


def test_a_salt_column_with_an_unsalted_scheme_fails_as_in_4_4_4():
    assert not authdb.check_password(("sha256",), p.hash_password(("sha256",), "pw"), "salt", "pw")


def test_parse_query_binds_the_quoted_variables_only():
    sql, variables = authdb.parse_query(
        "select password from mqtt_user where username = '%u' and clientid = '%c' and note like '5%' limit 1")
    assert variables == ["'%u'", "'%c'"]
    assert sql == "select password from mqtt_user where username = %s and clientid = %s and note like '5%%' limit 1"
    assert authdb.parse_query("") is None


def test_duration():
    assert authdb.duration_seconds("5s", 300) == 5
    assert authdb.duration_seconds("", 300) == 300
    assert authdb.duration_seconds("1500", 300) == 1.5


class FakeDatabase:
    def __init__(self):
        self.asked = []

    def authenticate(self, client, password):
        self.asked.append((client, password))
        return ["ok", "1"] if password == "pw" else ["not_found"]

    def acl_rows(self, client):
        return [[1, None, "$all", None, 3, "a/%u"], [0, "10.0.0.0/8", None, None, 1, "eq #"]]


def test_protocol_round_trip():
    database = FakeDatabase()
    requests = "\t".join(["auth", authdb.field("älice"), authdb.field("c1"), authdb.field("10.0.0.5"),
                          authdb.field("pw")]) + "\n"
    requests += "\t".join(["auth", "-", authdb.field("c2"), "-", "-"]) + "\n"
    requests += "\t".join(["acl", authdb.field("u"), authdb.field("c"), authdb.field("10.0.0.5")]) + "\n"
    out = io.StringIO()
    authdb.serve(database, io.StringIO(requests), out)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["ok\t1", "not_found"]
    assert database.asked[0] == ({"username": "älice", "clientid": "c1", "peerhost": "10.0.0.5"}, "pw")
    assert database.asked[1][0]["username"] is None
    assert lines[2] == "rows\t2"
    assert [authdb.unfield(f) for f in lines[3].split("\t")] == ["1", None, "$all", None, "3", "a/%u"]
