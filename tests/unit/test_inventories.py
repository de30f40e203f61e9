"""The shipped inventories parse, decrypt and pass site.yml's syntax check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the ansible commands of the interpreter running the tests
EXAMPLE_VAULT_PASSWORD = "example-vault-password-change-me"  # documented in the README


def run(*args, tmp_path=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".lab" / "collections"))
    password = tmp_path / "vault-password"
    password.write_text(EXAMPLE_VAULT_PASSWORD + "\n")
    return subprocess.run([str(BIN / args[0]), *args[1:], "--vault-password-file", str(password)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True).stdout


def test_example_inventory_decrypts_its_secrets(tmp_path):
    host = json.loads(run("ansible-inventory", "-i", "inventories/example", "--host", "emqx-a", tmp_path=tmp_path))
    assert host["vault_emqx_cookie"] and host["vault_emqx_cookie"] != "emqxsecretcookie"
    groups = json.loads(run("ansible-inventory", "-i", "inventories/example", "--list", tmp_path=tmp_path))
    assert groups["emqx"]["hosts"] == ["emqx-a", "emqx-b", "emqx-c"]
    assert groups["emqx_lb"]["hosts"] == ["mqtt-lb"]
    assert groups["emqx_auth_db"]["hosts"] == ["mqtt-db"]
    db = json.loads(run("ansible-inventory", "-i", "inventories/example", "--host", "mqtt-db", tmp_path=tmp_path))
    assert db["vault_emqx_auth_mysql_password"] and db["emqx_auth_mysql_enabled"] is True


def test_local_inventory_is_one_host_in_both_groups(tmp_path):
    groups = json.loads(run("ansible-inventory", "-i", "inventories/local", "--list", tmp_path=tmp_path))
    assert groups["emqx"]["hosts"] == ["emqx-local"] and groups["emqx_lb"]["hosts"] == ["emqx-local"]
    host = groups["_meta"]["hostvars"]["emqx-local"]
    assert host["emqx_instances_per_host"] == 3


def test_site_playbook_syntax(tmp_path):
    for inventory in ("inventories/example", "inventories/local"):
        run("ansible-playbook", "-i", inventory, "--syntax-check", "site.yml", tmp_path=tmp_path)
