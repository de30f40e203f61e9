# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""MQTT users and ACL rules as EMQX 4.4.4's emqx_auth_mnesia keeps them, and the plan to make them so.

What 4.4.4 does (apps/emqx_auth_mnesia at v4.4.4, checked on the broker):

* A user's password is stored as 4 random salt bytes followed by the lowercase
  hex of ``hash(salt ++ password)``, ``hash`` being ``auth.mnesia.password_hash``
  (sha256 by default). The management API never returns it; whether a stored
  password still matches is told here from the stored value, so a run that
  changes nothing writes nothing.
* ACL rules belong to a login: a username, a client ID, or ``$all``. A client's
  rules are checked client ID first, then username, then ``$all``; within a
  login the newest rule is checked first, and rules for publishing and for
  subscribing never meet. ``pubsub`` is stored as one rule of each. To have the
  first rule listed checked first, rules are written last one first.
"""

from __future__ import annotations

import hashlib
import hmac

HASHES = ("md5", "sha", "sha256", "sha512")
_HASHLIB = {"md5": "md5", "sha": "sha1", "sha256": "sha256", "sha512": "sha512"}
ACTIONS = {"publish": ("pub",), "subscribe": ("sub",), "pubsub": ("pub", "sub")}
KINDS = ("clientid", "username", "all")


def stored_password(salt, password, scheme="sha256"):
    """The value 4.4.4 stores for a password with a given 4-byte salt."""
    digest = hashlib.new(_HASHLIB[scheme], salt + password.encode("utf-8")).hexdigest()
    return salt + digest.encode("ascii")


def password_matches(stored, password, scheme="sha256"):
    """Whether a stored value (bytes) accepts the password, as 4.4.4 checks it."""
    if len(stored) <= 4:
        return False
    return hmac.compare_digest(stored_password(stored[:4], password, scheme), stored)


def login_of(rule):
    """The login of an ACL rule as given in a module's options: (kind, who)."""
    if rule.get("clientid"):
        return ("clientid", rule["clientid"])
    if rule.get("username") in (None, "$all"):
        return ("all", "$all")
    return ("username", rule["username"])


def rule_errors(rules):
    """What is wrong with ACL rules, one sentence each (empty when they are right)."""
    found = []
    for index, rule in enumerate(rules):
        where = "acl[%d]" % index
        if rule.get("clientid") and rule.get("username"):
            found.append("%s names both a username and a client ID; a rule is for one login" % where)
        if not rule.get("topic") or rule["topic"] != rule["topic"].strip():
            found.append("%s needs a topic filter without leading or trailing spaces" % where)
        if rule.get("action") not in ACTIONS:
            found.append("%s: action must be one of %s" % (where, ", ".join(ACTIONS)))
        if rule.get("permission", "allow") not in ("allow", "deny"):
            found.append("%s: permission must be allow or deny" % where)
    return found


def wanted_acl(rules):
    """{login: {"pub": [(topic, access)...], "sub": [...]}} in the order each is to be checked."""
    wanted = {}
    for rule in rules:
        actions = wanted.setdefault(login_of(rule), {"pub": [], "sub": []})
        for action in ACTIONS[rule["action"]]:
            actions[action].append((rule["topic"], rule.get("permission", "allow")))
    return wanted


def existing_acl(entries):
    """The same shape from the API's rules of one login, listed in the order 4.4.4 checks them."""
    found = {"pub": [], "sub": []}
    for entry in entries:
        found[entry["action"]].append((entry["topic"], entry["access"]))
    return found


def plan_users(wanted, stored, scheme, exclusive):
    """(create, update, remove): usernames whose user is missing, whose password differs, that are not wanted.

    ``wanted`` maps usernames to passwords; ``stored`` maps the usernames that
    exist to their stored value (bytes).
    """
    create = sorted(name for name in wanted if name not in stored)
    update = sorted(name for name in wanted
                    if name in stored and not password_matches(stored[name], wanted[name], scheme))
    remove = sorted(name for name in stored if name not in wanted) if exclusive else []
    return create, update, remove


def plan_acl(wanted, existing, exclusive):
    """(rewrite, remove): logins whose rules are to be written anew, and logins whose rules go.

    ``existing`` maps every login that has rules to its rules (existing_acl's
    shape); a login whose rules, per action and in order, are those wanted is
    left alone.
    """
    rewrite = sorted(login for login, rules in wanted.items() if existing.get(login) != rules)
    remove = sorted(login for login in existing if login not in wanted) if exclusive else []
    return rewrite, remove


def describe_acl(acl):
    """Lines for a diff: one per rule, in the order they are checked."""
    lines = []
    for kind in KINDS:
        for login in sorted(login for login in acl if login[0] == kind):
            for action in ("pub", "sub"):
                for topic, access in acl[login][action]:
                    lines.append("%s %s: %s %s %s" % (kind, login[1], access, action, topic))
    return lines
