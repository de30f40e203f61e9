# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Every rule a deployment's settings must keep, checked before any host is changed.

``setting_errors(values)`` takes the ``emqx`` role's variables by name and
returns one sentence per broken rule: the variable, what is wrong, and what to
do. A rule that holds says nothing, so a failed run lists only what failed.
Secrets are judged but never repeated.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_auth_mnesia import rule_errors as acl_rule_errors
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_config import errors as conf_errors
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_plan import KNOWN_PLUGINS

DEFAULT_COOKIE = "emqxsecretcookie"
DEFAULT_SECRETS = ("", "public", "admin")
# Erlang's +P and +Q take at most 2^27 (134217727); fewer than 1024 cannot run a broker.
ERLANG_LIMIT = 134217727
# emqx.conf keys a Docker deployment of the role sets otherwise: the container's
# environment wins over them, or the role writes them from its own variable.
IGNORED_IN_DOCKER = {
    "node.name": "the node name comes from EMQX_NAME and EMQX_HOST (emqx_node_basename, emqx_node_host)",
    "node.cookie": "the cookie comes from EMQX_NODE_COOKIE (emqx_cookie)",
    "node.data_dir": "the data directory is the container's /opt/emqx/data, mounted from emqx_base_dir",
    "cluster.static.seeds": "set emqx_cluster_seeds",
    "cluster.discovery": "set emqx_cluster_discovery",
    "cluster.name": "set emqx_cluster_name",
    "rpc.port_discovery": "set emqx_rpc_port_discovery",
    "rpc.tcp_server_port": "set emqx_rpc_tcp_server_port",
    "node.dist_listen_min": "set emqx_dist_listen_min",
    "node.dist_listen_max": "set emqx_dist_listen_min (the role sets both)",
    "node.process_limit": "set emqx_process_limit",
    "node.max_ports": "set emqx_max_ports",
    "listener.tcp.external": "the listener's port in the container is fixed; move it on the host with emqx_host_ports",
    "listener.ssl.external": "the listener's port in the container is fixed; move it on the host with emqx_host_ports",
    "listener.ws.external": "the listener's port in the container is fixed; move it on the host with emqx_host_ports",
    "listener.wss.external": "the listener's port in the container is fixed; move it on the host with emqx_host_ports",
    "listener.tcp.external.acceptors": "set emqx_tcp_acceptors",
    "listener.tcp.external.max_connections": "set emqx_tcp_max_connections",
    "allow_anonymous": "set emqx_allow_anonymous",
    "acl_nomatch": "set emqx_acl_nomatch",
    "acl_file": "the role writes acl.conf from emqx_acl_rules",
    "log.to": "set emqx_log_to",
    "log.level": "set emqx_log_level",
}
PLUGIN_KEYS_SET_BY_ROLE = {
    "emqx_management": {"management.default_application.id": "emqx_management_app_id",
                        "management.default_application.secret": "emqx_management_app_secret"},
    "emqx_dashboard": {"dashboard.default_user.login": "emqx_dashboard_admin_user",
                       "dashboard.default_user.password": "emqx_dashboard_admin_password"},
    "emqx_auth_mnesia": {"auth.mnesia.password_hash": "emqx_auth_mnesia_password_hash"},
}
LISTENERS = ("tcp", "ssl", "ws", "wss")
HOST_PORTS = ("mqtt", "mqtts", "ws", "wss", "api", "dashboard")
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
TLS_VERSIONS = ("tlsv1.3", "tlsv1.2", "tlsv1.1", "tlsv1")
_ATOM = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d)$")


