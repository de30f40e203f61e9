"""The settings rules: each bad input is refused alone, naming its variable; good settings pass."""

from __future__ import annotations

import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_settings import RULES, cluster_errors, setting_errors

GOOD = {
    "emqx_cookie": "a-secret-cookie", "emqx_management_app_secret": "api-secret", "emqx_dashboard_admin_password": "dash",
    "emqx_image": "emqx/emqx:4.4.4", "emqx_image_source": "registry", "emqx_image_archive": "",
    "emqx_cluster_name": "emqxcl", "emqx_instances_per_host": 1, "emqx_instance_port_step": 10,
    "emqx_node_host": "192.0.2.11", "emqx_host_ports": {}, "emqx_rpc_tcp_server_port": 5369, "emqx_dist_listen_min": 6369,
    "emqx_base_dir": "/opt/mqttaction-emqx", "emqx_process_limit": 2097152, "emqx_max_ports": 1048576,
    "emqx_tcp_acceptors": 64, "emqx_tcp_max_connections": 1024000, "emqx_container_nofile": 1048576,
    "emqx_wait_timeout": 120, "emqx_rolling_batch": 1, "emqx_log_level": "warning", "emqx_log_to": "console",
    "emqx_listeners": {"tcp": True, "ssl": True, "ws": True, "wss": True},
    "emqx_plugins": ["emqx_management", "emqx_dashboard"], "emqx_plugin_conf_extra": {}, "emqx_conf_extra": {},
    "emqx_container_sysctls": {"net.core.somaxconn": 32768}, "emqx_container_env": {},
    "emqx_tls_versions": "tlsv1.3,tlsv1.2", "emqx_tls_certificates": "generate", "emqx_tls_cert_valid_days": 825,
    "emqx_firewall_client_networks": ["0.0.0.0/0", "::/0"], "emqx_firewall_admin_networks": [],
    "emqx_auth_mysql_enabled": False, "emqx_auth_mnesia_enabled": True, "emqx_auth_mnesia_password_hash": "sha256",
    "emqx_auth_mysql_password_hash": "sha256", "emqx_auth_mysql_tls": False, "emqx_auth_mysql_tls_server_name": "disable",
    "emqx_auth_mnesia_users": [{"username": "u", "password": "p"}],
    "emqx_auth_mnesia_acl": [{"action": "pubsub", "topic": "t/#", "username": "u"}],
    "emqx_acl_rules": ['{allow, all}.'], "emqx_allow_anonymous": False, "emqx_acl_nomatch": "deny",
}

