"""Checking settings the way EMQX 4.4.4's schema would, before they reach a node."""

from __future__ import annotations

import pytest
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_conf import FilterModule
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_config as conf
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_conf_shipped import SHIPPED


def test_the_shipped_settings_are_all_valid():
    assert conf.errors(SHIPPED) == []


@pytest.mark.parametrize(
    ("key", "app", "datatype"),
    [
        ("cluster.static.seeds", "emqx", "string"),
        ("listener.tcp.external", "emqx", "[integer, ip]"),
        ("listener.tcp.my_listener.acceptors", "emqx", "integer"),
        ("zone.external.force_gc_policy", "emqx", "string"),
        ("auth.mysql.password_hash", "emqx_auth_mysql", "string"),
        ("telemetry.enabled", "emqx_telemetry", "{enum, [true, false]}"),
        ("telemetry.enabled", "emqx", "{enum, [true, false]}"),
    ],
)
def test_lookup_known_keys(key, app, datatype):
    assert conf.lookup(key, app) == datatype


@pytest.mark.parametrize(
    ("key", "app"),
    [("bogus.key", "emqx"), ("cluster.static.seed", "emqx"), ("auth.mysql.server", "emqx"),
     ("cluster.discovery", "emqx_auth_mysql"), ("listener.tcp.external.acceptors.x", "emqx")],
)
def test_lookup_unknown_keys(key, app):
    assert conf.lookup(key, app) is None


@pytest.mark.parametrize(
    ("value", "datatype", "fits"),
    [
        ("8", "integer", True), ("many", "integer", False), ("-1", "integer", True),
        ("on", "flag", True), ("off", "flag", True), ("true", "flag", False), ("yes", "flag", False),
        ("true", "{enum, [true, false]}", True), ("on", "{enum, [true, false]}", False),
        ("file", "{enum, [off, file, console, both]}", True),
        ("everywhere", "{enum, [off, file, console, both]}", False),
        ("5s", "{duration, ms}", True), ("0s", "{duration, ms}", True), ("1h30m", "{duration, s}", True),
        ("5 s", "{duration, ms}", False), ("five", "{duration, ms}", False),
        ("64KB", "bytesize", True), ("1MB", "bytesize", True), ("1 MB", "bytesize", False),
        ("80%", "{percent, float}", True), ("0.8", "{percent, float}", False),
        ("0.0.0.0:1883", "[integer, ip]", True), ("1883", "[integer, ip]", True),
        ("[::]:1883", "[integer, ip]", True), ("localhost:1883", "[integer, ip]", False),
        ("localhost:1883", "[integer, ip, string]", True),
        ("anything at all", "string", True),
        ("infinity", "[{duration, ms}, atom]", True), ("5s", "[{duration, ms}, atom]", True),
    ],
)
def test_value_fits(value, datatype, fits):
    assert conf.value_fits(value, datatype) is fits


def test_errors_name_the_key_the_value_and_the_file():
    found = conf.errors({"bogus.key": 1, "log.to": "everywhere", "node.process_limit": "lots",
                         "allow_anonymous": False, "cluster.autoheal": True})
    assert found == [
        "emqx.conf: EMQX 4.4.4 does not accept the key 'bogus.key'",
        "emqx.conf: log.to = 'everywhere' is not a valid {enum, [file, console, both]}",
        "emqx.conf: node.process_limit = 'lots' is not a valid integer",
    ]


def test_plugin_settings_are_checked_against_the_plugin_schema():
    found = conf.errors({"auth.mysql.pool": "many", "auth.mysql.server": "db:3306"}, "emqx_auth_mysql",
                        "plugins/emqx_auth_mysql.conf")
    assert found == ["plugins/emqx_auth_mysql.conf: auth.mysql.pool = 'many' is not a valid integer"]


def test_multi_line_values_are_refused():
    assert conf.errors({"cluster.name": "a\nb"}) == ["emqx.conf: cluster.name must be one line"]


def test_booleans_render_per_datatype():
    rendered = FilterModule().filters()["emqx_conf"](
        {"cluster.autoheal": True, "allow_anonymous": False, "log.level": "warning"})
    assert rendered == ["allow_anonymous = false", "cluster.autoheal = on", "log.level = warning"]


def test_filter_names_plugin_file():
    errors = FilterModule().filters()["emqx_conf_errors"]
    assert errors({"retainer.storage_type": "cloud"}, app="emqx_retainer") == [
        "plugins/emqx_retainer.conf: retainer.storage_type = 'cloud' is not a valid {enum, [ram, disc, disc_only]}"
    ]


def test_enums_with_schema_comments_keep_their_values():
    datatype = conf.lookup("broker.shared_subscription_strategy")
    for value in ("random", "round_robin", "sticky", "hash", "local", "hash_clientid", "hash_topic"):
        assert conf.value_fits(value, datatype), value
    assert not conf.value_fits("randomly", datatype)
