"""What each EMQX node of a host must be: the specification of emqx_plan.host_plan."""

from __future__ import annotations

import hashlib

import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_conf_shipped import SHIPPED
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_plan import host_plan
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_topology import host_instances

# The emqx role's defaults, as an inventory without overrides gives them.
DEFAULTS = {
    "emqx_base_dir": "/opt/mqttaction-emqx", "emqx_image": "emqx/emqx:4.4.4", "emqx_restart_policy": "unless-stopped",
    "emqx_cookie": "a-cookie", "emqx_cluster_name": "emqxcl", "emqx_cluster_discovery": "static",
    "emqx_cluster_autoheal": True, "emqx_cluster_autoclean": "5m", "emqx_process_limit": 2097152,
    "emqx_max_ports": 1048576, "emqx_dist_listen_min": 6369, "emqx_rpc_tcp_server_port": 5369,
    "emqx_log_to": "console", "emqx_log_level": "warning", "emqx_allow_anonymous": False, "emqx_acl_nomatch": "deny",
    "emqx_tcp_acceptors": 64, "emqx_tcp_max_connections": 1024000,
    "emqx_listeners": {"tcp": True, "ssl": True, "ws": True, "wss": True},
    "emqx_tls_versions": "tlsv1.3,tlsv1.2", "emqx_tls_verify_clients": False, "emqx_management_https": False,
    "emqx_management_app_id": "mqttaction", "emqx_management_app_secret": "api-secret",
    "emqx_dashboard_admin_user": "admin", "emqx_dashboard_admin_password": "dash-secret",
    "emqx_plugins": ["emqx_management", "emqx_dashboard", "emqx_retainer", "emqx_recon", "emqx_rule_engine"],
    "emqx_plugin_conf_extra": {}, "emqx_conf_extra": {},
    "emqx_acl_rules": ['{allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.', "{allow, all}."],
    "emqx_auth_mysql_enabled": False, "emqx_auth_mysql_tls": False, "emqx_auth_mysql_server": "db:3306",
    "emqx_auth_mysql_pool": 8, "emqx_auth_mysql_username": "emqx", "emqx_auth_mysql_password": "db-secret",
    "emqx_auth_mysql_database": "mqtt", "emqx_auth_mysql_query_timeout": "5s", "emqx_auth_mysql_password_hash": "sha256",
    "emqx_auth_mysql_auth_query": "", "emqx_auth_mysql_super_query": "select is_superuser ...",
    "emqx_auth_mysql_acl_query": "select allow ...", "emqx_auth_mysql_tls_verify": True,
    "emqx_auth_mysql_tls_server_name": "disable", "emqx_auth_mnesia_enabled": True,
    "emqx_auth_mnesia_password_hash": "sha256",
    "emqx_container_env": {}, "emqx_container_nofile": 1048576, "emqx_container_sysctls": {"net.core.somaxconn": 32768},
}
HEADERS = {"#": "#\n# Ansible managed\n#", "%": "%\n% Ansible managed\n%"}


def plan(count=1, certificates=None, **settings):
    nodes = host_instances("192.0.2.11", count=count)
    return host_plan({"settings": dict(DEFAULTS, **settings), "nodes": nodes, "seeds": "emqx@192.0.2.11,emqx@192.0.2.12",
                      "certificates": certificates or [], "headers": HEADERS})


def content(result, suffix):
    return [entry["content"] for entry in result["files"] if entry["path"].endswith(suffix)][0]


def test_emqx_conf_is_what_4_4_4_ships_with_the_role_settings_over_it_in_the_shipped_order():
    conf = plan()["conf"]
    assert list(conf)[:len(SHIPPED)] == list(SHIPPED)
    assert conf["cluster.discovery"] == "static" and conf["cluster.autoheal"] is True
    assert conf["cluster.static.seeds"] == "emqx@192.0.2.11,emqx@192.0.2.12"
    assert conf["acl_file"] == "/opt/emqx/etc/acl.conf" and conf["listener.tcp.external.max_connections"] == 1024000
    assert conf["rpc.port_discovery"] == "manual"  # one node on the host: the one fixed cluster RPC port


def test_a_listener_switched_off_leaves_none_of_its_settings_behind():
    conf = plan(emqx_listeners={"tcp": True, "ssl": False, "ws": True, "wss": True})["conf"]
    assert not [key for key in conf if key == "listener.ssl.external" or key.startswith("listener.ssl.external.")]
    assert conf["listener.wss.external.certfile"] == "/opt/emqx/etc/certs/cert.pem"


