"""Upgrading the collection restarts no node whose settings did not change.

Each node's container carries a digest of everything it reads at boot; a
running node restarts when the digest the role works out differs. For the
inventories in tests/plan, the role must work out exactly the digests release
0.2.0 did (tests/plan/reference-0.2.0.json, made by capture_0.2.0.yml against
a checkout of 0.2.0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "tests" / "plan"
REFERENCE = json.loads((PLAN / "reference-0.2.0.json").read_text())
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("inventory", sorted(REFERENCE))
def test_digests_equal_those_of_release_0_2_0(inventory, tmp_path):
    out = tmp_path / "digests.json"
    # The collection itself, then the ones it declares as make dist installs them
    # (a venv with ansible-core alone, as the matrix legs', has no community.docker).
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH="%s:%s" % (ROOT / ".lab" / "collections", ROOT / ".lab" / "dist" / "installed"),
               ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(BIN / "ansible-playbook"), "--check", "-i", str(PLAN / "inventories" / (inventory + ".yml")),
                          str(PLAN / "capture.yml"), "-e", "plan_out=%s" % out],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert json.loads(out.read_text()) == REFERENCE[inventory]