def _int(value):
    """A whole number, or None (booleans are not numbers here)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number


def _on(values, name):
    """A switch as Ansible reads it: "false" and "no" from -e are off."""
    try:
        return boolean(values.get(name) or False, strict=False)
    except TypeError:
        return False


def _bounded(values, name, low, high, why=""):
    number = _int(values.get(name))
    if number is None or not low <= number <= high:
        return "%s is %r: it must be a whole number from %d to %d%s" % (name, values.get(name), low, high, why)
    return None


def _networks(values, name):
    found = []
    for item in values.get(name) or []:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            found.append(item)
    if not isinstance(values.get(name) or [], list):
        return "%s must be a list of addresses or networks (192.0.2.0/24, 2001:db8::/32)" % name
    if found:
        return "%s has entries that are no address or network: %s (write 192.0.2.0/24 or 2001:db8::/32)" % (
            name, ", ".join(repr(item) for item in found))
    return None


def _secret(values, name, what):
    value = values.get(name)
    if value is None or str(value) in DEFAULT_SECRETS:
        return "%s is %s: set %s of your own (vault it)" % (
            name, "not set" if not value else "a 4.4.4 default", what)
    return None


def rule_cookie(values):
    cookie = values.get("emqx_cookie")
    if not cookie:
        return "emqx_cookie is not set: give the cluster a secret Erlang cookie (vault it)"
    if cookie == DEFAULT_COOKIE:
        return "emqx_cookie is the EMQX 4.4.4 default emqxsecretcookie, which anybody can use to join: choose another"
    if not re.match(r"^[!#-&(-\[\]-~]+$", str(cookie)):
        return "emqx_cookie must be one word of printable characters without quotes or backslashes"
    return None


def rule_management_secret(values):
    return _secret(values, "emqx_management_app_secret", "a secret")


def rule_dashboard_password(values):
    return _secret(values, "emqx_dashboard_admin_password", "a password")


def rule_image(values):
    image = values.get("emqx_image") or ""
    if not _IMAGE.match(str(image)):
        return "emqx_image %r is no image reference (registry/name:tag, without spaces)" % (image,)
    return None


def rule_image_archive(values):
    if values.get("emqx_image_source") == "archive" and not values.get("emqx_image_archive"):
        return "emqx_image_source is archive: give emqx_image_archive, a docker save tarball on the controller"
    return None


def rule_cluster_name(values):
    if not _ATOM.match(str(values.get("emqx_cluster_name") or "")):
        return ("emqx_cluster_name %r must be a lowercase letter followed by letters, digits or _ (an Erlang atom)"
                % (values.get("emqx_cluster_name"),))
    return None


def rule_instances(values):
    return _bounded(values, "emqx_instances_per_host", 1, 50)


def rule_port_step(values):
    return _bounded(values, "emqx_instance_port_step", 1, 1000)


def rule_node_host(values):
    host = str(values.get("emqx_node_host") or "")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not _HOST.match(host):
        return ("emqx_node_host %r must be an IP address or a host name the other nodes resolve (it is the part of "
                "the node name after the @)" % (host,))
    return None


def rule_host_ports(values):
    ports = values.get("emqx_host_ports") or {}
    if not isinstance(ports, dict):
        return "emqx_host_ports must be a dict of listener to port (mqtt, mqtts, ws, wss, api, dashboard)"
    unknown = sorted(set(ports) - set(HOST_PORTS))
    bad = sorted(name for name, port in ports.items() if name in HOST_PORTS and not 1 <= (_int(port) or 0) <= 65535)
    if unknown:
        return "emqx_host_ports names listeners 4.4.4 has not: %s (known: %s)" % (", ".join(unknown), ", ".join(HOST_PORTS))
    if bad:
        return "emqx_host_ports gives %s a port outside 1-65535" % ", ".join(bad)
    return None


def rule_rpc_port(values):
    return _bounded(values, "emqx_rpc_tcp_server_port", 1024, 65535)


def rule_dist_listen_min(values):
    return _bounded(values, "emqx_dist_listen_min", 1024, 65535)


def rule_base_dir(values):
    base = str(values.get("emqx_base_dir") or "")
    if not base.startswith("/") or base.rstrip("/") in ("", "/opt", "/var", "/etc", "/usr", "/home") or " " in base:
        return ("emqx_base_dir %r must be an absolute path of its own, without spaces (default /opt/mqttaction-emqx): "
                "the nodes' data live there" % (base,))
    return None


def rule_process_limit(values):
    return _bounded(values, "emqx_process_limit", 1024, ERLANG_LIMIT, " (Erlang's +P)")


def rule_max_ports(values):
    return _bounded(values, "emqx_max_ports", 1024, ERLANG_LIMIT, " (Erlang's +Q)")


def rule_tcp_acceptors(values):
    return _bounded(values, "emqx_tcp_acceptors", 1, 1024)


def rule_tcp_max_connections(values):
    return _bounded(values, "emqx_tcp_max_connections", 1, ERLANG_LIMIT)


def rule_container_nofile(values):
    return _bounded(values, "emqx_container_nofile", 1024, 1073741816, " (the kernel's fs.nr_open at most)")


def rule_wait_timeout(values):
    return _bounded(values, "emqx_wait_timeout", 5, 3600, " seconds")


def rule_rolling_batch(values):
    batch = values.get("emqx_rolling_batch")
    if batch in (None, ""):
        return None  # site.yml's default, 1
    text = str(batch).strip()
    match = re.match(r"^([0-9]+)%$", text)
    if match and 1 <= int(match.group(1)) <= 100:
        return None
    number = _int(batch)
    if number is not None and number >= 1 and "%" not in text:
        return None
    return ("emqx_rolling_batch is %r: it must be a number of hosts of at least 1 or a percentage from 1%% to 100%% "
            "(0 would restart nothing, or everything at once)" % (batch,))


def rule_log(values):
    if values.get("emqx_log_level") not in LOG_LEVELS:
        return "emqx_log_level %r must be one of %s" % (values.get("emqx_log_level"), ", ".join(LOG_LEVELS))
    if values.get("emqx_log_to") not in ("console", "file", "both"):
        return "emqx_log_to %r must be console, file or both" % (values.get("emqx_log_to"),)
    return None


def rule_listeners(values):
    listeners = values.get("emqx_listeners") or {}
    unknown = sorted(set(listeners) - set(LISTENERS))
    if unknown:
        return "emqx_listeners names listeners 4.4.4 has not: %s (known: %s)" % (", ".join(unknown), ", ".join(LISTENERS))
    return None


def rule_plugins(values):
    unknown = sorted(set(values.get("emqx_plugins") or []) - set(KNOWN_PLUGINS))
    if unknown:
        return "emqx_plugins names plugins EMQX 4.4.4 does not ship: %s" % ", ".join(unknown)
    return None


def rule_plugin_conf_extra(values):
    extra = values.get("emqx_plugin_conf_extra") or {}
    unknown = sorted(set(extra) - set(KNOWN_PLUGINS))
    if unknown:
        return "emqx_plugin_conf_extra names plugins EMQX 4.4.4 does not ship: %s" % ", ".join(unknown)
    for plugin, settings in sorted(extra.items()):
        for key, variable in sorted(PLUGIN_KEYS_SET_BY_ROLE.get(plugin, {}).items()):
            if key in (settings or {}):
                return "emqx_plugin_conf_extra sets %s's %s, which the role writes: set %s instead" % (plugin, key, variable)
        found = conf_errors(settings or {}, plugin, "emqx_plugin_conf_extra[%s]" % plugin)
        if found:
            return "; ".join(found)
    return None


def rule_conf_extra_docker(values):
    extra = values.get("emqx_conf_extra") or {}
    for key in sorted(extra):
        if key in IGNORED_IN_DOCKER:
            return "emqx_conf_extra sets %s, which this deployment decides otherwise: %s" % (key, IGNORED_IN_DOCKER[key])
    return None


def rule_conf_extra_schema(values):
    found = conf_errors(values.get("emqx_conf_extra") or {}, "emqx", "emqx_conf_extra")
    return "; ".join(found) if found else None


def rule_container_sysctls(values):
    sysctls = values.get("emqx_container_sysctls") or {}
    outside = sorted(key for key in sysctls if not str(key).startswith("net."))
    if outside:
        return ("emqx_container_sysctls may only set the container's own network settings (net.*), not %s: set those "
                "on the host with docker_host_sysctls" % ", ".join(outside))
    return None


def rule_container_env(values):
    env = values.get("emqx_container_env") or {}
    owned = sorted(key for key in env if key in ("EMQX_NAME", "EMQX_HOST", "EMQX_NODE_COOKIE", "EMQX_NODE_NAME"))
    if owned:
        return ("emqx_container_env sets %s, which the role gives each node (emqx_node_basename, emqx_node_host, "
                "emqx_cookie)" % ", ".join(owned))
    return None


def rule_tls_versions(values):
    versions = str(values.get("emqx_tls_versions") or "").split(",")
    if not versions or any(version not in TLS_VERSIONS for version in versions):
        return ("emqx_tls_versions %r must list tlsv1.3, tlsv1.2, tlsv1.1 or tlsv1, comma-separated without spaces"
                % (values.get("emqx_tls_versions"),))
    return None


def rule_tls_files(values):
    if values.get("emqx_tls_certificates") == "provided":
        missing = [name for name in ("emqx_tls_ca_cert", "emqx_tls_cert", "emqx_tls_key") if not values.get(name)]
        if missing:
            return "emqx_tls_certificates is provided: give %s (controller paths of PEM files)" % ", ".join(missing)
    return None


def rule_tls_valid_days(values):
    return _bounded(values, "emqx_tls_cert_valid_days", 30, 3650)


def rule_firewall_clients(values):
    return _networks(values, "emqx_firewall_client_networks")


def rule_firewall_admins(values):
    return _networks(values, "emqx_firewall_admin_networks")


def rule_mysql(values):
    if not _on(values, "emqx_auth_mysql_enabled"):
        return None
    server = str(values.get("emqx_auth_mysql_server") or "")
    host, _sep, port = server.rpartition(":")
    if not host or not 1 <= (_int(port) or 0) <= 65535 or " " in server or "," in server:
        return "emqx_auth_mysql_server %r must be host:port, which every node reaches" % (server,)
    if not values.get("emqx_auth_mysql_password"):
        return "emqx_auth_mysql_password is not set: give EMQX's MySQL account its password (vault it)"
    if _on(values, "emqx_allow_anonymous"):
        return ("emqx_allow_anonymous must be false with MySQL authentication: 4.4.4 would let in any username MySQL "
                "does not know")
    if values.get("emqx_acl_nomatch") != "deny":
        return "emqx_acl_nomatch must be deny with MySQL authentication"
    return None


_HASH = "(plain|md5|sha|sha256|sha512|bcrypt)"
_MYSQL_HASH = re.compile(r"^(%s|salt,%s|%s,salt|pbkdf2,(md4|md5|sha|sha224|sha256|sha384|sha512),[1-9][0-9]*,[1-9][0-9]*)$"
                         % (_HASH, _HASH, _HASH))


def rule_mysql_password_hash(values):
    if _on(values, "emqx_auth_mysql_enabled") and not _MYSQL_HASH.match(str(values.get("emqx_auth_mysql_password_hash"))):
        return ("emqx_auth_mysql_password_hash %r is none 4.4.4 accepts: plain, md5, sha, sha256, sha512, bcrypt, "
                "salt,<hash>, <hash>,salt or pbkdf2,<mac>,<iterations>,<dklen>, without spaces"
                % (values.get("emqx_auth_mysql_password_hash"),))
    return None


def rule_mysql_tls_server_name(values):
    name = str(values.get("emqx_auth_mysql_tls_server_name"))
    if _on(values, "emqx_auth_mysql_enabled") and _on(values, "emqx_auth_mysql_tls") and name != "disable" \
            and not _HOST.match(name):
        return ("emqx_auth_mysql_tls_server_name %r must be disable or the MySQL server's host name, as its "
                "certificate names it" % (name,))
    return None


def rule_mnesia_password_hash(values):
    if _on(values, "emqx_auth_mnesia_enabled") and \
            values.get("emqx_auth_mnesia_password_hash") not in ("plain", "md5", "sha", "sha256", "sha512"):
        return ("emqx_auth_mnesia_password_hash %r must be plain, md5, sha, sha256 or sha512 (sha256 is 4.4.4's "
                "default)" % (values.get("emqx_auth_mnesia_password_hash"),))
    return None


def rule_mysql_query_timeout(values):
    if _on(values, "emqx_auth_mysql_enabled") and not _DURATION.match(str(values.get("emqx_auth_mysql_query_timeout"))):
        return "emqx_auth_mysql_query_timeout %r must be a duration such as 5s" % (values.get("emqx_auth_mysql_query_timeout"),)
    return None


def rule_mnesia_users(values):
    if not _on(values, "emqx_auth_mnesia_enabled"):
        return None
    users = values.get("emqx_auth_mnesia_users") or []
    if not isinstance(users, list) or not all(isinstance(user, dict) for user in users):
        return "emqx_auth_mnesia_users must be a list of {username, password}"
    names = [user.get("username") for user in users]
    empty = [index for index, user in enumerate(users) if not user.get("username") or not user.get("password")]
    if empty:
        return "emqx_auth_mnesia_users[%d] needs a username and a non-empty password" % empty[0]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        return "emqx_auth_mnesia_users lists %s more than once" % ", ".join(twice)
    return None


def rule_mnesia_acl(values):
    if not _on(values, "emqx_auth_mnesia_enabled"):
        return None
    rules = values.get("emqx_auth_mnesia_acl") or []
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        return "emqx_auth_mnesia_acl must be a list of rules ({action, topic, username or clientid})"
    found = acl_rule_errors(rules)
    return "emqx_auth_mnesia_acl: " + "; ".join(found) if found else None


def rule_acl_rules(values):
    rules = values.get("emqx_acl_rules") or []
    bad = [rule for rule in rules if not str(rule).strip().startswith("{") or not str(rule).strip().endswith("}.")]
    if bad:
        return "emqx_acl_rules has entries that are no Erlang rule {...}. : %r" % (bad[0],)
    return None


def cluster_errors(values):
    """The rules only the whole inventory can break, one sentence each.

    ``values``: ``unreachable`` (play hosts that failed or did not answer),
    ``nodes`` (every node name of the cluster), ``seeds`` (emqx_cluster_seeds),
    ``group`` (emqx_cluster_group), ``host`` and ``in_group`` (whether the host
    is in the group) and ``cookies`` (how many different cookies its hosts have).
    """
    found = []
    if values.get("unreachable"):
        found.append("these hosts failed or did not answer: %s; every node host must answer before the cluster is "
                     "changed" % ", ".join(values["unreachable"]))
    nodes = list(values.get("nodes") or [])
    twice = sorted({node for node in nodes if nodes.count(node) > 1})
    if twice:
        found.append("node names used twice: %s; give each host its own emqx_node_host" % ", ".join(twice))
    outside = [seed for seed in values.get("seeds") or [] if seed not in nodes]
    if outside:
        found.append("emqx_cluster_seeds names nodes outside the group %s: %s (write name@host of nodes of the group)"
                     % (values.get("group"), ", ".join(outside)))
    if not values.get("in_group", True):
        found.append("%s is not in the group %s (emqx_cluster_group): the role deploys the nodes of that group only"
                     % (values.get("host"), values.get("group")))
    if (values.get("cookies") or 1) > 1:
        found.append("the hosts of %s do not all have the same emqx_cookie: nodes with another cookie can never join "
                     "the cluster; set emqx_cookie once, in group_vars" % values.get("group"))
    return found


RULES = [value for name, value in sorted(globals().items()) if name.startswith("rule_")]


def setting_errors(values):
    """One sentence per broken rule, in a stable order; empty when every rule holds."""
    found = []
    for rule in RULES:
        message = rule(values)
        if message:
            found.append(message)
    return found
