"""The key table the preflight checks settings against is generated from the broker's own schemas."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MQTTACTION_LAB_SHARED", ROOT.parent / "shared"))
spec = importlib.util.spec_from_file_location("config_keys", ROOT / "tools" / "config_keys.py")
config_keys = importlib.util.module_from_spec(spec)
sys.modules["config_keys"] = config_keys
spec.loader.exec_module(config_keys)

SCHEMA = '''
%% A comment with {mapping, "not.a.key", "x", []}.
{mapping, "log.to", "kernel.logger", [
  {default, console},
  {datatype, {enum, [file, console, both]}}
]}.
{mapping, "listener.tcp.$name", "emqx.listeners", [
  {datatype, [integer, ip]}
]}.
{mapping, "auth.user.$id.password", "emqx_auth_mnesia.userlist", [
  hidden
]}.
{mapping, "broker.perf.route_lock_type", "emqx.route_lock_type", [
  {datatype, {enum, [key, % by key
                     tab, global]}}
]}.
{mapping, "node.name", "vm_args.-name", [{default, "x%y"}, {datatype, string}]}.
'''


def test_mappings_read_keys_and_datatypes_as_cuttlefish_does():
    assert config_keys.mappings(SCHEMA) == [
        ("log.to", "{enum, [file, console, both]}"),
        ("listener.tcp.$name", "[integer, ip]"),
        ("auth.user.$id.password", "string"),  # no datatype: cuttlefish reads a string
        ("broker.perf.route_lock_type", "{enum, [key, tab, global]}"),
        ("node.name", "string"),
    ]


def test_the_shipped_table_is_what_the_release_schemas_give():
    """plugins/module_utils/emqx_config_keys.py == tools/config_keys.py run on EMQX 4.4.4's release."""
    releases = sorted((SHARED / "emqx" / "4.4.4").glob("emqx-4.4.4-*.tar.gz"))
    assert len(releases) == 1, "the EMQX 4.4.4 release is expected in %s (MQTTACTION_LAB_SHARED)" % SHARED
    shipped = ROOT / "plugins" / "module_utils" / "emqx_config_keys.py"
    assert config_keys.main([str(releases[0]), "--check", str(shipped)]) == 0
