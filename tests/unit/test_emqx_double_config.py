"""Unit tests for the start-up/config logic of the EMQX 4.4.4 test double.

The module lives in the image context (tests/lab/images/emqx-double) and is
imported here by path, like test_labctl.py does with labctl.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

DOUBLE_DIR = Path(__file__).resolve().parents[1] / "lab" / "images" / "emqx-double"
spec = importlib.util.spec_from_file_location(
    "emqx_double_config", DOUBLE_DIR / "emqx_double_config.py"
)
cfg = importlib.util.module_from_spec(spec)
sys.modules["emqx_double_config"] = cfg
# No __pycache__ in the image's build context.
_dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
spec.loader.exec_module(cfg)
sys.dont_write_bytecode = _dont_write

ROWS = cfg.load_schema(DOUBLE_DIR / "config-keys.tsv")
CORE = cfg.rows_for(ROWS, None)
IMAGE_CONF = (DOUBLE_DIR / "etc" / "emqx.conf").read_text()


def plan(env=None, conf=IMAGE_CONF, plugins=None, loaded=None):
    return cfg.plan_boot(env or {}, conf, plugins or {}, loaded, ROWS)


# --- the files shipped in the image are valid for 4.4.4 ----------------------


def test_image_emqx_conf_is_valid():
    assert cfg.validate(cfg.parse_conf(IMAGE_CONF), CORE) == []


@pytest.mark.parametrize("path", sorted((DOUBLE_DIR / "etc" / "plugins").glob("*.conf")))
def test_image_plugin_confs_are_valid(path):
    rows = cfg.rows_for(ROWS, path.stem)
    assert rows, f"{path.stem} owns no keys in config-keys.tsv"
    assert cfg.validate(cfg.parse_conf(path.read_text()), rows) == []


def test_image_loaded_plugins_are_the_444_defaults():
    text = (DOUBLE_DIR / "data" / "loaded_plugins").read_text()
    assert cfg.parse_loaded_plugins(text) == cfg.DEFAULT_LOADED_PLUGINS


# --- env mapping -------------------------------------------------------------


def test_env_key_generic_mapping():
    assert cfg.env_key("EMQX_CLUSTER__STATIC__SEEDS") == "cluster.static.seeds"
    assert cfg.env_key("EMQX_AUTH__MYSQL__PASSWORD_HASH") == "auth.mysql.password_hash"
    assert cfg.env_key("EMQX_ALLOW_ANONYMOUS") == "allow_anonymous"
    assert cfg.env_key("OTHER_X") is None


def test_env_overrides_set_and_wildcards():
    env = {
        "EMQX_CLUSTER__DISCOVERY": "static",
        "EMQX_LISTENER__TCP__EXTERNAL": "1884",
        "EMQX_LOG__TO": "console",
    }
    p = plan(env)
    assert p.conf["cluster.discovery"] == "static"
    assert p.conf["listener.tcp.external"] == "1884"
    assert p.conf["log.to"] == "console"


def test_env_empty_value_deletes_key():
    p = plan({"EMQX_LISTENER__TCP__INTERNAL": ""})
    assert "listener.tcp.internal" not in p.conf
    assert "listener.tcp.external" in p.conf


def test_env_matching_no_key_is_ignored():
    # EMQX_NAME, EMQX_HOST, EMQX_LOADED_PLUGINS and entrypoint extras such as
    # node.max_ets_tables are no 4.4.4 keys: cuttlefish ignores them.
    p = plan({"EMQX_NAME": "x", "EMQX_LOADED_PLUGINS": "a", "EMQX_NODE__MAX_ETS_TABLES": "1"})
    assert "name" not in p.conf and "node.max_ets_tables" not in p.conf


def test_override_env_alias_wins_over_generic_form():
    env = {
        "EMQX_NODE__NAME": "generic@10.0.0.1",
        "EMQX_NODE_NAME": "alias@10.0.0.2",
        "EMQX_NODE__COOKIE": "generic",
        "EMQX_NODE_COOKIE": "alias",
        "EMQX_NODE__MAX_PORTS": "4096",
        "EMQX_MAX_PORTS": "8192",
    }
    p = plan(env)
    assert p.node_name == "alias@10.0.0.2"
    assert p.cookie == "alias"
    assert p.conf["node.max_ports"] == "8192"


def test_generic_node_name_applies_without_alias():
    p = plan({"EMQX_NODE__NAME": "generic@10.0.0.1"})
    assert p.node_name == "generic@10.0.0.1"


def test_node_name_in_file_is_overridden_by_env():
    p = plan({"EMQX_NODE_NAME": "emqx@10.1.1.1"}, conf="node.name = file@127.0.0.1\n")
    assert p.node_name == "emqx@10.1.1.1"


def test_plugin_keys_take_env_overrides():
    p = plan(
        {"EMQX_AUTH__MYSQL__SERVER": "mysql:3306"},
        plugins={"emqx_auth_mysql": "auth.mysql.server = 127.0.0.1:3306\n"},
    )
    mysql = next(x for x in p.plugins if x.name == "emqx_auth_mysql")
    assert mysql.conf["auth.mysql.server"] == "mysql:3306"
    assert "auth.mysql.server" not in p.conf  # not a broker key


# --- entrypoint: name and host -------------------------------------------------


def test_entrypoint_defaults_name_to_hostname_and_host_to_ip():
    env = cfg.entrypoint_env({}, "6ec088117e14", "172.18.0.2")
    assert env["EMQX_NODE_NAME"] == "6ec088117e14@172.18.0.2"
    assert cfg.dist_port(env["EMQX_NODE_NAME"]) == 4370 + 14


def test_entrypoint_name_and_host():
    env = cfg.entrypoint_env({"EMQX_NAME": "emqx", "EMQX_HOST": "node1.lab"}, "h", "10.0.0.9")
    assert env["EMQX_NODE_NAME"] == "emqx@node1.lab"


def test_entrypoint_keeps_explicit_node_name():
    env = cfg.entrypoint_env({"EMQX_NODE_NAME": "a@b", "EMQX_NAME": "x"}, "h", "10.0.0.9")
    assert env["EMQX_NODE_NAME"] == "a@b"


def test_entrypoint_forces_manual_rpc_port_discovery_unless_set():
    assert cfg.entrypoint_env({}, "h", "1.2.3.4")["EMQX_RPC__PORT_DISCOVERY"] == "manual"
    env = cfg.entrypoint_env({"EMQX_RPC__PORT_DISCOVERY": "stateless"}, "h", "1.2.3.4")
    assert env["EMQX_RPC__PORT_DISCOVERY"] == "stateless"
    # and the exported value beats rpc.port_discovery = stateless in the file
    assert plan(cfg.entrypoint_env({}, "h", "1.2.3.4")).conf["rpc.port_discovery"] == "manual"


def test_first_ipv4_of_hostname_i():
    assert cfg.first_ipv4("fe80::1 172.28.99.11 10.0.0.1") == "172.28.99.11"
    assert cfg.first_ipv4("fe80::1") is None


@pytest.mark.parametrize(
    "name,port",
    [
        ("emqx@h", 4370),
        ("emqx1@h", 4371),
        ("emqx-2@h", 4372),
        ("e7x@h", 4370),
        ("n60001@h", 4371),
        ("abc123@h", 4493),
    ],
)
def test_dist_port(name, port):
    assert cfg.dist_port(name) == port


@pytest.mark.parametrize("name", ["emqx.1@h", "em qx@h", "emqx", "é@h", "@h"])
def test_bad_short_name_refused(name):
    with pytest.raises(cfg.NodeNameError):
        plan({"EMQX_NODE_NAME": name})


def test_good_short_names_accepted():
    for name in ("emqx@172.18.0.2", "emqx_1@node1.lab", "Emqx-2@h"):
        assert plan({"EMQX_NODE_NAME": name}).node_name == name


# --- loaded_plugins ------------------------------------------------------------


def test_missing_loaded_plugins_gets_444_defaults():
    p = plan(loaded=None)
    assert cfg.parse_loaded_plugins(p.loaded_plugins_text) == cfg.DEFAULT_LOADED_PLUGINS
    active = {x.name for x in p.plugins if x.active}
    assert active == {
        "emqx_management",
        "emqx_dashboard",
        "emqx_recon",
        "emqx_retainer",
        "emqx_telemetry",
        "emqx_rule_engine",
    }


def test_loaded_plugins_names_split_on_non_word_runs():
    assert cfg.loaded_plugins_names("emqx_a, emqx_b|emqx_c  emqx_d") == [
        "emqx_a",
        "emqx_b",
        "emqx_c",
        "emqx_d",
    ]


def test_fill_loaded_plugins_enables_and_appends_never_disables():
    text = "{emqx_management, true}.\n{emqx_modules, false}.\n{emqx_recon, true}.\n"
    out = cfg.fill_loaded_plugins(text, ["emqx_modules", "emqx_auth_mysql"])
    assert cfg.parse_loaded_plugins(out) == [
        ("emqx_management", True),
        ("emqx_modules", True),
        ("emqx_recon", True),
        ("emqx_auth_mysql", True),
    ]
    # already true: left alone, not duplicated
    assert cfg.fill_loaded_plugins(out, ["emqx_recon"]) == out


def test_fill_loaded_plugins_on_missing_file_lists_only_named():
    out = cfg.fill_loaded_plugins(None, ["emqx_auth_mysql"])
    assert out == "{emqx_auth_mysql, true}.\n"
    p = plan(loaded=out)
    assert not next(x for x in p.plugins if x.name == "emqx_management").active


def test_parse_loaded_plugins_accepts_bare_names():
    assert cfg.parse_loaded_plugins("emqx_recon.\n{emqx_x, false}.\n") == [
        ("emqx_recon", True),
        ("emqx_x", False),
    ]


# --- validation of emqx.conf -------------------------------------------------------


def test_unknown_key_stops_the_node():
    with pytest.raises(cfg.ConfigError, match="unknown variable: bogus.key"):
        plan(conf=IMAGE_CONF + "bogus.key = 1\n")


def test_unknown_key_from_env_is_not_an_error_but_from_file_is():
    plan({"EMQX_BOGUS__KEY": "1"})


def test_bad_value_from_env_stops_the_node():
    with pytest.raises(cfg.ConfigError, match="log.to"):
        plan({"EMQX_LOG__TO": "everywhere"})


def test_syntax_error_stops_the_node():
    with pytest.raises(cfg.ConfigError, match="syntax"):
        plan(conf="cluster.name emqxcl\n")


@pytest.mark.parametrize(
    "key,good,bad",
    [
        ("rpc.tcp_server_port", "5369", "53x"),  # integer
        ("cluster.autoheal", "on", "yes"),  # flag
        ("cluster.autoheal", "false", "1"),  # flag
        ("cluster.autoclean", "5m", "5 minutes"),  # {duration, ms}
        ("rpc.connect_timeout", "0s", "five"),  # duration 0s accepted
        ("node.global_gc_interval", "15m", "15"),  # {duration, s}
        ("node.dist_buffer_size", "8MB", "8XB"),  # bytesize
        ("listener.tcp.external", "0.0.0.0:1883", "localhost:1883"),  # [integer, ip]
        ("listener.tcp.external", "1883", "port1883"),
        ("allow_anonymous", "false", "off"),  # {enum, [true, false]}
        ("log.level", "debug", "verbose"),  # enum
        ("rpc.port_discovery", "manual", "static"),  # enum
        ("cluster.proto_dist", "inet_tcp", "tcp"),  # enum
        ("os_mon.cpu_high_watermark", "80%", "80"),  # {percent, float}
    ],
)
def test_datatypes(key, good, bad):
    assert cfg.find_mapping(key, CORE) is not None, key
    plan(conf=f"{key} = {good}\n")
    with pytest.raises(cfg.ConfigError, match=key.replace(".", r"\.")):
        plan(conf=f"{key} = {bad}\n")


def test_wildcard_segments():
    assert (
        cfg.find_mapping("listener.tcp.myown.acceptors", CORE).key == "listener.tcp.$name.acceptors"
    )
    assert cfg.find_mapping("zone.external.allow_anonymous", CORE) is not None
    assert cfg.find_mapping("listener.tcp", CORE) is None


# --- seeds -------------------------------------------------------------------------


def test_seeds_split_on_comma_only_not_trimmed():
    p = plan(
        {
            "EMQX_CLUSTER__DISCOVERY": "static",
            "EMQX_CLUSTER__STATIC__SEEDS": "emqx@a.lab, emqx@b.lab,emqx@c.lab",
        }
    )
    assert p.seeds == ["emqx@a.lab", " emqx@b.lab", "emqx@c.lab"]


def test_seeds_empty_tokens_dropped():
    assert cfg.split_seeds("a@h,,b@h,") == ["a@h", "b@h"]
    assert cfg.split_seeds("") == []


def test_seeds_rendered_as_atoms_with_the_space_kept():
    p = plan({"EMQX_CLUSTER__STATIC__SEEDS": "emqx@a, emqx@b"})
    assert "{seeds, ['emqx@a', ' emqx@b']}." in cfg.render_terms(p, ROWS)


# --- plugin confs --------------------------------------------------------------------


MYSQL_CONF = (DOUBLE_DIR / "etc" / "plugins" / "emqx_auth_mysql.conf").read_text()


def test_bad_plugin_value_only_deactivates_that_plugin():
    loaded = cfg.fill_loaded_plugins(
        cfg.format_loaded_plugins(cfg.DEFAULT_LOADED_PLUGINS), ["emqx_auth_mysql"]
    )
    p = plan(plugins={"emqx_auth_mysql": MYSQL_CONF + "auth.mysql.pool = many\n"}, loaded=loaded)
    mysql = next(x for x in p.plugins if x.name == "emqx_auth_mysql")
    assert mysql.enabled and not mysql.active
    assert "auth.mysql.pool" in mysql.error
    assert next(x for x in p.plugins if x.name == "emqx_management").active
    assert p.node_name  # the broker itself boots


def test_bad_plugin_value_from_env():
    loaded = cfg.fill_loaded_plugins(None, ["emqx_management", "emqx_auth_mysql"])
    p = plan(
        {"EMQX_AUTH__MYSQL__SSL": "maybe"}, plugins={"emqx_auth_mysql": MYSQL_CONF}, loaded=loaded
    )
    mysql = next(x for x in p.plugins if x.name == "emqx_auth_mysql")
    assert not mysql.active and "auth.mysql.ssl" in mysql.error


def test_key_of_another_schema_in_plugin_conf_is_unknown():
    loaded = cfg.fill_loaded_plugins(None, ["emqx_management"])
    p = plan(plugins={"emqx_management": "auth.mysql.pool = 8\n"}, loaded=loaded)
    mgmt = next(x for x in p.plugins if x.name == "emqx_management")
    assert not mgmt.active and "unknown variable: auth.mysql.pool" in mgmt.error


def test_good_plugin_conf_active():
    loaded = cfg.fill_loaded_plugins(None, ["emqx_auth_mysql"])
    p = plan(plugins={"emqx_auth_mysql": MYSQL_CONF}, loaded=loaded)
    assert next(x for x in p.plugins if x.name == "emqx_auth_mysql").active


def test_render_terms_carries_plugin_state_and_defaults():
    text = cfg.render_terms(plan(), ROWS)
    assert "{node, 'emqx@127.0.0.1'}." in text
    assert '{plugin, emqx_management, "EMQ X Management API and CLI", true, true, undefined' in text
    # schema default for a key the node reads, filled in
    assert '{"management.listener.http.acceptors", "4"}' in text or "management" in text


# --- the CLI target ---------------------------------------------------------------------


def test_cli_target_prefers_what_the_node_wrote(tmp_path):
    (tmp_path / "data" / "configs").mkdir(parents=True)
    (tmp_path / "data" / "configs" / "vm.double.args").write_text(
        "-name emqx@10.0.0.5\n-setcookie filecookie\n"
    )
    assert cfg.cli_target({}, tmp_path) == ("emqx@10.0.0.5", "filecookie")
    assert cfg.cli_target({"EMQX_NODE_COOKIE": "envcookie"}, tmp_path) == (
        "emqx@10.0.0.5",
        "envcookie",
    )


def test_cli_target_falls_back_to_env(tmp_path):
    name, cookie = cfg.cli_target(
        {"EMQX_NODE_NAME": "emqx@10.9.9.9", "EMQX_NODE_COOKIE": "c"}, tmp_path
    )
    assert (name, cookie) == ("emqx@10.9.9.9", "c")


def test_erl_dist_args_without_epmd():
    args = cfg.erl_dist_args("emqx2@h", {}, {})
    assert args[:4] == ["-start_epmd", "false", "-epmd_module", "emqx_double_epmd"]
    assert "4372" in args
    assert "-start_epmd" not in cfg.erl_dist_args("emqx2@h", {"WITH_EPMD": "1"}, {})


def test_enum_with_schema_comments_accepts_only_its_values():
    datatype = ("{enum, [random, %% randomly pick a subscriber round_robin, %% round robin alive "
                "subscribers one message after another sticky, hash_topic ]}")
    assert cfg.enum_values(datatype) == ["random", "round_robin", "sticky", "hash_topic"]


# --- the version the double reports -------------------------------------------------------


def test_version_comes_from_emqx_double_version():
    assert cfg.double_version({}) == "4.4.4"
    assert cfg.double_version({"EMQX_DOUBLE_VERSION": ""}) == "4.4.4"
    assert cfg.double_version({"EMQX_DOUBLE_VERSION": "4.4.5"}) == "4.4.5"
    with pytest.raises(cfg.ConfigError, match="EMQX_DOUBLE_VERSION"):
        cfg.double_version({"EMQX_DOUBLE_VERSION": "latest"})


def test_banner_says_test_double_and_version():
    assert cfg.BANNER == (
        "emqx-double: THIS IS A TEST DOUBLE of EMQX 4.4.4 for the mqttaction.emqx lab, not EMQX"
    )
    text = cfg.banner("4.4.5")
    assert "TEST DOUBLE of EMQX 4.4.5" in text and text.endswith("not EMQX")


def test_render_terms_carries_the_version():
    assert '{version, "4.4.4"}.' in cfg.render_terms(plan(), ROWS)
    assert '{version, "4.4.5"}.' in cfg.render_terms(plan(), ROWS, "4.4.5")


def test_the_image_dockerfile_sets_the_version():
    assert "ENV EMQX_DOUBLE_VERSION=4.4.4" in (DOUBLE_DIR / "Dockerfile").read_text()


# --- listener acceptors / max_connections ---------------------------------------------------


def terms_conf(text):
    """The {conf, [...]} pairs of render_terms' output, as a dict."""
    line = next(ln for ln in text.splitlines() if ln.startswith("{conf, "))
    return dict(re.findall(r'\{"([^"]+)", "([^"]*)"\}', line))


