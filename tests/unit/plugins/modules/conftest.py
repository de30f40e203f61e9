"""Running the modules in-process against the fake docker and a local API server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ansible.module_utils import _internal
from ansible.module_utils.testing import patch_module_args

FAKE_DOCKER = Path(__file__).with_name("fake_docker.py")


class Docker:
    """The fake docker's state file and the wrapper script to give as docker_cli."""

    def __init__(self, directory):
        self.state_file = directory / "docker-state.json"
        self.cli = directory / "docker"
        self.cli.write_text('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, FAKE_DOCKER))
        self.cli.chmod(0o755)

    def set(self, containers, **extra):
        state = {"containers": containers}
        state.update(extra)
        self.state_file.write_text(json.dumps(state))

    def state(self):
        return json.loads(self.state_file.read_text())

    def commands(self):
        return [" ".join(call[3:]) for call in self.state().get("calls", [])]


@pytest.fixture
def docker(tmp_path, monkeypatch):
    fake = Docker(tmp_path)
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(fake.state_file))
    return fake


@pytest.fixture
def run_module(capsys, monkeypatch):
    """run_module(main, args, check_mode=False, diff=False) -> (failed, result)."""
    # Other tests load controller code into this process; warnings must still go to the result.
    monkeypatch.setattr(_internal, "is_controller", False)

    def run(main, args, check_mode=False, diff=False):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as info:
                main()
        result = json.loads(capsys.readouterr().out)
        assert bool(info.value.code) == bool(result.get("failed")), result
        return bool(result.get("failed")), result

    return run