# (what to change, a word the one message must hold, the variable it must name)
BAD = [
    ({"emqx_cookie": ""}, "not set", "emqx_cookie"),
    ({"emqx_cookie": "emqxsecretcookie"}, "default", "emqx_cookie"),
    ({"emqx_cookie": "two words"}, "one word", "emqx_cookie"),
    ({"emqx_management_app_secret": "public"}, "default", "emqx_management_app_secret"),
    ({"emqx_dashboard_admin_password": ""}, "not set", "emqx_dashboard_admin_password"),
    ({"emqx_image": "emqx/emqx: 4.4.4"}, "image reference", "emqx_image"),
    ({"emqx_image_source": "archive"}, "tarball", "emqx_image_archive"),
    ({"emqx_cluster_name": "My Cluster"}, "atom", "emqx_cluster_name"),
    ({"emqx_instances_per_host": 0}, "from 1 to 50", "emqx_instances_per_host"),
    ({"emqx_instance_port_step": -10}, "from 1 to 1000", "emqx_instance_port_step"),
    ({"emqx_node_host": "no such host!"}, "IP address or a host name", "emqx_node_host"),
    ({"emqx_host_ports": {"mqtt": 70000}}, "outside 1-65535", "emqx_host_ports"),
    ({"emqx_host_ports": {"coap": 5683}}, "has not", "emqx_host_ports"),
    ({"emqx_rpc_tcp_server_port": 80}, "from 1024", "emqx_rpc_tcp_server_port"),
    ({"emqx_dist_listen_min": "6369x"}, "whole number", "emqx_dist_listen_min"),
    ({"emqx_base_dir": "opt/emqx"}, "absolute path", "emqx_base_dir"),
    ({"emqx_process_limit": 10}, "from 1024", "emqx_process_limit"),
    ({"emqx_max_ports": 999999999}, "134217727", "emqx_max_ports"),
    ({"emqx_tcp_acceptors": 0}, "from 1 to 1024", "emqx_tcp_acceptors"),
    ({"emqx_tcp_max_connections": -5}, "from 1", "emqx_tcp_max_connections"),
    ({"emqx_container_nofile": 100}, "from 1024", "emqx_container_nofile"),
    ({"emqx_wait_timeout": 0}, "seconds", "emqx_wait_timeout"),
    ({"emqx_rolling_batch": 0}, "at least 1", "emqx_rolling_batch"),
    ({"emqx_rolling_batch": "0%"}, "percentage", "emqx_rolling_batch"),
    ({"emqx_log_level": "verbose"}, "one of", "emqx_log_level"),
    ({"emqx_listeners": {"quic": True}}, "has not", "emqx_listeners"),
    ({"emqx_plugins": ["emqx_nope"]}, "does not ship", "emqx_plugins"),
    ({"emqx_plugin_conf_extra": {"emqx_management": {"management.default_application.secret": "x"}}},
     "emqx_management_app_secret", "emqx_plugin_conf_extra"),
    ({"emqx_plugin_conf_extra": {"emqx_retainer": {"retainer.max_payload_size": "big"}}}, "not a valid", "emqx_plugin_conf_extra"),
    ({"emqx_conf_extra": {"node.name": "emqx@h"}}, "EMQX_NAME", "emqx_conf_extra"),
    ({"emqx_conf_extra": {"cluster.static.seeds": "a@b"}}, "emqx_cluster_seeds", "emqx_conf_extra"),
    ({"emqx_conf_extra": {"bogus.key": 1}}, "does not accept the key 'bogus.key'", "emqx_conf_extra"),
    ({"emqx_container_sysctls": {"fs.file-max": 1}}, "net.*", "emqx_container_sysctls"),
    ({"emqx_container_env": {"EMQX_NODE_COOKIE": "x"}}, "the role gives each node", "emqx_container_env"),
    ({"emqx_tls_versions": "tlsv1.3, tlsv1.2"}, "without spaces", "emqx_tls_versions"),
    ({"emqx_tls_certificates": "provided"}, "emqx_tls_ca_cert", "emqx_tls_certificates"),
    ({"emqx_tls_cert_valid_days": 0}, "from 30", "emqx_tls_cert_valid_days"),
    ({"emqx_firewall_client_networks": ["10.0.0.0/33"]}, "no address or network", "emqx_firewall_client_networks"),
    ({"emqx_firewall_admin_networks": ["office"]}, "no address or network", "emqx_firewall_admin_networks"),
    ({"emqx_auth_mysql_enabled": True, "emqx_auth_mysql_server": "db", "emqx_auth_mysql_password": "x",
      "emqx_auth_mysql_query_timeout": "5s"}, "host:port", "emqx_auth_mysql_server"),
    ({"emqx_auth_mysql_enabled": True, "emqx_auth_mysql_server": "db:3306", "emqx_auth_mysql_password": "x",
      "emqx_auth_mysql_query_timeout": "5 seconds"}, "duration", "emqx_auth_mysql_query_timeout"),
    ({"emqx_auth_mysql_enabled": True, "emqx_auth_mysql_server": "db:3306", "emqx_auth_mysql_password": "x",
      "emqx_auth_mysql_query_timeout": "5s", "emqx_allow_anonymous": True}, "any username", "emqx_allow_anonymous"),
    ({"emqx_auth_mysql_enabled": True, "emqx_auth_mysql_server": "db:3306", "emqx_auth_mysql_password": "x",
      "emqx_auth_mysql_query_timeout": "5s", "emqx_auth_mysql_password_hash": "sha 256"}, "none 4.4.4 accepts",
     "emqx_auth_mysql_password_hash"),
    ({"emqx_auth_mysql_enabled": True, "emqx_auth_mysql_server": "db:3306", "emqx_auth_mysql_password": "x",
      "emqx_auth_mysql_query_timeout": "5s", "emqx_auth_mysql_tls": True, "emqx_auth_mysql_tls_server_name": "db server"},
     "host name", "emqx_auth_mysql_tls_server_name"),
    ({"emqx_auth_mnesia_password_hash": "bcrypt"}, "sha256", "emqx_auth_mnesia_password_hash"),
    ({"emqx_auth_mnesia_users": [{"username": "u", "password": ""}]}, "non-empty password", "emqx_auth_mnesia_users"),
    ({"emqx_auth_mnesia_users": [{"username": "u", "password": "a"}, {"username": "u", "password": "b"}]},
     "more than once", "emqx_auth_mnesia_users"),
    ({"emqx_auth_mnesia_acl": [{"action": "read", "topic": "t", "username": "u"}]}, "action must be", "emqx_auth_mnesia_acl"),
    ({"emqx_acl_rules": ["allow all"]}, "no Erlang rule", "emqx_acl_rules"),
]


def test_good_settings_pass():
    assert setting_errors(GOOD) == []


@pytest.mark.parametrize("change,says,variable", BAD, ids=[variable + ":" + says for _c, says, variable in BAD])
def test_each_bad_setting_is_refused_alone_naming_its_variable(change, says, variable):
    errors = setting_errors(dict(GOOD, **change))
    assert len(errors) == 1, errors
    assert says in errors[0] and variable in errors[0], errors[0]


def test_switches_read_as_ansible_reads_them():
    assert setting_errors(dict(GOOD, emqx_auth_mysql_enabled="false", emqx_auth_mysql_server="")) == []
    assert setting_errors(dict(GOOD, emqx_rolling_batch="")) == []  # site.yml's default applies


def test_secrets_are_judged_but_never_repeated():
    errors = setting_errors(dict(GOOD, emqx_cookie="has space", emqx_management_app_secret="admin"))
    assert len(errors) == 2 and not any("has space" in error for error in errors)


def test_every_rule_has_a_bad_case_here():
    named = {rule.__name__ for rule in RULES}
    # Each rule is exercised by at least one case above.
    hit = set()
    for change, _says, _variable in BAD:
        for rule in RULES:
            if rule(dict(GOOD, **change)):
                hit.add(rule.__name__)
    assert named - hit == set()


CLUSTER = {"unreachable": [], "nodes": ["emqx@a", "emqx@b"], "seeds": ["emqx@a"], "group": "emqx", "host": "a",
           "in_group": True, "cookies": 1}


def test_a_whole_cluster_passes():
    assert cluster_errors(CLUSTER) == []


@pytest.mark.parametrize("change,says", [
    ({"unreachable": ["b"]}, "did not answer: b"),
    ({"nodes": ["emqx@a", "emqx@a"]}, "used twice: emqx@a"),
    ({"seeds": ["emqx@c"]}, "outside the group emqx: emqx@c"),
    ({"in_group": False}, "not in the group emqx"),
    ({"cookies": 2}, "same emqx_cookie"),
])
def test_each_broken_cluster_rule_reports_itself(change, says):
    errors = cluster_errors(dict(CLUSTER, **change))
    assert len(errors) == 1 and says in errors[0], errors
