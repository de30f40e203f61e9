"""Planning changes to mqtt_user and mqtt_acl (no database needed)."""

from __future__ import annotations

from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_auth_tables as t
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_passwd as p

SALTED = ("salt", "sha256")


def stored(password, superuser=0, scheme=SALTED):
    salt = p.new_salt(scheme)
    return (p.hash_password(scheme, password, salt), salt, superuser)


def test_users_are_left_alone_when_their_hash_accepts_the_password():
    existing = {"alice": stored("a"), "root": stored("r", 1)}
    desired = [{"username": "alice", "password": "a"}, {"username": "root", "password": "r", "superuser": True}]
    assert t.plan_users(existing, desired, SALTED, exclusive=True) == {"insert": [], "update": [], "delete": []}


def test_users_added_updated_and_removed():
    existing = {"alice": stored("a"), "bob": stored("b"), "old": stored("o")}
    desired = [{"username": "alice", "password": "changed"}, {"username": "bob", "password": "b", "superuser": True},
               {"username": "new", "password": "n"}]
    plan = t.plan_users(existing, desired, SALTED, exclusive=True)
    assert [entry[0] for entry in plan["update"]] == ["alice", "bob"]
    assert [entry[0] for entry in plan["insert"]] == ["new"]
    assert plan["delete"] == ["old"]
    name, hashed, salt, superuser = plan["insert"][0]
    assert p.matches(SALTED, hashed, salt, "n") and superuser is False
    assert t.plan_users(existing, desired, SALTED, exclusive=False)["delete"] == []


def test_a_new_scheme_rewrites_every_user():
    existing = {"alice": stored("a", scheme=("sha256",))}
    plan = t.plan_users(existing, [{"username": "alice", "password": "a"}], SALTED, exclusive=False)
    assert [entry[0] for entry in plan["update"]] == ["alice"]


RULES = [t.acl_row({"action": "pubsub", "topic": "alice/#", "username": "alice"}),
         t.acl_row({"permission": "deny", "action": "subscribe", "topic": "eq #", "username": "$all"})]


def rows(*stored_rows):
    """As read from MySQL: id first, allow and access as integers."""
    return [(index,) + tuple(row) for index, row in enumerate(stored_rows, start=1)]


def test_acl_rows_are_stored_last_rule_first():
    assert RULES[0] == (1, None, "alice", None, 3, "alice/#")
    plan = t.plan_acl([], RULES, exclusive=True)
    assert plan == {"delete": [], "insert": [RULES[1], RULES[0]]}
    assert t.plan_acl(rows(RULES[1], RULES[0]), RULES, exclusive=True) == {"delete": [], "insert": []}


def test_exclusive_acl_replaces_a_table_in_another_order_or_with_strangers():
    assert t.plan_acl(rows(RULES[0], RULES[1]), RULES, exclusive=True) == {
        "delete": [1, 2], "insert": [RULES[1], RULES[0]]}
    stranger = (1, None, "$all", None, 2, "#")
    assert t.plan_acl(rows(stranger, RULES[1], RULES[0]), RULES, exclusive=True)["delete"] == [1, 2, 3]


def test_inclusive_acl_only_adds_missing_rules():
    stranger = (1, None, "$all", None, 2, "#")
    assert t.plan_acl(rows(stranger, RULES[0]), RULES, exclusive=False) == {"delete": [], "insert": [RULES[1]]}
    # MySQL gives empty strings or text for the same values.
    assert t.plan_acl([(1, "1", "", "alice", None, "3", "alice/#")], RULES[:1], exclusive=False)["insert"] == []


def test_rules_must_name_someone():
    assert "names no username" in t.check_rule({"action": "publish", "topic": "a"})
    assert t.check_rule({"action": "publish", "topic": "a", "username": "$all"}) is None
    assert t.describe_acl_row(RULES[1]) == "deny subscribe eq # (username=$all)"
