"""Bring the mqttaction.emqx test lab up and down on one Debian 12 machine.

The lab is built offline from Debian packages (no container registry is
reachable): a debootstrap base image, a "host" image that stands in for a VM
(systemd, sshd, sudo, nftables, Debian's docker.io), a lab registry the hosts
pull from, a tiny probe image, and the broker: EMQX 4.4.4 and 4.4.5 built from
their sources (../shared/emqx/), laid out as the official image.  Images are
cached and rebuilt only when their inputs change; teardown leaves nothing but
those images.

Usage: labctl.py {docker,images,up,down,status,what}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMAGES_DIR = HERE / "images"
STATE_DIR = Path(os.environ.get("MQTTACTION_LAB_STATE", REPO / ".lab"))

LABEL = "org.mqttaction.lab"
NETWORK = os.environ.get("MQTTACTION_LAB_NETWORK", "mqttaction-lab")
SUBNET = os.environ.get("MQTTACTION_LAB_SUBNET", "172.28.42.0/24")
REGISTRY_NAME = "mqttaction-lab-registry"
# Published on loopback only: the outer engine treats 127.0.0.0/8 as an
# insecure registry, so pushing needs no change to a Docker engine we may
# not own.
REGISTRY_PUSH_PORT = int(os.environ.get("MQTTACTION_LAB_REGISTRY_PORT", "55000"))
# The machine's own suite (its apt mirror is read from /etc/apt), and every
# suite lab hosts run: Debian 12 and Debian 13, as users' hosts do.
SUITE = "bookworm"
HOST_SUITES = ("bookworm", "trixie")
DOCKERD_LOG = Path("/var/log/mqttaction-lab-dockerd.log")


def base_image(suite: str = SUITE) -> str:
    return f"mqttaction-lab/base:{suite}"


# Every image: its tag, build context under images/, and the image it builds on.
BASE_IMAGE = base_image()
IMAGES = [("host", f"mqttaction-lab/host:{suite}", base_image(suite)) for suite in HOST_SUITES] + [
    ("registry", "mqttaction-lab/registry:2", BASE_IMAGE),
    ("probe", "mqttaction-lab/probe:1", BASE_IMAGE),
    # Debian 13's Python 3.13 with ansible-core 2.20 and 2.21: the matrix's controller.
    ("controller", "mqttaction-lab/controller:trixie", base_image("trixie")),
]

# The broker: EMQX built from its public sources, as release tarballs beside
# the project (../shared/emqx/<version>/), never copied into the repository.
# The first version is the one the scenarios deploy; the second is "the next
# 4.4.x release" of the rolling upgrade test.
SHARED_DIR = Path(os.environ.get("MQTTACTION_LAB_SHARED", REPO.parent / "shared"))
EMQX_VERSIONS = ("4.4.4", "4.4.5")
EMQX_BUILT = "mqttaction-lab/emqx-built-from-source"
# A machine that can pull the official image may test against it instead:
# MQTTACTION_LAB_EMQX_IMAGE=emqx/emqx (a Docker Hub repository with both tags).
EMQX_PULLED = os.environ.get("MQTTACTION_LAB_EMQX_IMAGE", "")
EMQX_REPOSITORY = EMQX_PULLED or EMQX_BUILT


def emqx_what(version: str = EMQX_VERSIONS[0]) -> str:
    """What the lab's broker is, in the words the scenarios and the demo print."""
    if EMQX_PULLED:
        return f"EMQX {version} ({EMQX_PULLED}:{version}, pulled)"
    return f"EMQX {version} built from source"


# Images also saved as `docker save` archives in the lab state directory at
# `up`, for the air-gapped path (emqx_image_source: archive).
ARCHIVED = {f"{EMQX_REPOSITORY}:{EMQX_VERSIONS[0]}": f"emqx-{EMQX_VERSIONS[0]}.tar"}
# Images pushed into the lab registry at `up`, under these repository names.
PUSHED = {"mqttaction-lab/probe:1": "lab/probe:1"}
PUSHED.update({f"{EMQX_REPOSITORY}:{v}": f"{EMQX_REPOSITORY}:{v}" for v in EMQX_VERSIONS})


