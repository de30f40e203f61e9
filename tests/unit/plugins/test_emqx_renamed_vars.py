"""An old variable name still set in the inventory gets a deprecation warning naming the new one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - mqttaction.emqx.emqx_renamed_vars:
        renamed: {emqx_lb_cluster_group: emqx_cluster_group, emqx_bench_lb_group: emqx_lb_group}
      register: found
    - ansible.builtin.copy: {content: "{{ found.renamed | to_json }}", dest: "{{ out }}"}
"""


def run(tmp_path, *extra):
    (tmp_path / "play.yml").write_text(PLAY)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".lab" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="1", ANSIBLE_LOCALHOST_WARNING="0")
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                           "-e", "out=%s" % (tmp_path / "out.json"), "-e", "ansible_python_interpreter=%s" % sys.executable, *extra],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr, (tmp_path / "out.json").read_text()


def test_an_old_name_set_is_named_with_its_replacement(tmp_path):
    output, found = run(tmp_path, "-e", "emqx_lb_cluster_group=brokers")
    assert found == '{"emqx_lb_cluster_group": "emqx_cluster_group"}'
    assert "DEPRECATION WARNING" in output
    assert "emqx_lb_cluster_group is renamed emqx_cluster_group" in output
    assert "emqx_bench_lb_group" not in output.replace("emqx_bench_lb_group: emqx_lb_group", "")


def test_no_old_name_no_warning(tmp_path):
    output, found = run(tmp_path)
    assert found == "{}"
    assert "DEPRECATION WARNING" not in output
