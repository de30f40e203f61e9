"""Unit tests for the lab tool: mirror discovery, image cache keys, engine start."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

LABCTL = Path(__file__).resolve().parents[1] / "lab" / "labctl.py"
spec = importlib.util.spec_from_file_location("labctl", LABCTL)
labctl = importlib.util.module_from_spec(spec)
sys.modules["labctl"] = labctl
spec.loader.exec_module(labctl)

DEB822 = """Types: deb
# a comment: the snapshot this mirror was taken from
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://source.example/debian
Suites: bookworm
"""


def write_sources(tmp_path: Path, deb822: str | None = None, legacy: str | None = None) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    if deb822 is not None:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    if legacy is not None:
        (tmp_path / "sources.list").write_text(legacy)
    return tmp_path


def test_mirrors_from_deb822_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("MQTTACTION_LAB_DEBIAN_MIRROR", raising=False)
    mirrors = labctl.debian_mirrors(write_sources(tmp_path, deb822=DEB822))
    assert mirrors == {
        "archive": "http://mirror.example/debian",
        "security": "http://mirror.example/debian-security",
    }


def test_mirrors_from_legacy_sources_list(tmp_path, monkeypatch):
    monkeypatch.delenv("MQTTACTION_LAB_DEBIAN_MIRROR", raising=False)
    legacy = (
        "# comment\n"
        "deb [arch=amd64] http://old.example/debian bookworm main\n"
        "deb http://old.example/debian-security bookworm-security main\n"
        "deb http://other.example/debian bullseye main\n"
    )
    mirrors = labctl.debian_mirrors(write_sources(tmp_path, legacy=legacy))
    assert mirrors == {
        "archive": "http://old.example/debian",
        "security": "http://old.example/debian-security",
    }


def test_mirror_override_and_missing_mirror(tmp_path, monkeypatch):
    sources = write_sources(tmp_path)
    monkeypatch.delenv("MQTTACTION_LAB_DEBIAN_MIRROR", raising=False)
    with pytest.raises(labctl.LabError, match="MQTTACTION_LAB_DEBIAN_MIRROR"):
        labctl.debian_mirrors(sources)
    monkeypatch.setenv("MQTTACTION_LAB_DEBIAN_MIRROR", "http://local.example/debian")
    assert labctl.debian_mirrors(sources) == {"archive": "http://local.example/debian"}


def test_sources_file_lists_updates_and_security():
    text = labctl.sources_file({"archive": "http://a/debian", "security": "http://a/sec"})
    assert "Suites: bookworm bookworm-updates" in text
    assert "URIs: http://a/sec\nSuites: bookworm-security" in text
    assert "security" not in labctl.sources_file({"archive": "http://a/debian"})


def test_context_digest_follows_content_names_and_modes(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "conf").write_text("a = 1\n")
    first = labctl.context_digest(tmp_path, extra="parent|1")
    assert first == labctl.context_digest(tmp_path, extra="parent|1")
    assert first != labctl.context_digest(tmp_path, extra="parent|2"), "a new parent rebuilds"

    (tmp_path / "rootfs" / "conf").write_text("a = 2\n")
    changed = labctl.context_digest(tmp_path, extra="parent|1")
    assert changed != first

    (tmp_path / "rootfs" / "conf").chmod(0o600)
    assert labctl.context_digest(tmp_path, extra="parent|1") != changed

    (tmp_path / "rootfs" / "conf").rename(tmp_path / "rootfs" / "conf2")
    assert labctl.context_digest(tmp_path, extra="parent|1") not in (first, changed)


def test_real_image_contexts_have_a_dockerfile():
    built = {labctl.BASE_IMAGE}
    for name, tag, parent in labctl.IMAGES:
        assert (labctl.IMAGES_DIR / name / "Dockerfile").is_file(), name
        assert tag.startswith("mqttaction-lab/")
        assert parent in built, f"{tag} is built before its parent {parent}"
        built.add(tag)


def test_next_double_stands_in_for_445_on_top_of_the_444_double():
    images = {tag: (name, parent) for name, tag, parent in labctl.IMAGES}
    name, parent = images["mqttaction-lab/emqx-double:4.4.5"]
    assert parent == "mqttaction-lab/emqx-double:4.4.4"
    assert labctl.PUSHED["mqttaction-lab/emqx-double:4.4.5"] == "emqx-double:4.4.5"
    assert labctl.PUSHED["mqttaction-lab/emqx-double:4.4.4"] == "emqx-double:4.4.4"
    dockerfile = (labctl.IMAGES_DIR / name / "Dockerfile").read_text()
    assert "ENV EMQX_DOUBLE_VERSION=4.4.5" in dockerfile
    assert "ARG BASE=mqttaction-lab/emqx-double:4.4.4" in dockerfile
    assert "not EMQX" in dockerfile, "the image must say it is a test double"
    parent_dockerfile = (labctl.IMAGES_DIR / "emqx-double" / "Dockerfile").read_text()
    assert "ENV EMQX_DOUBLE_VERSION=4.4.4" in parent_dockerfile


def test_child_image_rebuilds_when_its_parent_changes(monkeypatch):
    """build_images keys a child on its parent's input label."""
    labels = {labctl.BASE_IMAGE: "base1"}
    builds = []

    def fake_docker(*args, **_kw):
        if args[:2] == ("image", "inspect"):
            tag = args[-1]
            return json.dumps({labctl.LABEL + ".input": labels[tag]}) if tag in labels else ""
        if args[0] == "build":
            tag = args[args.index("-t") + 1]
            want = [a for a in args if a.startswith(labctl.LABEL + ".input=")][0].split("=", 1)[1]
            labels[tag] = want
            builds.append((tag, args[args.index("--build-arg") + 1]))
        return ""

    monkeypatch.setattr(labctl, "docker", fake_docker)
    monkeypatch.setattr(labctl, "debian_mirrors", lambda: {"archive": "http://a/debian"})
    monkeypatch.setattr(labctl, "build_base", lambda _m: "base1")
    labctl.build_images()
    tags = [build[0] for build in builds]
    assert tags.index("mqttaction-lab/emqx-double:4.4.4") < tags.index("mqttaction-lab/emqx-double:4.4.5")
    assert ("mqttaction-lab/emqx-double:4.4.5", "BASE=mqttaction-lab/emqx-double:4.4.4") in builds

    builds.clear()
    labctl.build_images()
    assert builds == [], "nothing changed, nothing rebuilt"

    # A change in the double's context rebuilds it, and then its child.
    real_digest = labctl.context_digest
    monkeypatch.setattr(
        labctl, "context_digest",
        lambda ctx, extra="": real_digest(ctx, extra + ("|edited" if ctx.name == "emqx-double" else "")),
    )
    labctl.build_images()
    assert [build[0] for build in builds] == ["mqttaction-lab/emqx-double:4.4.4", "mqttaction-lab/emqx-double:4.4.5"]