class LabError(RuntimeError):
    """A lab step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


def run(cmd, *, check=True, capture=False, input_bytes=None, env=None):
    """Run a command; on failure raise LabError with its output."""
    proc = subprocess.run(
        cmd,
        input=input_bytes,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = ""
        if capture:
            detail = (proc.stderr or b"").decode(errors="replace").strip()[-2000:]
        raise LabError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {detail}")
    return proc


def docker(*args, check=True, capture=True, input_bytes=None):
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    proc = run(["docker", *args], check=check, capture=capture, input_bytes=input_bytes, env=env)
    return proc.stdout.decode().strip() if capture and proc.stdout is not None else ""


# ---------------------------------------------------------------- docker engine


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return run(["docker", "info"], check=False, capture=True).returncode == 0


def ensure_docker(timeout: float = 90.0) -> None:
    """Start a Docker engine unless one already answers; never touch a running one."""
    if docker_answers():
        log("docker engine already answers; leaving it as it is")
        return
    if shutil.which("dockerd") is None:
        log("installing Debian's docker.io (no dockerd on this machine)")
        apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=apt_env)
        run(["apt-get", "install", "-y", "-qq", "docker.io"], env=apt_env)
    if Path("/run/systemd/system").is_dir():
        # A machine booted with systemd runs the engine as the package's service.
        log("starting docker.service")
        run(["systemctl", "start", "docker.service"])
    else:
        log(f"starting dockerd (log: {DOCKERD_LOG})")
        with open(DOCKERD_LOG, "ab") as out:
            subprocess.Popen(  # pylint: disable=consider-using-with
                ["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_answers():
            log("docker engine is up")
            return
        time.sleep(1)
    raise LabError(f"dockerd did not answer within {timeout:.0f} s; see {DOCKERD_LOG}")


# ---------------------------------------------------------------- images


def debian_mirrors(sources_dir: Path = Path("/etc/apt")) -> dict:
    """The Debian archive and security URIs this machine's apt already uses."""
    mirrors = {}
    override = os.environ.get("MQTTACTION_LAB_DEBIAN_MIRROR")
    texts = []
    for path in sorted(sources_dir.glob("sources.list.d/*.sources")):
        texts.append(path.read_text())
    for stanza in "\n\n".join(texts).split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.lstrip().startswith("#"):
                key, _sep, value = line.partition(":")
                fields[key.strip()] = value.strip()
        uri = fields.get("URIs", "").split(" ")[0]
        suites = fields.get("Suites", "").split()
        if not uri or "deb" not in fields.get("Types", "").split():
            continue
        if f"{SUITE}-security" in suites:
            mirrors.setdefault("security", uri)
        elif SUITE in suites:
            mirrors.setdefault("archive", uri)
    legacy = sources_dir / "sources.list"
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                uri = parts[2] if parts[1].startswith("[") else parts[1]
                suite = parts[3] if parts[1].startswith("[") else parts[2]
                key = "security" if suite == f"{SUITE}-security" else "archive" if suite == SUITE else None
                if key:
                    mirrors.setdefault(key, uri)
    if override:
        mirrors["archive"] = override
    if "archive" not in mirrors:
        raise LabError("no Debian mirror found in /etc/apt; set MQTTACTION_LAB_DEBIAN_MIRROR")
    return mirrors


