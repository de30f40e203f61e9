#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_mysql_auth
short_description: MQTT users and ACL rules in the MySQL tables EMQX 4.4.4's emqx_auth_mysql reads
version_added: 0.1.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Creates the C(mqtt_user) and C(mqtt_acl) tables of 4.4's documentation when they are missing
    (InnoDB, with the indexes the ACL query uses).
  - Writes MQTT users with their passwords hashed as O(password_hash) says, the way 4.4.4 checks
    them. A user whose stored hash already accepts the password is left alone, so a re-run changes
    nothing; passwords are never returned or logged.
  - Writes ACL rules in the order they are to be checked. 4.4.4 checks the rows of a client in the
    reverse of the order MySQL returns them, so the rules are stored last rule first; with the
    default C(acl_query) the first rule listed is the first checked.
  - With O(exclusive=true), users and rules that are not listed are removed.
  - Runs on a host that reaches the database, with PyMySQL (Debian's C(python3-pymysql)); bcrypt
    schemes need C(python3-bcrypt) too.
options:
  login_host:
    description: The MySQL or MariaDB server. Ignored when O(login_unix_socket) is set.
    type: str
    default: localhost
  login_port:
    description: Its port.
    type: int
    default: 3306
  login_user:
    description: An account that may create tables and write rows in O(database).
    type: str
  login_password:
    description: Its password.
    type: str
  login_unix_socket:
    description: A Unix socket to connect through (for example C(/run/mysqld/mysqld.sock) for root on MariaDB).
    type: path
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
  database:
    description: The database EMQX reads (C(auth.mysql.database)); it must exist.
    type: str
    default: mqtt
  password_hash:
    description:
      - C(auth.mysql.password_hash) of the EMQX nodes; the scheme the passwords are stored with.
      - One of C(plain), C(md5), C(sha), C(sha256), C(sha512), C(bcrypt), C(salt,<hash>), C(<hash>,salt),
        C(salt,bcrypt) or C(pbkdf2,<mac>,<iterations>,<dklen>). A scheme with a salt needs an auth query
        that selects C(password, salt).
      - Changing it rewrites every user at the next run.
    type: str
    default: sha256
  users:
    description: MQTT users.
    type: list
    elements: dict
    default: []
    suboptions:
      username:
        description: The MQTT username.
        type: str
        required: true
      password:
        description: The MQTT password, in clear; only its hash is stored.
        type: str
        required: true
      superuser:
        description: Whether 4.4.4's super query makes the user a superuser (no ACL applies).
        type: bool
        default: false
  acl:
    description:
      - ACL rules, in the order they are checked; the first that matches decides. Rules with no match
        fall through to C(acl.conf) and then C(acl_nomatch).
    type: list
    elements: dict
    default: []
    suboptions:
      permission:
        description: Allow or deny.
        type: str
        choices: [allow, deny]
        default: allow
      action:
        description: What the rule is about.
        type: str
        choices: [subscribe, publish, pubsub]
        required: true
      topic:
        description:
          - A topic filter; C(%u) and C(%c) stand for the username and client ID.
          - "A filter written C(eq <filter>) matches only that filter, literally: C(eq #) is a subscription to C(#)."
        type: str
        required: true
      username:
        description: The user the rule is for; C($all) is every client.
        type: str
      clientid:
        description: The client ID the rule is for.
        type: str
      ipaddr:
        description: The client address (or CIDR) the rule is for.
        type: str
  exclusive:
    description: Remove users and ACL rules that are not listed.
    type: bool
    default: false
  create_tables:
    description: Create missing tables.
    type: bool
    default: true
  validate_only:
    description:
      - Only check O(password_hash), O(users) and O(acl), without connecting to a database; for checks
        before any host is changed (run it on the controller).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the tables and reports what it would change.
  diff_mode:
    support: full
    description: Usernames (with their superuser flag) and ACL rules, before and after; never passwords.
notes:
  - Give the account EMQX connects with C(SELECT) only (for example with M(community.mysql.mysql_user)).
  - The role C(mqttaction.emqx.emqx_auth_db) installs MariaDB, creates that account and runs this module.
"""

EXAMPLES = r"""
- name: Store the MQTT users and rules
  mqttaction.emqx.emqx_mysql_auth:
    login_unix_socket: /run/mysqld/mysqld.sock
    login_user: root
    password_hash: salt,sha256
    users:
      - username: sensor-17
        password: "{{ vault_sensor_17_password }}"
      - username: ops
        password: "{{ vault_ops_password }}"
        superuser: true
    acl:
      - {action: publish, topic: "sensors/%c/#", username: "$all"}
      - {permission: deny, action: subscribe, topic: "eq #", username: "$all"}
      - {action: subscribe, topic: "sensors/#", username: dashboard-reader}
    exclusive: true
"""

RETURN = r"""
tables_created:
  description: Tables the module created.
  returned: success
  type: list
  elements: str
  sample: [mqtt_user, mqtt_acl]
users_added:
  description: Usernames added.
  returned: success
  type: list
  elements: str
  sample: [sensor-17]
users_updated:
  description: Usernames whose password hash or superuser flag was rewritten.
  returned: success
  type: list
  elements: str
  sample: []
users_removed:
  description: Usernames removed (O(exclusive=true)).
  returned: success
  type: list
  elements: str
  sample: []
acl_added:
  description: ACL rows written, as text, in the order they were stored.
  returned: success
  type: list
  elements: str
  sample: ["deny subscribe eq # (username=$all)"]
acl_removed:
  description: ACL rows removed, as text.
  returned: success
  type: list
  elements: str
  sample: []
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_auth_tables as tables
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_passwd

try:
    import pymysql
except ImportError:
    pymysql = None
    PYMYSQL_ERROR = traceback.format_exc()
else:
    PYMYSQL_ERROR = None


def connect(module):
    params = module.params
    args = dict(user=params["login_user"], password=params["login_password"] or "",
                database=params["database"], connect_timeout=params["connect_timeout"],
                charset="utf8mb4", autocommit=False)
    if params["login_unix_socket"]:
        args["unix_socket"] = params["login_unix_socket"]
    else:
        args.update(host=params["login_host"], port=params["login_port"])
    try:
        return pymysql.connect(**args)
    except pymysql.MySQLError as exc:
        module.fail_json(msg="Cannot connect to database %s: %s" % (params["database"], exc))


def read_state(cursor, database):
    cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
    present = set(row[0] for row in cursor.fetchall())
    users, acl, width = {}, [], 128
    if "mqtt_user" in present:
        cursor.execute("SELECT character_maximum_length FROM information_schema.columns WHERE "
                       "table_schema = %s AND table_name = 'mqtt_user' AND column_name = 'password'",
                       (database,))
        width = (cursor.fetchone() or (128,))[0]
        cursor.execute("SELECT username, password, salt, is_superuser FROM mqtt_user")
        users = dict((row[0], (row[1], row[2], row[3])) for row in cursor.fetchall())
    if "mqtt_acl" in present:
        cursor.execute("SELECT id, allow, ipaddr, username, clientid, access, topic FROM mqtt_acl ORDER BY id")
        acl = [tuple(row) for row in cursor.fetchall()]
    return present, users, acl, width


def as_text(users, acl_rows):
    lines = ["users:"] + ["  - %s%s" % (name, " (superuser)" if superuser else "")
                          for name, superuser in sorted(users.items())]
    lines += ["acl (stored order):"] + ["  - %s" % tables.describe_acl_row(row) for row in acl_rows]
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            login_host=dict(type="str", default="localhost"),
            login_port=dict(type="int", default=3306),
            login_user=dict(type="str"),
            login_password=dict(type="str", no_log=True),
            login_unix_socket=dict(type="path"),
            connect_timeout=dict(type="int", default=10),
            database=dict(type="str", default="mqtt"),
            password_hash=dict(type="str", default="sha256", no_log=False),
            users=dict(type="list", elements="dict", default=[], options=dict(
                username=dict(type="str", required=True),
                password=dict(type="str", required=True, no_log=True),
                superuser=dict(type="bool", default=False),
            )),
            acl=dict(type="list", elements="dict", default=[], options=dict(
                permission=dict(type="str", choices=["allow", "deny"], default="allow"),
                action=dict(type="str", choices=["subscribe", "publish", "pubsub"], required=True),
                topic=dict(type="str", required=True),
                username=dict(type="str"),
                clientid=dict(type="str"),
                ipaddr=dict(type="str"),
            )),
            exclusive=dict(type="bool", default=False),
            create_tables=dict(type="bool", default=True),
            validate_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        scheme = emqx_passwd.parse(params["password_hash"])
    except emqx_passwd.PasswordHashError as exc:
        module.fail_json(msg=str(exc))
    problems = [problem for problem in (tables.check_rule(rule) for rule in params["acl"]) if problem]
    names = [user["username"] for user in params["users"]]
    problems += ["user %s is listed twice" % name for name in sorted(set(n for n in names if names.count(n) > 1))]
    if problems:
        module.fail_json(msg="; ".join(problems))
    result = dict(changed=False, tables_created=[], users_added=[], users_updated=[], users_removed=[],
                  acl_added=[], acl_removed=[])
    if params["validate_only"]:
        module.exit_json(**result)
    if pymysql is None:
        module.fail_json(msg=missing_required_lib("PyMySQL (Debian: python3-pymysql)"), exception=PYMYSQL_ERROR)

    connection = connect(module)
    try:
        with connection.cursor() as cursor:
            present, users, acl, width = read_state(cursor, params["database"])
            missing = [name for name in ("mqtt_user", "mqtt_acl") if name not in present]
            if missing and not params["create_tables"]:
                module.fail_json(msg="Tables missing in %s: %s (create_tables is false)"
                                     % (params["database"], ", ".join(missing)))
            try:
                user_plan = tables.plan_users(users, params["users"], scheme, params["exclusive"])
            except ImportError:
                module.fail_json(msg=missing_required_lib("bcrypt (Debian: python3-bcrypt)"),
                                 exception=traceback.format_exc())
            too_long = [entry[0] for entry in user_plan["insert"] + user_plan["update"] if len(entry[1]) > width]
            if too_long:
                module.fail_json(msg="mqtt_user.password is varchar(%d), too short for the %s hashes of %s; "
                                     "widen it: ALTER TABLE mqtt_user MODIFY password varchar(128)"
                                     % (width, params["password_hash"], ", ".join(too_long)))
            acl_plan = tables.plan_acl(acl, [tables.acl_row(rule) for rule in params["acl"]], params["exclusive"])
            by_id = dict((row[0], row[1:]) for row in acl)
            result.update(
                tables_created=missing,
                users_added=[entry[0] for entry in user_plan["insert"]],
                users_updated=[entry[0] for entry in user_plan["update"]],
                users_removed=user_plan["delete"],
                acl_added=[tables.describe_acl_row(row) for row in acl_plan["insert"]],
                acl_removed=[tables.describe_acl_row(by_id[row_id]) for row_id in acl_plan["delete"]],
            )
            changes = ("tables_created", "users_added", "users_updated", "users_removed", "acl_added", "acl_removed")
            result["changed"] = any(result[key] for key in changes)
            if result["changed"] and not module.check_mode:
                for name in missing:
                    cursor.execute(tables.TABLES[name])
                for name, hashed, salt, superuser in user_plan["insert"]:
                    cursor.execute("INSERT INTO mqtt_user (username, password, salt, is_superuser, created) "
                                   "VALUES (%s, %s, %s, %s, NOW())", (name, hashed, salt, int(superuser)))
                for name, hashed, salt, superuser in user_plan["update"]:
                    cursor.execute("UPDATE mqtt_user SET password = %s, salt = %s, is_superuser = %s "
                                   "WHERE username = %s", (hashed, salt, int(superuser), name))
                for name in user_plan["delete"]:
                    cursor.execute("DELETE FROM mqtt_user WHERE username = %s", (name,))
                for row_id in acl_plan["delete"]:
                    cursor.execute("DELETE FROM mqtt_acl WHERE id = %s", (row_id,))
                for row in acl_plan["insert"]:
                    cursor.execute("INSERT INTO mqtt_acl (allow, ipaddr, username, clientid, access, topic) "
                                   "VALUES (%s, %s, %s, %s, %s, %s)", row)
                connection.commit()
    except pymysql.MySQLError as exc:
        connection.rollback()
        result["changed"] = False
        module.fail_json(msg="MySQL error in %s: %s" % (params["database"], exc), **result)
    finally:
        connection.close()

    if module._diff:
        before_users = dict((name, bool(row[2])) for name, row in users.items())
        after_users = dict(before_users)
        for name in user_plan["delete"]:
            after_users.pop(name, None)
        for entry in user_plan["insert"] + user_plan["update"]:
            after_users[entry[0]] = entry[3]
        kept = [row[1:] for row in acl if row[0] not in acl_plan["delete"]]
        result["diff"] = {"before": as_text(before_users, [row[1:] for row in acl]),
                          "after": as_text(after_users, kept + acl_plan["insert"])}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