def test_listener_limits_docker_defaults_win_over_the_file():
    env = cfg.entrypoint_env({"EMQX_NAME": "emqx", "EMQX_HOST": "10.0.0.1"}, "h", "10.0.0.1")
    conf = terms_conf(cfg.render_terms(plan(env), ROWS))
    # The entrypoint's exported defaults (4.4.4 image) ...
    assert conf["listener.tcp.external.acceptors"] == "64"
    assert conf["listener.tcp.external.max_connections"] == "1024000"
    assert conf["listener.ssl.external.acceptors"] == "32"
    assert conf["listener.ws.external.acceptors"] == "16"
    assert conf["listener.wss.external.max_connections"] == "102400"
    # ... and 4.4.4's emqx.conf values for the internal listener.
    assert conf["listener.tcp.internal.acceptors"] == "4"
    assert conf["listener.tcp.internal.max_connections"] == "1024000"


def test_listener_limits_schema_defaults_and_env():
    text = "listener.tcp.external = 0.0.0.0:1883\nlistener.tcp.external.zone = external\n"
    conf = terms_conf(cfg.render_terms(plan({}, conf=text), ROWS))
    assert conf["listener.tcp.external.acceptors"] == "8"
    assert conf["listener.tcp.external.max_connections"] == "1024"
    env = {"EMQX_LISTENER__TCP__EXTERNAL__MAX_CONNECTIONS": "5",
           "EMQX_LISTENER__TCP__EXTERNAL__ACCEPTORS": "2"}
    conf = terms_conf(cfg.render_terms(plan(env, conf=text), ROWS))
    assert (conf["listener.tcp.external.max_connections"],
            conf["listener.tcp.external.acceptors"]) == ("5", "2")
    assert not any(k.startswith("listener.ssl.") for k in conf), "no limits for unset listeners"