def sources_file(mirrors: dict, suite: str = SUITE) -> str:
    """apt sources of one suite, from the mirrors this machine uses for its own."""
    text = (
        f"Types: deb\nURIs: {mirrors['archive']}\nSuites: {suite} {suite}-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    if "security" in mirrors:
        text += (
            f"\nTypes: deb\nURIs: {mirrors['security']}\nSuites: {suite}-security\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return text


def context_digest(context: Path, extra: str = "") -> str:
    """A digest of every file in a build context (names, modes and bytes) plus extra."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def image_input(tag: str) -> str | None:
    """The input digest an image was built from, or None when it is absent."""
    out = docker("image", "inspect", "--format", "{{json .Config.Labels}}", tag, check=False)
    if not out or out == "null":
        return None
    try:
        labels = json.loads(out) or {}
    except json.JSONDecodeError:
        return None
    return labels.get(f"{LABEL}.input")


def build_base(mirrors: dict, suite: str = SUITE) -> str:
    """Debian minbase of one suite from debootstrap, imported as an image; cached by its inputs."""
    image = base_image(suite)
    sources = sources_file(mirrors, suite)
    want = hashlib.sha256(f"minbase|{suite}|{sources}|v1".encode()).hexdigest()[:16]
    if image_input(image) == want:
        log(f"{image}: cached")
        return want
    if shutil.which("debootstrap") is None:
        log("installing debootstrap")
        apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=apt_env)
        run(["apt-get", "install", "-y", "-qq", "debootstrap"], env=apt_env)
    log(f"{image}: debootstrap {suite} (about 30 s)")
    with tempfile.TemporaryDirectory(prefix="mqttaction-lab-base-") as tmp:
        root = Path(tmp) / "root"
        run(["debootstrap", "--variant=minbase", suite, str(root), mirrors["archive"]], capture=True)
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(sources)
        (root / "etc/apt/apt.conf.d/90lab").write_text(
            'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _import_stream(tar, want, image, suite)
    return want


def _import_stream(tar: subprocess.Popen, want: str, image: str, suite: str) -> None:
    proc = subprocess.run(
        ["docker", "import",
         "--change", f"LABEL {LABEL}.input={want}",
         "--change", f'LABEL {LABEL}.role="Debian {suite} minbase for the mqttaction.emqx lab"',
         "--change", 'CMD ["/bin/bash"]',
         "-", image],
        stdin=tar.stdout, capture_output=True, check=False,
    )
    tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise LabError(f"docker import failed: {proc.stderr.decode(errors='replace')}")


# Files of this machine an image's build context gets beside its own: the
# controller's pip reaches PyPI as this machine's does, through whatever TLS
# proxy its CA bundle trusts.
MACHINE_CA_BUNDLE = Path(os.environ.get("MQTTACTION_LAB_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
CONTEXT_EXTRAS = {"controller": {"machine-ca-certificates.crt": MACHINE_CA_BUNDLE}}


def build_images() -> None:
    mirrors = debian_mirrors()
    bases = {base_image(suite): build_base(mirrors, suite) for suite in HOST_SUITES}
    base_input = bases[BASE_IMAGE]
    for name, tag, parent in IMAGES:
        context = IMAGES_DIR / name
        extras = CONTEXT_EXTRAS.get(name, {})
        parent_input = bases[parent] if parent in bases else image_input(parent)
        want = context_digest(context, extra="|".join(
            [parent, parent_input or ""] + [f"{n}={file_digest(p)}" for n, p in sorted(extras.items())]))
        if image_input(tag) == want:
            log(f"{tag}: cached")
            continue
        if not extras:
            _build(tag, context, ["--build-arg", f"BASE={parent}"], want)
            continue
        with tempfile.TemporaryDirectory(prefix=f"mqttaction-lab-{name}-") as tmp:
            shutil.copytree(context, tmp, dirs_exist_ok=True)
            for file_name, source in extras.items():
                shutil.copy(source, Path(tmp) / file_name)
            _build(tag, Path(tmp), ["--build-arg", f"BASE={parent}"], want)
    for version in EMQX_VERSIONS:
        if EMQX_PULLED:
            pull_emqx(version)
        else:
            build_emqx(version, base_input)
    # Untagged leftovers (multi-stage build stages, replaced images) carry the
    # base image's labels.
    prune = docker("images", "-q", "--filter", "dangling=true", "--filter", f"label={LABEL}.input")
    if prune:
        docker("rmi", *prune.split(), check=False)


def _build(tag: str, context: Path, args: list, want: str) -> None:
    log(f"{tag}: building")
    started = time.monotonic()
    docker("build", *args, "--label", f"{LABEL}.input={want}", "--label", LABEL + "=image",
           "-t", tag, str(context))
    log(f"{tag}: built in {time.monotonic() - started:.0f} s")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def emqx_release(version: str) -> tuple:
    """The release tarball and official entrypoint of one EMQX version in the shared folder."""
    folder = SHARED_DIR / "emqx" / version
    tarballs = sorted(folder.glob(f"emqx-{version}-*.tar.gz"))
    entrypoint = folder / "docker-entrypoint.sh"
    if len(tarballs) != 1 or not entrypoint.is_file():
        raise LabError(
            f"no EMQX {version} release in {folder} (want one emqx-{version}-*.tar.gz and "
            "docker-entrypoint.sh): the lab builds its broker from the releases in ../shared/emqx/ "
            "(MQTTACTION_LAB_SHARED names another folder), or pulls an official image "
            "(MQTTACTION_LAB_EMQX_IMAGE=emqx/emqx)")
    return tarballs[0], entrypoint


def build_emqx(version: str, base_input: str) -> None:
    """EMQX <version> built from source, laid out as the official image; cached by its inputs.

    The build context is put together in a temporary folder: the Dockerfile of
    images/emqx and, from the shared folder, the release and the entrypoint.
    """
    tag = f"{EMQX_BUILT}:{version}"
    tarball, entrypoint = emqx_release(version)
    context = IMAGES_DIR / "emqx"
    want = context_digest(context, extra="|".join(
        (BASE_IMAGE, base_input, version, file_digest(tarball), file_digest(entrypoint))))
    if image_input(tag) == want:
        log(f"{tag}: cached")
        return
    with tempfile.TemporaryDirectory(prefix="mqttaction-lab-emqx-") as tmp:
        shutil.copy(context / "Dockerfile", tmp)
        shutil.copy(tarball, Path(tmp) / "emqx.tar.gz")
        shutil.copy(entrypoint, Path(tmp) / "docker-entrypoint.sh")
        _build(tag, Path(tmp), ["--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", f"EMQX_VERSION={version}"],
               want)


def pull_emqx(version: str) -> None:
    tag = f"{EMQX_PULLED}:{version}"
    if docker("image", "inspect", "--format", "{{.Id}}", tag, check=False):
        log(f"{tag}: present")
        return
    log(f"{tag}: pulling")
    docker("pull", tag)


# ---------------------------------------------------------------- network, registry, keys


def network_address(index: int) -> str:
    prefix = SUBNET.split("/")[0].rsplit(".", 1)[0]
    return f"{prefix}.{index}"


REGISTRY_ADDRESS = network_address(2)


def ensure_network() -> None:
    if docker("network", "ls", "-q", "--filter", f"name=^{NETWORK}$"):
        return
    log(f"network {NETWORK} {SUBNET}")
    docker("network", "create", "--driver", "bridge", "--subnet", SUBNET,
           "--gateway", network_address(1), "--label", f"{LABEL}=network", NETWORK)


def ensure_registry() -> None:
    running = docker("ps", "-q", "--filter", f"name=^{REGISTRY_NAME}$")
    if not running:
        docker("rm", "-f", REGISTRY_NAME, check=False)
        log(f"registry {REGISTRY_ADDRESS}:5000 (pushed to via 127.0.0.1:{REGISTRY_PUSH_PORT})")
        docker("run", "-d", "--name", REGISTRY_NAME, "--label", f"{LABEL}=registry",
               "--network", NETWORK, "--ip", REGISTRY_ADDRESS,
               "-p", f"127.0.0.1:{REGISTRY_PUSH_PORT}:5000",
               "--mount", f"type=volume,dst=/var/lib/docker-registry,volume-label={LABEL}=registry",
               "mqttaction-lab/registry:2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = run(["curl", "-fsS", f"http://127.0.0.1:{REGISTRY_PUSH_PORT}/v2/"],
                    check=False, capture=True)
        if probe.returncode == 0:
            return
        time.sleep(0.5)
    raise LabError(f"lab registry did not answer; docker logs {REGISTRY_NAME}")


def push_image(local: str, repository: str) -> None:
    target = f"127.0.0.1:{REGISTRY_PUSH_PORT}/{repository}"
    docker("tag", local, target)
    docker("push", target)
    docker("rmi", target)
    log(f"pushed {local} as {REGISTRY_ADDRESS}:5000/{repository}")


def save_archive(local: str, name: str) -> None:
    """docker save, redone only when the image changed (its id is kept beside it)."""
    archive = STATE_DIR / name
    stamp = STATE_DIR / (name + ".id")
    image_id = docker("image", "inspect", "--format", "{{.Id}}", local)
    if archive.exists() and stamp.exists() and stamp.read_text().strip() == image_id:
        return
    docker("save", "-o", str(archive), local)
    stamp.write_text(image_id + "\n")
    log(f"saved {local} to {archive}")


def ensure_ssh_key() -> Path:
    key = STATE_DIR / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mqttaction-lab", "-f", str(key)])
    os.chmod(key.parent / "id_ed25519.pub", 0o644)
    return key


def write_env(key: Path) -> None:
    """Facts the molecule scenarios read (as environment) to reach the lab."""
    env = {
        "MQTTACTION_LAB_NETWORK": NETWORK,
        "MQTTACTION_LAB_SSH_KEY": str(key),
        "MQTTACTION_LAB_REGISTRY": f"{REGISTRY_ADDRESS}:5000",
        "MQTTACTION_LAB_EMQX_REPOSITORY": EMQX_REPOSITORY,
    }
    (STATE_DIR / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))


# ---------------------------------------------------------------- commands


def up() -> None:
    started = time.monotonic()
    ensure_docker()
    build_images()
    ensure_network()
    ensure_registry()
    for local, repository in PUSHED.items():
        push_image(local, repository)
    for local, name in ARCHIVED.items():
        save_archive(local, name)
    write_env(ensure_ssh_key())
    log(f"lab up in {time.monotonic() - started:.0f} s")


def down() -> None:
    """Remove every lab container, volume and network; keep the cached images."""
    if not docker_answers():
        log("no docker engine answers; nothing to tear down")
        return
    containers = docker("ps", "-aq", "--filter", f"label={LABEL}")
    molecule = docker("ps", "-aq", "--filter", "label=owner=molecule")
    ids = sorted(set((containers + "\n" + molecule).split()))
    if ids:
        docker("rm", "-f", "-v", *ids)
    for net in docker("network", "ls", "-q", "--filter", f"label={LABEL}").split():
        docker("network", "rm", net, check=False)
    for net in docker("network", "ls", "-q", "--filter", "label=owner=molecule").split():
        docker("network", "rm", net, check=False)
    volumes = docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split()
    if volumes:
        docker("volume", "rm", *volumes, check=False)
    left = leftovers()
    if left:
        raise LabError(f"teardown left these behind: {', '.join(left)}")
    log(f"lab down: removed {len(ids)} containers; images kept")


def leftovers() -> list:
    """Lab containers, networks and volumes that still exist."""
    found = []
    for kind, filters in (("container", ["ps", "-a"]), ("network", ["network", "ls"]),
                          ("volume", ["volume", "ls"])):
        for label in (LABEL, "owner=molecule"):
            if kind == "volume" and label != LABEL:
                continue
            names = docker(*filters, "-q", "--filter", f"label={label}").split()
            found += [f"{kind} {name}" for name in names]
    return found


def status() -> None:
    print(docker("ps", "-a", "--filter", f"label={LABEL}", "--format",
                 "{{.Names}}\t{{.Status}}\t{{.Image}}"))
    print(docker("images", "--filter", f"label={LABEL}.input", "--format",
                 "{{.Repository}}:{{.Tag}}\t{{.Size}}"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["docker", "images", "up", "down", "status", "what"])
    args = parser.parse_args(argv)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        {"docker": ensure_docker, "images": lambda: (ensure_docker(), build_images()),
         "up": up, "down": down, "status": status, "what": lambda: print(emqx_what())}[args.command]()
    except LabError as exc:
        print(f"[lab] FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