def test_the_tls_listeners_get_the_certificates_versions_and_client_verification():
    conf = plan(emqx_tls_verify_clients=True, emqx_tls_versions="tlsv1.3")["conf"]
    for listener in ("ssl", "wss"):
        assert conf["listener.%s.external.tls_versions" % listener] == "tlsv1.3"
        assert conf["listener.%s.external.verify" % listener] == "verify_peer"
        assert conf["listener.%s.external.fail_if_no_peer_cert" % listener] is True


def test_emqx_conf_extra_has_the_last_word():
    conf = plan(emqx_conf_extra={"log.level": "debug", "mqtt.max_packet_size": "2MB"})["conf"]
    assert conf["log.level"] == "debug" and conf["mqtt.max_packet_size"] == "2MB"


def test_the_management_api_speaks_https_with_the_host_certificate_when_asked():
    management = plan(emqx_management_https=True)["plugin_confs"]["emqx_management"]
    assert management["management.listener.https"] == 8081 and "management.listener.http" not in management
    assert management["management.listener.https.certfile"] == "/opt/emqx/etc/certs/cert.pem"


def test_mysql_authentication_reads_the_salt_when_the_scheme_has_one_and_checks_tls():
    confs = plan(emqx_auth_mysql_enabled=True, emqx_auth_mnesia_enabled=False, emqx_auth_mysql_tls=True,
                 emqx_auth_mysql_password_hash="salt,sha256")["plugin_confs"]
    mysql = confs["emqx_auth_mysql"]
    assert mysql["auth.mysql.auth_query"] == "select password, salt from mqtt_user where username = '%u' limit 1"
    assert mysql["auth.mysql.ssl"] is True and mysql["auth.mysql.ssl.cacertfile"] == "/opt/emqx/etc/certs/mysql-cacert.pem"
    assert "emqx_auth_mnesia" not in confs


def test_plugin_conf_extra_merges_into_the_role_settings_of_a_plugin():
    retainer = plan(emqx_plugin_conf_extra={"emqx_retainer": {"retainer.max_retained_messages": 100}})["plugin_confs"]["emqx_retainer"]
    assert retainer["retainer.max_retained_messages"] == 100 and retainer["retainer.storage_type"] == "ram"


def test_acl_conf_ends_without_allow_all_when_a_plugin_authenticates_clients():
    assert not content(plan(), "/acl.conf").rstrip().endswith("{allow, all}.")
    assert "Built-in (mnesia) authentication is on" in content(plan(), "/acl.conf")
    assert content(plan(emqx_auth_mnesia_enabled=False), "/acl.conf").endswith("{allow, all}.\n")


def test_loaded_plugins_lists_what_4_4_4_lists_and_loads_the_enabled_ones():
    text = content(plan(), "/data/loaded_plugins")
    assert text.startswith(HEADERS["%"] + "\n{emqx_management, true}.\n{emqx_dashboard, true}.\n{emqx_modules, false}.\n")
    assert "{emqx_auth_mnesia, true}." in text and "{emqx_telemetry, false}." in text


def test_every_node_gets_its_own_directories_owned_by_the_container_user_where_it_writes():
    result = plan(count=2)
    data = [entry for entry in result["directories"] if entry["path"].endswith("/data")]
    assert [entry["path"] for entry in data] == ["/opt/mqttaction-emqx/emqx1/data", "/opt/mqttaction-emqx/emqx2/data"]
    assert all(entry["owner"] == "1000" and entry["mode"] == "0750" for entry in data)


def test_certificates_are_read_on_the_controller_and_the_key_shows_no_diff(tmp_path):
    (tmp_path / "ca.pem").write_text("CA\n")
    (tmp_path / "old-ca.pem").write_text("OLD CA\n")
    (tmp_path / "key.pem").write_text("KEY\n")
    result = plan(certificates=[{"srcs": [str(tmp_path / "ca.pem"), str(tmp_path / "old-ca.pem")], "dest": "cacert.pem", "mode": "0644"},
                                {"src": str(tmp_path / "key.pem"), "dest": "key.pem", "mode": "0640"}])
    assert content(result, "/certs/cacert.pem") == "CA\nOLD CA\n"
    assert [entry["diff"] for entry in result["files"] if "/certs/" in entry["path"]] == [True, False]


def test_the_container_mounts_each_file_read_only_and_publishes_the_node_ports():
    spec = plan()["containers"]["emqx"]
    assert spec["env"]["EMQX_NAME"] == "emqx" and spec["env"]["EMQX_NODE_COOKIE"] == "a-cookie"
    read_only = [mount["target"] for mount in spec["mounts"] if mount.get("read_only")]
    assert read_only[:3] == ["/opt/emqx/etc/emqx.conf", "/opt/emqx/etc/acl.conf", "/opt/emqx/etc/certs"]
    assert read_only[3:] == sorted(read_only[3:])  # the plugin files, by name
    assert "1883:1883" in spec["published_ports"] and spec["ulimits"] == ["nofile:1048576:1048576"]