def test_network_addresses_come_from_the_subnet():
    assert labctl.network_address(2) == labctl.REGISTRY_ADDRESS
    assert labctl.network_address(11).rsplit(".", 1)[1] == "11"


def test_running_engine_is_left_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(labctl, "docker_answers", lambda: True)
    monkeypatch.setattr(labctl, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **kw: calls.append(a))
    labctl.ensure_docker()
    assert not calls, "a Docker engine that answers must not be installed over or restarted"


def test_engine_started_when_not_answering(monkeypatch, tmp_path):
    answers = iter([False, False, True])
    started = []
    monkeypatch.setattr(labctl, "docker_answers", lambda: next(answers))
    monkeypatch.setattr(labctl.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(labctl, "DOCKERD_LOG", tmp_path / "dockerd.log")
    monkeypatch.setattr(labctl.subprocess, "Popen", lambda cmd, **kw: started.append(cmd))
    monkeypatch.setattr(labctl.time, "sleep", lambda _s: None)
    monkeypatch.setattr(labctl, "Path", lambda p: tmp_path / "no-systemd" if p == "/run/systemd/system" else Path(p))
    labctl.ensure_docker(timeout=5)
    assert started == [["dockerd"]]


def test_engine_started_as_service_under_systemd(monkeypatch, tmp_path):
    answers = iter([False, True])
    calls = []
    monkeypatch.setattr(labctl, "docker_answers", lambda: next(answers))
    monkeypatch.setattr(labctl.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(labctl, "Path", lambda p: tmp_path if p == "/run/systemd/system" else Path(p))
    monkeypatch.setattr(labctl, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(labctl.subprocess, "Popen", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(labctl.time, "sleep", lambda _s: None)
    labctl.ensure_docker(timeout=5)
    assert calls == [["systemctl", "start", "docker.service"]]


def test_teardown_fails_when_something_is_left(monkeypatch):
    listed = {("ps", "-a"): "abc123", ("network", "ls"): "", ("volume", "ls"): "vol1"}

    def fake_docker(*args, **_kw):
        if args[0] in ("rm", "volume") and args[1] in ("-f", "rm"):
            return ""
        return listed.get(tuple(args[:2]), "") if "label=owner=molecule" not in args else ""

    monkeypatch.setattr(labctl, "docker_answers", lambda: True)
    monkeypatch.setattr(labctl, "docker", fake_docker)
    with pytest.raises(labctl.LabError, match="container abc123.*volume vol1"):
        labctl.down()


def test_engine_that_never_answers_fails_with_its_log(monkeypatch, tmp_path):
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(labctl, "docker_answers", lambda: False)
    monkeypatch.setattr(labctl.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(labctl, "DOCKERD_LOG", tmp_path / "dockerd.log")
    monkeypatch.setattr(labctl.subprocess, "Popen", lambda cmd, **kw: None)
    monkeypatch.setattr(labctl.time, "sleep", lambda _s: None)
    monkeypatch.setattr(labctl.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(labctl, "Path", lambda p: tmp_path / "no-systemd" if p == "/run/systemd/system" else Path(p))
    with pytest.raises(labctl.LabError, match="dockerd.log"):
        labctl.ensure_docker(timeout=30)
