# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""What each EMQX node of a host must be: its files, settings, container and digest.

``host_plan(inputs)`` is the one place the ``emqx`` role works this out; its tasks
only apply the result (``emqx_files`` writes the files, ``docker_container`` runs
the containers). ``inputs`` holds:

* ``settings``: the role's variables by name (``emqx_image``, ``emqx_listeners``,
  ``emqx_conf_extra``, ...), as the inventory gives them;
* ``nodes``: this host's nodes (the ``emqx_instances`` filter: name, node name,
  host, ports);
* ``seeds``: ``cluster.static.seeds``, comma-separated;
* ``certificates``: the files every node gets in ``etc/certs``
  (``{dest, mode, srcs}``, controller paths, read here);
* ``headers``: the managed-file comment, by comment character (``#``, ``%``).

The digest of a node covers everything it reads at boot but the seeds, and its
container: a running node needs a restart exactly when its digest changes. It is
computed exactly as release 0.2.0 computed it, so that upgrading the collection
restarts no node whose settings did not change (tests/plan proves it).
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_conf_shipped import SHIPPED
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_config import errors as conf_errors
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_config import lines as conf_lines

CONTAINER_ROOT = "/opt/emqx"
CERTS_DIR = CONTAINER_ROOT + "/etc/certs"
LISTENER_PREFIXES = {"tcp": "listener.tcp.external", "ssl": "listener.ssl.external",
                     "ws": "listener.ws.external", "wss": "listener.wss.external"}
# The plugins 4.4.4 ships in its release; a name outside this list is a typo.
KNOWN_PLUGINS = ("emqx_auth_http", "emqx_auth_jwt", "emqx_auth_ldap", "emqx_auth_mnesia", "emqx_auth_mongo",
                 "emqx_auth_mysql", "emqx_auth_pgsql", "emqx_auth_redis", "emqx_bridge_mqtt", "emqx_coap",
                 "emqx_dashboard", "emqx_exhook", "emqx_exproto", "emqx_lua_hook", "emqx_lwm2m", "emqx_management",
                 "emqx_modules", "emqx_prometheus", "emqx_psk_file", "emqx_recon", "emqx_retainer",
                 "emqx_rule_engine", "emqx_sn", "emqx_stomp", "emqx_telemetry", "emqx_web_hook")
# The plugins of the loaded_plugins file 4.4.4 writes; kept (as false) when not
# enabled, so the file reads like the one 4.4.4 writes.
DEFAULT_LOADED_PLUGINS = ["emqx_management", "emqx_dashboard", "emqx_modules", "emqx_recon", "emqx_retainer",
                          "emqx_telemetry", "emqx_rule_engine", "emqx_bridge_mqtt"]
# The container runs EMQX as uid and gid 1000: it owns data/ and log/ and may read etc/.
EMQX_UID = "1000"
# The official 4.4.4 image's docker-entrypoint.sh exports these when they are
# unset, and 4.4.4 lets EMQX_* variables override emqx.conf: the file alone does
# not set them. Seen on the real broker: emqx_tcp_acceptors 16 in emqx.conf ran
# with 64 acceptors.
ENTRYPOINT_DEFAULTS = (
    ("node.process_limit", "EMQX_NODE__PROCESS_LIMIT", "2097152"),
    ("node.max_ports", "EMQX_NODE__MAX_PORTS", "1048576"),
    ("node.max_ets_tables", "EMQX_NODE__MAX_ETS_TABLES", "2097152"),
    ("listener.tcp.external.acceptors", "EMQX_LISTENER__TCP__EXTERNAL__ACCEPTORS", "64"),
    ("listener.tcp.external.max_connections", "EMQX_LISTENER__TCP__EXTERNAL__MAX_CONNECTIONS", "1024000"),
    ("listener.ssl.external.acceptors", "EMQX_LISTENER__SSL__EXTERNAL__ACCEPTORS", "32"),
    ("listener.ssl.external.max_connections", "EMQX_LISTENER__SSL__EXTERNAL__MAX_CONNECTIONS", "102400"),
    ("listener.ws.external.acceptors", "EMQX_LISTENER__WS__EXTERNAL__ACCEPTORS", "16"),
    ("listener.ws.external.max_connections", "EMQX_LISTENER__WS__EXTERNAL__MAX_CONNECTIONS", "102400"),
    ("listener.wss.external.acceptors", "EMQX_LISTENER__WSS__EXTERNAL__ACCEPTORS", "16"),
    ("listener.wss.external.max_connections", "EMQX_LISTENER__WSS__EXTERNAL__MAX_CONNECTIONS", "102400"),
)
# Those of them the role's own variables set.
ROLE_SET = {"node.process_limit": "emqx_process_limit", "node.max_ports": "emqx_max_ports",
            "listener.tcp.external.acceptors": "emqx_tcp_acceptors",
            "listener.tcp.external.max_connections": "emqx_tcp_max_connections"}


def _on(value):
    return boolean(value, strict=False)


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _prefixed(prefix, settings):
    return dict((prefix + key, value) for key, value in settings.items())


def _merge(base, *others, recursive=False):
    """Ansible's combine: later dicts win, keys keep their first place."""
    result = dict(base)
    for other in others:
        for key, value in other.items():
            if recursive and isinstance(result.get(key), dict) and isinstance(value, dict):
                result[key] = _merge(result[key], value, recursive=True)
            else:
                result[key] = value
    return result


def enabled_plugins(settings):
    """The plugins every node loads: emqx_management always (emqx_ctl cluster and the API
    live in it), those of emqx_plugins, and the authentication plugins switched on."""
    return _unique(["emqx_management"] + list(settings["emqx_plugins"])
                   + (["emqx_auth_mysql"] if _on(settings["emqx_auth_mysql_enabled"]) else [])
                   + (["emqx_auth_mnesia"] if _on(settings["emqx_auth_mnesia_enabled"]) else []))


def auth_backend(settings):
    """Whether an authentication plugin checks MQTT clients."""
    return _on(settings["emqx_auth_mysql_enabled"]) or _on(settings["emqx_auth_mnesia_enabled"])


def tls_listeners(settings):
    """The TLS listeners that are on."""
    on = [name for name, value in settings["emqx_listeners"].items() if _on(value)]
    return [name for name in ("ssl", "wss") if name in on]


def host_certificate_needed(settings):
    """A host certificate serves the TLS listeners and the https management API."""
    return bool(tls_listeners(settings)) or _on(settings["emqx_management_https"])


def mysql_tls(settings):
    return _on(settings["emqx_auth_mysql_enabled"]) and _on(settings["emqx_auth_mysql_tls"])


def certificates_needed(settings):
    """Whether the nodes get etc/certs (also for the CA MySQL's certificate is checked with)."""
    return host_certificate_needed(settings) or mysql_tls(settings)


def _tls_files(settings):
    return {"keyfile": CERTS_DIR + "/key.pem", "certfile": CERTS_DIR + "/cert.pem",
            "cacertfile": CERTS_DIR + "/cacert.pem", "tls_versions": settings["emqx_tls_versions"]}


def emqx_conf(settings, nodes, seeds):
    """emqx.conf of the host's nodes: what 4.4.4 ships (less the listeners switched off),
    then the role's settings, the TLS listeners' certificates, and emqx_conf_extra."""
    off = [LISTENER_PREFIXES[name] for name, value in settings["emqx_listeners"].items()
           if not _on(value) and name in LISTENER_PREFIXES]
    pattern = re.compile("^(" + ("|".join(re.escape(prefix) for prefix in off) or "$^") + r")($|\.)")
    shipped = dict((key, value) for key, value in SHIPPED.items() if not pattern.match(key))
    managed = {
        "cluster.name": settings["emqx_cluster_name"],
        "cluster.discovery": settings["emqx_cluster_discovery"],
        "cluster.static.seeds": seeds,
        "cluster.autoheal": _on(settings["emqx_cluster_autoheal"]),
        "cluster.autoclean": settings["emqx_cluster_autoclean"],
        "node.process_limit": settings["emqx_process_limit"],
        "node.max_ports": settings["emqx_max_ports"],
        "node.dist_listen_min": settings["emqx_dist_listen_min"],
        "node.dist_listen_max": settings["emqx_dist_listen_min"],
        "rpc.port_discovery": nodes[0]["rpc_port_discovery"],
        "rpc.tcp_server_port": settings["emqx_rpc_tcp_server_port"],
        "log.to": settings["emqx_log_to"],
        "log.level": settings["emqx_log_level"],
        "allow_anonymous": _on(settings["emqx_allow_anonymous"]),
        "acl_nomatch": settings["emqx_acl_nomatch"],
        "acl_file": CONTAINER_ROOT + "/etc/acl.conf",
        "listener.tcp.external.acceptors": settings["emqx_tcp_acceptors"],
        "listener.tcp.external.max_connections": settings["emqx_tcp_max_connections"],
    }
    listener_tls = _merge(_tls_files(settings), {
        "verify": "verify_peer" if _on(settings["emqx_tls_verify_clients"]) else "verify_none",
        "fail_if_no_peer_cert": _on(settings["emqx_tls_verify_clients"])})
    tls = {}
    for name in tls_listeners(settings):
        tls.update(_prefixed(LISTENER_PREFIXES[name] + ".", listener_tls))
    return _merge(shipped, managed, tls, settings["emqx_conf_extra"] or {})


def plugin_confs(settings):
    """Each plugin's .conf the role writes, by plugin: the management API and its
    listener, the dashboard, the retainer, the authentication plugins switched on,
    with emqx_plugin_conf_extra over them."""
    https = _on(settings["emqx_management_https"])
    proto = "https" if https else "http"
    listener = {"acceptors": 2, "max_clients": 512, "backlog": 512, "send_timeout": "15s", "send_timeout_close": True,
                "inet6": False, "ipv6_v6only": False}
    if https:
        listener = _merge(listener, _merge(_tls_files(settings), {"verify": "verify_none", "fail_if_no_peer_cert": False}))
    management = _merge({"management.max_row_limit": 10000,
                         "management.default_application.id": settings["emqx_management_app_id"],
                         "management.default_application.secret": settings["emqx_management_app_secret"]},
                        _merge({"management.listener." + proto: 8081},
                               _prefixed("management.listener.%s." % proto, listener)))
    confs = {
        "emqx_management": management,
        "emqx_dashboard": {
            "dashboard.default_user.login": settings["emqx_dashboard_admin_user"],
            "dashboard.default_user.password": settings["emqx_dashboard_admin_password"],
            "dashboard.listener.http": 18083,
            "dashboard.listener.http.acceptors": 4,
            "dashboard.listener.http.max_clients": 512,
            "dashboard.listener.http.inet6": False,
            "dashboard.listener.http.ipv6_v6only": False,
        },
        "emqx_retainer": {
            "retainer.storage_type": "ram",
            "retainer.max_retained_messages": 0,
            "retainer.max_payload_size": "1MB",
            "retainer.expiry_interval": 0,
        },
    }
    if _on(settings["emqx_auth_mysql_enabled"]):
        password_hash = settings["emqx_auth_mysql_password_hash"]
        # A scheme with a comma (salt,<hash>, <hash>,salt, pbkdf2,...) reads the salt column.
        auth_query = settings["emqx_auth_mysql_auth_query"] or (
            "select password" + (", salt" if "," in password_hash else "")
            + " from mqtt_user where username = '%u' limit 1")
        confs = _merge(confs, {"emqx_auth_mysql": {
            "auth.mysql.server": settings["emqx_auth_mysql_server"],
            "auth.mysql.pool": settings["emqx_auth_mysql_pool"],
            "auth.mysql.username": settings["emqx_auth_mysql_username"],
            "auth.mysql.password": settings["emqx_auth_mysql_password"],
            "auth.mysql.database": settings["emqx_auth_mysql_database"],
            "auth.mysql.query_timeout": settings["emqx_auth_mysql_query_timeout"],
            "auth.mysql.password_hash": password_hash,
            "auth.mysql.auth_query": auth_query,
            "auth.mysql.super_query": settings["emqx_auth_mysql_super_query"],
            "auth.mysql.acl_query": settings["emqx_auth_mysql_acl_query"],
        }})
    if _on(settings["emqx_auth_mnesia_enabled"]):
        confs = _merge(confs, {"emqx_auth_mnesia": {"auth.mnesia.password_hash": settings["emqx_auth_mnesia_password_hash"]}})
    if mysql_tls(settings):
        confs = _merge(confs, {"emqx_auth_mysql": {
            "auth.mysql.ssl": True,
            "auth.mysql.ssl.cacertfile": CERTS_DIR + "/mysql-cacert.pem",
            "auth.mysql.ssl.verify": _on(settings["emqx_auth_mysql_tls_verify"]),
            "auth.mysql.ssl.server_name_indication": settings["emqx_auth_mysql_tls_server_name"],
        }}, recursive=True)
    return _merge(confs, settings["emqx_plugin_conf_extra"] or {}, recursive=True)


def emqx_conf_file(header, node, conf):
    return (header + "\n#\n"
            "# EMQX 4.4.4 configuration of %s: what 4.4.4 ships, with the\n"
            "# settings of the mqttaction.emqx.emqx role over it. node.name and node.cookie\n"
            "# come from the container's environment (EMQX_NAME, EMQX_HOST, EMQX_NODE_COOKIE).\n" % node
            + "".join(line + "\n" for line in conf_lines(conf)))


def acl_conf_file(header, settings):
    """acl.conf: emqx_acl_rules; with an authentication plugin on, without a final
    {allow, all}. (so acl_nomatch decides what no rule matches)."""
    rules = list(settings["emqx_acl_rules"])
    backend = auth_backend(settings)
    allow_all_last = bool(rules) and re.sub(r"\s", "", rules[-1]) == "{allow,all}."
    text = header + "\n%%%% EMQX 4.4.4 file ACL, checked top to bottom; acl_nomatch = %s applies when no rule matches.\n" % (
        settings["emqx_acl_nomatch"])
    if backend:
        text += "%%%% %s authentication is on: its rules are checked before these%s.\n" % (
            "MySQL" if _on(settings["emqx_auth_mysql_enabled"]) else "Built-in (mnesia)",
            "; the final {allow, all}. is left out" if allow_all_last else "")
    return text + "".join(rule + "\n" for rule in (rules[:-1] if backend and allow_all_last else rules))


def plugin_conf_file(header, node, plugin, settings):
    return header + "\n# %s configuration of %s\n" % (plugin, node) + "".join(
        line + "\n" for line in conf_lines(settings, plugin))


def loaded_plugins_file(header, enabled):
    return header + "\n" + "".join(
        "{%s, %s}.\n" % (plugin, "true" if plugin in enabled else "false")
        for plugin in _unique(DEFAULT_LOADED_PLUGINS + enabled))


def _read(path):
    with open(path, "r", encoding="utf-8") as handle:
        return handle.read()


def node_files(inputs, conf, confs):
    """Every node's directories and files, for emqx_files."""
    settings, headers = inputs["settings"], inputs["headers"]
    base = settings["emqx_base_dir"]
    enabled = enabled_plugins(settings)
    certificates = [dict(certificate, content="".join(_read(src) for src in certificate.get("srcs") or [certificate["src"]]))
                    for certificate in inputs.get("certificates") or []]
    directories, files = [], []
    for node in inputs["nodes"]:
        root = base + "/" + node["name"]
        directories += [
            {"path": root, "mode": "0755"},
            {"path": root + "/etc", "mode": "0755"},
            {"path": root + "/etc/plugins", "mode": "0755"},
            {"path": root + "/etc/certs", "mode": "0755"},
            {"path": root + "/data", "owner": EMQX_UID, "group": EMQX_UID, "mode": "0750"},
            {"path": root + "/log", "owner": EMQX_UID, "group": EMQX_UID, "mode": "0750"},
        ]
        files.append({"path": root + "/etc/emqx.conf", "group": EMQX_UID, "mode": "0640",
                      "content": emqx_conf_file(headers["#"], node["node"], conf)})
        files.append({"path": root + "/etc/acl.conf", "group": EMQX_UID, "mode": "0640",
                      "content": acl_conf_file(headers["%"], settings)})
        for plugin, plugin_settings in confs.items():
            files.append({"path": root + "/etc/plugins/%s.conf" % plugin, "group": EMQX_UID, "mode": "0640",
                          "content": plugin_conf_file(headers["#"], node["node"], plugin, plugin_settings)})
        files.append({"path": root + "/data/loaded_plugins", "owner": EMQX_UID, "group": EMQX_UID, "mode": "0644",
                      "content": loaded_plugins_file(headers["%"], enabled)})
        for certificate in certificates:
            files.append({"path": root + "/etc/certs/" + certificate["dest"], "group": EMQX_UID,
                          "mode": certificate["mode"], "diff": certificate["dest"] != "key.pem",
                          "content": certificate["content"]})
    return {"directories": directories, "files": files}


def entrypoint_env(settings):
    """The variables that make the image's entrypoint keep what the inventory set (the role's variables and
    emqx_conf_extra) for the keys it would otherwise default; only where the value differs from its
    default, so a container that ran the default keeps its spec (and is not restarted)."""
    extra = settings["emqx_conf_extra"] or {}
    env = {}
    for key, name, default in ENTRYPOINT_DEFAULTS:
        value = extra[key] if key in extra else settings.get(ROLE_SET[key]) if key in ROLE_SET else None
        if value is not None and str(value) != default:
            env[name] = str(value)
    return env


def container(settings, node, confs):
    """What a node's container must be (community.docker.docker_container's options)."""
    root = settings["emqx_base_dir"] + "/" + node["name"]
    mounts = [
        {"type": "bind", "source": root + "/etc/emqx.conf", "target": CONTAINER_ROOT + "/etc/emqx.conf", "read_only": True},
        {"type": "bind", "source": root + "/etc/acl.conf", "target": CONTAINER_ROOT + "/etc/acl.conf", "read_only": True},
        {"type": "bind", "source": root + "/data", "target": CONTAINER_ROOT + "/data"},
        {"type": "bind", "source": root + "/log", "target": CONTAINER_ROOT + "/log"},
    ]
    if certificates_needed(settings):
        mounts.append({"type": "bind", "source": root + "/etc/certs", "target": CERTS_DIR, "read_only": True})
    for plugin in sorted(confs):
        mounts.append({"type": "bind", "source": root + "/etc/plugins/%s.conf" % plugin,
                       "target": CONTAINER_ROOT + "/etc/plugins/%s.conf" % plugin, "read_only": True})
    nofile = settings["emqx_container_nofile"]
    return {
        "image": settings["emqx_image"],
        "hostname": node["name"],
        "restart_policy": settings["emqx_restart_policy"],
        "env": _merge({"EMQX_NAME": node["name"], "EMQX_HOST": node["host"], "EMQX_NODE_COOKIE": settings["emqx_cookie"],
                       "EMQX_LOG__TO": settings["emqx_log_to"], "EMQX_RPC__PORT_DISCOVERY": node["rpc_port_discovery"],
                       "WITH_EPMD": "1" if node["epmd"] else ""}, entrypoint_env(settings),
                      settings["emqx_container_env"] or {}),
        "mounts": mounts,
        "published_ports": node["publish"],
        "ulimits": ["nofile:%s:%s" % (nofile, nofile)],
        "sysctls": settings["emqx_container_sysctls"],
    }


def digest(conf, checksums, spec):
    """A node's restart digest: its emqx.conf settings but the seeds, the checksums of
    its other files (by path), and its container. Serialised as release 0.2.0 did
    (Ansible's to_json of [settings, [{key, value}...], container], then sha256)."""
    settings = dict((key, value) for key, value in conf.items() if key != "cluster.static.seeds")
    sums = [{"key": path, "value": checksums[path]} for path in sorted(checksums)]
    return hashlib.sha256(json.dumps([settings, sums, spec]).encode("utf-8")).hexdigest()


def host_plan(inputs):
    """The plan of every node of the host: {conf, plugin_confs, plugins (loaded),
    errors (what 4.4.4 would refuse in these settings),
    certificates (which the nodes need: host, mysql_ca, any), directories, files,
    containers: {name: spec}, digests: {name: digest}, checksums: {path: sha1}}."""
    settings, nodes = inputs["settings"], inputs["nodes"]
    conf = emqx_conf(settings, nodes, inputs["seeds"])
    confs = plugin_confs(settings)
    written = node_files(inputs, conf, confs)
    checksums = dict((entry["path"], hashlib.sha1(entry["content"].encode("utf-8")).hexdigest())
                     for entry in written["files"])
    containers, digests = {}, {}
    for node in nodes:
        prefix = settings["emqx_base_dir"] + "/" + node["name"] + "/"
        containers[node["name"]] = container(settings, node, confs)
        digests[node["name"]] = digest(
            conf, dict((path, value) for path, value in checksums.items()
                       if path.startswith(prefix) and path != prefix + "etc/emqx.conf"), containers[node["name"]])
    # What 4.4.4 would refuse at boot (emqx.conf) or when loading a plugin (its .conf).
    errors = [message + " (check emqx_conf_extra)" for message in conf_errors(conf)]
    for plugin, plugin_settings in confs.items():
        errors += [message + " (check emqx_plugin_conf_extra)"
                   for message in conf_errors(plugin_settings, plugin, "plugins/%s.conf" % plugin)]
    return {"conf": conf, "plugin_confs": confs, "plugins": enabled_plugins(settings), "errors": errors,
            "certificates": {"host": host_certificate_needed(settings), "mysql_ca": mysql_tls(settings),
                             "any": certificates_needed(settings)},
            "directories": written["directories"], "files": written["files"],
            "containers": containers, "digests": digests, "checksums": checksums}