def test_without_tls_and_mysql_tls_no_certificates_are_mounted():
    spec = plan(emqx_listeners={"tcp": True, "ssl": False, "ws": True, "wss": False})["containers"]["emqx"]
    assert "/opt/emqx/etc/certs" not in [mount["target"] for mount in spec["mounts"]]


def test_settings_the_image_entrypoint_would_default_go_to_the_environment_too():
    # The official image's entrypoint exports EMQX_LISTENER__TCP__EXTERNAL__ACCEPTORS=64 (and nine more) when
    # unset, over emqx.conf: a value that differs from its default must come in the environment.
    env = plan(emqx_tcp_acceptors=16, emqx_conf_extra={"listener.ws.external.max_connections": 5000,
                                                       "node.max_ets_tables": 4096})["containers"]["emqx"]["env"]
    assert env["EMQX_LISTENER__TCP__EXTERNAL__ACCEPTORS"] == "16" and env["EMQX_NODE__MAX_ETS_TABLES"] == "4096"
    assert env["EMQX_LISTENER__WS__EXTERNAL__MAX_CONNECTIONS"] == "5000"
    # The defaults equal the entrypoint's: nothing is added, and a node deployed before keeps its container.
    assert not [name for name in plan()["containers"]["emqx"]["env"] if name.startswith("EMQX_LISTENER")]
    assert not [name for name in plan()["containers"]["emqx"]["env"] if name.startswith("EMQX_NODE__")]
    # A variable given in emqx_container_env has the last word.
    env = plan(emqx_max_ports=2048, emqx_container_env={"EMQX_NODE__MAX_PORTS": "4096"})["containers"]["emqx"]["env"]
    assert env["EMQX_NODE__MAX_PORTS"] == "4096"


def test_environment_extras_join_the_node_environment():
    assert plan(emqx_container_env={"TZ": "UTC"})["containers"]["emqx"]["env"]["TZ"] == "UTC"


def test_the_digest_ignores_the_seeds_so_a_new_member_restarts_no_other_node():
    before = plan()
    after = host_plan({"settings": DEFAULTS, "nodes": host_instances("192.0.2.11"), "seeds": "emqx@192.0.2.11",
                       "certificates": [], "headers": HEADERS})
    assert before["digests"] == after["digests"]


@pytest.mark.parametrize("change", [
    {"emqx_log_level": "info"},                             # emqx.conf
    {"emqx_acl_rules": ["{deny, all}."]},                   # acl.conf
    {"emqx_dashboard_admin_user": "root"},                  # a plugin's .conf
    {"emqx_plugins": ["emqx_management"]},                  # loaded_plugins
    {"emqx_image": "emqx/emqx:4.4.5"},                      # the container
    {"emqx_container_sysctls": {}},
])
def test_the_digest_changes_with_anything_the_node_reads_at_boot(change):
    assert plan(**change)["digests"] != plan()["digests"]


def test_each_node_of_a_host_has_its_own_digest_and_files_have_their_sha1():
    result = plan(count=3)
    assert len(set(result["digests"].values())) == 3
    entry = result["files"][0]
    assert result["checksums"][entry["path"]] == hashlib.sha1(entry["content"].encode()).hexdigest()


def test_the_plan_says_which_certificates_and_plugins_the_nodes_need():
    assert plan()["certificates"] == {"host": True, "mysql_ca": False, "any": True}
    off = plan(emqx_listeners={"tcp": True, "ssl": False, "ws": True, "wss": False}, emqx_auth_mysql_enabled=True,
               emqx_auth_mysql_tls=True, emqx_auth_mnesia_enabled=False)
    assert off["certificates"] == {"host": False, "mysql_ca": True, "any": True}
    assert off["plugins"][0] == "emqx_management" and "emqx_auth_mysql" in off["plugins"]


def test_settings_4_4_4_would_refuse_are_reported_with_the_variable_to_check():
    assert plan()["errors"] == []
    errors = plan(emqx_conf_extra={"mqtt.max_packet_size": "big"},
                  emqx_plugin_conf_extra={"emqx_retainer": {"retainer.max_retained_messages": "many"}})["errors"]
    assert len(errors) == 2 and errors[0].endswith("(check emqx_conf_extra)") and "plugins/emqx_retainer.conf" in errors[1]
