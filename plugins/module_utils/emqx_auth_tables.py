# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""The MySQL tables EMQX 4.4.4's emqx_auth_mysql reads, and what to change in them.

The tables follow 4.4's documentation (``mqtt.sql`` with the docs' InnoDB
engine and indexes), except that ``password`` is varchar(128): the documented
varchar(100) cannot hold a sha512 hex digest. Planning is kept apart from the database so that it can
be tested without one.

ACL order: emqx_acl_mysql 4.4.4 compiles the rows a client gets into a list
in reverse (``compile(T, [Rule | Acc])``), so the row MySQL returns last is
checked first. Rules are stored last rule first, so that the default
``acl_query`` (which returns rows in id order) meets them in the order given.
"""

from __future__ import annotations

from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_passwd

TABLES = {
    "mqtt_user": """CREATE TABLE `mqtt_user` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `username` varchar(100) DEFAULT NULL,
  `password` varchar(128) DEFAULT NULL,
  `salt` varchar(35) DEFAULT NULL,
  `is_superuser` tinyint(1) DEFAULT 0,
  `created` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `mqtt_username` (`username`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "mqtt_acl": """CREATE TABLE `mqtt_acl` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `allow` int(1) DEFAULT 1 COMMENT '0: deny, 1: allow',
  `ipaddr` varchar(60) DEFAULT NULL COMMENT 'IpAddress',
  `username` varchar(100) DEFAULT NULL COMMENT 'Username',
  `clientid` varchar(100) DEFAULT NULL COMMENT 'ClientId',
  `access` int(2) NOT NULL COMMENT '1: subscribe, 2: publish, 3: pubsub',
  `topic` varchar(100) NOT NULL DEFAULT '' COMMENT 'Topic Filter',
  PRIMARY KEY (`id`),
  INDEX (`ipaddr`),
  INDEX (`username`),
  INDEX (`clientid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
}

ACCESS = {"subscribe": 1, "publish": 2, "pubsub": 3}
ACCESS_NAMES = dict((number, name) for name, number in ACCESS.items())


def acl_row(rule):
    """(allow, ipaddr, username, clientid, access, topic) of a rule as the module takes it."""
    return (1 if rule.get("permission", "allow") == "allow" else 0, rule.get("ipaddr"),
            rule.get("username"), rule.get("clientid"), ACCESS[rule["action"]], rule["topic"])


def describe_acl_row(row):
    allow, ipaddr, username, clientid, access, topic = row
    who = ", ".join("%s=%s" % (key, value) for key, value in
                    (("username", username), ("clientid", clientid), ("ipaddr", ipaddr)) if value)
    return "%s %s %s (%s)" % ("allow" if int(allow) == 1 else "deny",
                              ACCESS_NAMES.get(int(access), access), topic, who)


def check_rule(rule):
    """An error message for a rule 4.4.4 cannot use, or None."""
    if not any(rule.get(key) for key in ("username", "clientid", "ipaddr")):
        return ("ACL rule %r names no username, clientid or ipaddr; 4.4.4 fails on such a row "
                "(use username '$all' for every client)" % (rule,))
    if not rule.get("topic"):
        return "ACL rule %r has no topic" % (rule,)
    return None


def plan_users(existing, desired, scheme, exclusive):
    """What to do to mqtt_user.

    existing: {username: (password, salt, is_superuser)}; desired: [{username,
    password, superuser}]. Returns {"insert": [...], "update": [...],
    "delete": [...]}, the first two as (username, password hash, salt,
    superuser) and delete as usernames. A row whose hash already lets the
    password in (checked as 4.4.4 checks it) and whose superuser flag is right
    is left alone, so a re-run changes nothing.
    """
    plan = {"insert": [], "update": [], "delete": []}
    wanted = set()
    for user in desired:
        name, password, superuser = user["username"], user["password"], bool(user.get("superuser"))
        wanted.add(name)
        row = existing.get(name)
        if row is not None and emqx_passwd.matches(scheme, row[0], row[1], password) \
                and bool(row[2]) == superuser:
            continue
        salt = emqx_passwd.new_salt(scheme)
        entry = (name, emqx_passwd.hash_password(scheme, password, salt), salt, superuser)
        plan["update" if row is not None else "insert"].append(entry)
    if exclusive:
        plan["delete"] = sorted(set(existing) - wanted)
    return plan


def plan_acl(existing, desired, exclusive):
    """What to do to mqtt_acl.

    existing: [(id, allow, ipaddr, username, clientid, access, topic)] in id
    order; desired: rows (acl_row) in the order they should be checked.
    Exclusive: the table must hold exactly these rows, stored last first; if it
    does not, every row is replaced. Otherwise missing rows are added, stored
    last first, after the rows already there. Returns {"delete": [ids],
    "insert": [rows in insert order]}.
    """
    current = [_normalized(row[1:]) for row in existing]
    if exclusive:
        if current == [_normalized(row) for row in reversed(desired)]:
            return {"delete": [], "insert": []}
        return {"delete": [row[0] for row in existing], "insert": list(reversed(desired))}
    missing = [row for row in desired if _normalized(row) not in current]
    return {"delete": [], "insert": list(reversed(missing))}


def _normalized(row):
    return tuple(_norm(value) for value in row)


def _norm(value):
    """Rows from MySQL and from the inventory compare equal: text, NULL for empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        value = int(value)
    return str(value)