# --- net_ticktime ------------------------------------------------------------------------------


def test_dist_net_ticktime_reaches_the_node_and_the_cli(tmp_path):
    p = plan({"EMQX_NODE__DIST_NET_TICKTIME": "10"})
    args = cfg.erl_node_args(p, {}, tmp_path, tmp_path)
    i = args.index("net_ticktime")
    assert args[i - 1:i + 2] == ["-kernel", "net_ticktime", "10"]
    default = cfg.erl_node_args(plan(), {}, tmp_path, tmp_path)
    assert default[default.index("net_ticktime") + 1] == "120"

    (tmp_path / "data" / "configs").mkdir(parents=True)
    (tmp_path / "data" / "configs" / "vm.double.args").write_text(
        "-name emqx@10.0.0.5\n-setcookie c\n-kernel net_ticktime 10\n"
    )
    assert cfg.cli_ticktime(tmp_path) == "10"
    assert cfg.cli_target({}, tmp_path) == ("emqx@10.0.0.5", "c")
    assert cfg.cli_ticktime(tmp_path / "nowhere") is None


def test_autoheal_reaches_the_node():
    conf = terms_conf(cfg.render_terms(plan(), ROWS))
    assert conf["cluster.autoheal"] == "on"
    conf = terms_conf(cfg.render_terms(plan({"EMQX_CLUSTER__AUTOHEAL": "off"}), ROWS))
    assert conf["cluster.autoheal"] == "off"
