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
    trixie = labctl.sources_file({"archive": "http://a/debian", "security": "http://a/sec"}, "trixie")
    assert "Suites: trixie trixie-updates" in trixie and "Suites: trixie-security" in trixie


def test_lab_hosts_run_debian_12_and_13():
    hosts = {tag: parent for name, tag, parent in labctl.IMAGES if name == "host"}
    assert hosts == {"mqttaction-lab/host:bookworm": "mqttaction-lab/base:bookworm",
                     "mqttaction-lab/host:trixie": "mqttaction-lab/base:trixie"}


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
    built = {labctl.base_image(suite) for suite in labctl.HOST_SUITES}
    for name, tag, parent in labctl.IMAGES:
        assert (labctl.IMAGES_DIR / name / "Dockerfile").is_file(), name
        assert tag.startswith("mqttaction-lab/")
        assert parent in built, f"{tag} is built before its parent {parent}"
        built.add(tag)


def fake_release(shared, version, content=b"release"):
    folder = shared / "emqx" / version
    folder.mkdir(parents=True)
    (folder / f"emqx-{version}-otp25-debian12-amd64.tar.gz").write_bytes(content)
    (folder / "docker-entrypoint.sh").write_text("#!/bin/sh\nexec \"$@\"\n")
    return folder


def test_the_broker_is_named_for_what_it_is():
    assert "emqx/emqx" not in labctl.EMQX_BUILT and "built-from-source" in labctl.EMQX_BUILT
    assert labctl.emqx_what("4.4.4") == "EMQX 4.4.4 built from source"
    assert [f"{labctl.EMQX_BUILT}:{v}" for v in ("4.4.4", "4.4.5")] == [
        tag for tag in labctl.PUSHED if "emqx" in tag]
    assert labctl.ARCHIVED == {f"{labctl.EMQX_BUILT}:4.4.4": "emqx-4.4.4.tar"}


def test_a_missing_release_says_where_the_lab_looks(tmp_path, monkeypatch):
    monkeypatch.setattr(labctl, "SHARED_DIR", tmp_path)
    with pytest.raises(labctl.LabError, match=r"no EMQX 4\.4\.4 release in .*MQTTACTION_LAB_EMQX_IMAGE"):
        labctl.emqx_release("4.4.4")
    fake_release(tmp_path, "4.4.4")
    tarball, entrypoint = labctl.emqx_release("4.4.4")
    assert tarball.name == "emqx-4.4.4-otp25-debian12-amd64.tar.gz" and entrypoint.name == "docker-entrypoint.sh"


def test_images_rebuild_only_when_their_inputs_change(monkeypatch, tmp_path):
    """build_images keys every image on its inputs: the context, the parent, the release."""
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
            context = Path(args[-1])
            builds.append((tag, sorted(p.name for p in context.iterdir())))
        return ""

    monkeypatch.setattr(labctl, "docker", fake_docker)
    monkeypatch.setattr(labctl, "debian_mirrors", lambda: {"archive": "http://a/debian"})
    monkeypatch.setattr(labctl, "build_base", lambda _m, suite: "base1")
    monkeypatch.setattr(labctl, "SHARED_DIR", tmp_path)
    monkeypatch.setattr(labctl, "EMQX_PULLED", "")
    releases = {v: fake_release(tmp_path, v, v.encode()) for v in labctl.EMQX_VERSIONS}
    labctl.build_images()
    built = dict(builds)
    for version in labctl.EMQX_VERSIONS:
        # The release is built from a context put together outside the repository.
        assert built[f"{labctl.EMQX_BUILT}:{version}"] == ["Dockerfile", "docker-entrypoint.sh", "emqx.tar.gz"]
    assert sorted(p.name for p in (labctl.IMAGES_DIR / "emqx").iterdir()) == ["Dockerfile"]

    builds.clear()
    labctl.build_images()
    assert builds == [], "nothing changed, nothing rebuilt"

    # A new 4.4.5 release rebuilds that image only.
    (releases["4.4.5"] / "emqx-4.4.5-otp25-debian12-amd64.tar.gz").write_bytes(b"rebuilt")
    labctl.build_images()
    assert [tag for tag, _files in builds] == [f"{labctl.EMQX_BUILT}:4.4.5"]

    # A new base rebuilds everything built on it.
    builds.clear()
    monkeypatch.setattr(labctl, "build_base", lambda _m, suite: "base2")
    labctl.build_images()
    assert {tag for tag, _files in builds} == {tag for _n, tag, _p in labctl.IMAGES} | {
        f"{labctl.EMQX_BUILT}:{v}" for v in labctl.EMQX_VERSIONS}


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
