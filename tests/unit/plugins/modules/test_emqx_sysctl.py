"""emqx_sysctl against a /proc/sys of files, and its scratch-namespace probe against the real kernel."""

from __future__ import annotations

import errno
import os

import pytest
from ansible_collections.mqttaction.emqx.plugins.modules import emqx_sysctl


@pytest.fixture
def proc(tmp_path, monkeypatch):
    """A /proc/sys whose files refuse what refuse[key] says (EINVAL), read-only where readonly holds."""
    root = tmp_path / "proc-sys"
    values = {"net.core.somaxconn": "4096", "net.ipv4.tcp_rmem": "4096\t131072\t6291456",
              "fs.file-max": "9223372036854775807", "net.ipv4.tcp_fin_timeout": "60"}
    for key, value in values.items():
        path = root.joinpath(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    state = {"root": root, "refuse": {}, "readonly": set(), "probed": []}
    real_access = os.access

    def write(path, value):
        key = ".".join(os.path.relpath(path, root).split(os.sep))
        if key in state["readonly"]:
            raise OSError(errno.EROFS, "Read-only file system")
        if state["refuse"].get(key) == value:
            raise OSError(errno.EINVAL, "Invalid argument")
        with open(path, "w") as handle:  # /proc/sys files take a whole value per write
            handle.write(value + "\n")

    def access(path, mode):
        key = ".".join(os.path.relpath(path, root).split(os.sep))
        return key not in state["readonly"] and real_access(path, mode)

    monkeypatch.setattr(emqx_sysctl, "write", write)
    monkeypatch.setattr(emqx_sysctl.os, "access", access)
    return state


def read(proc, key):
    return proc["root"].joinpath(*key.split(".")).read_text().split()


def module_main(proc, probe=True):
    def fake_probe(values, _root):
        proc["probed"].append(sorted(values))
        if not probe:
            return None
        return dict((key, "Invalid argument" if proc["refuse"].get(key) == value else None)
                    for key, value in values.items())

    def main():
        module = emqx_sysctl.AnsibleModule(
            argument_spec=dict(settings=dict(type="dict", required=True), file=dict(type="path"),
                               header=dict(type="str", default="")),
            supports_check_mode=True)
        emqx_sysctl.run(module, root=str(proc["root"]), probe=fake_probe)
    return main


SETTINGS = {"net.core.somaxconn": 32768, "net.ipv4.tcp_rmem": "4096 4096  16777216", "fs.file-max": 2097152}


def test_sets_reads_back_and_persists_then_changes_nothing(proc, run_module, tmp_path):
    conf = tmp_path / "60-emqx.conf"
    failed, result = run_module(module_main(proc), {"settings": SETTINGS, "file": str(conf), "header": "# managed"},
                                diff=True)
    assert not failed and result["changed"] and result["file_changed"]
    assert result["applied"] == {
        "fs.file-max": {"before": "9223372036854775807", "after": "2097152"},
        "net.core.somaxconn": {"before": "4096", "after": "32768"},
        "net.ipv4.tcp_rmem": {"before": "4096 131072 6291456", "after": "4096 4096 16777216"}}
    assert read(proc, "net.ipv4.tcp_rmem") == ["4096", "4096", "16777216"]
    assert conf.read_text() == ("# managed\nfs.file-max = 2097152\nnet.core.somaxconn = 32768\n"
                                "net.ipv4.tcp_rmem = 4096 4096 16777216\n")
    assert proc["probed"] == [["net.core.somaxconn", "net.ipv4.tcp_rmem"]], "only net.* values are probed"
    failed, again = run_module(module_main(proc), {"settings": SETTINGS, "file": str(conf), "header": "# managed"})
    assert not failed and not again["changed"] and again["applied"] == {}


def test_check_mode_predicts_and_writes_nothing(proc, run_module, tmp_path):
    conf = tmp_path / "60-emqx.conf"
    failed, result = run_module(module_main(proc), {"settings": SETTINGS, "file": str(conf)}, check_mode=True,
                                diff=True)
    assert not failed and result["changed"] and set(result["applied"]) == set(SETTINGS)
    assert read(proc, "net.core.somaxconn") == ["4096"] and not conf.exists()
    assert result["diff"][0]["after"].startswith("fs.file-max = 2097152\n")


def test_a_refused_network_value_fails_before_anything_changes(proc, run_module, tmp_path):
    proc["refuse"]["net.ipv4.tcp_rmem"] = "1024 4096 16777216"
    conf = tmp_path / "60-emqx.conf"
    settings = dict(SETTINGS, **{"net.ipv4.tcp_rmem": "1024 4096 16777216"})
    for check in (True, False):
        failed, result = run_module(module_main(proc), {"settings": settings, "file": str(conf)}, check_mode=check)
        assert failed
        assert result["msg"].startswith("The kernel settings were not changed. net.ipv4.tcp_rmem = '1024 4096 16777216' "
                                        "was refused by the running kernel")
        assert "it keeps '4096 131072 6291456'" in result["msg"] and "below 4096" in result["msg"]
        assert "somaxconn" not in result["msg"], "each refused rule reports itself alone"
    assert read(proc, "net.core.somaxconn") == ["4096"] and read(proc, "fs.file-max") == ["9223372036854775807"]
    assert not conf.exists()


def test_a_value_refused_when_written_puts_back_the_others(proc, run_module, tmp_path):
    """Without a scratch namespace (no CAP_SYS_ADMIN) the refusal comes at the write."""
    proc["refuse"]["net.ipv4.tcp_rmem"] = "1024 4096 16777216"
    conf = tmp_path / "60-emqx.conf"
    settings = dict(SETTINGS, **{"net.ipv4.tcp_rmem": "1024 4096 16777216"})
    failed, result = run_module(module_main(proc, probe=False), {"settings": settings, "file": str(conf)})
    assert failed and result["msg"].startswith("The kernel settings were put back as they were.")
    assert result["refused"] == [result["msg"][len("The kernel settings were put back as they were. "):-1]]
    assert read(proc, "net.core.somaxconn") == ["4096"] and read(proc, "fs.file-max") == ["9223372036854775807"]
    assert not conf.exists()


def test_read_only_and_missing_keys_are_reported_once_and_kept_in_the_file(proc, run_module, tmp_path):
    proc["readonly"].add("fs.file-max")
    conf = tmp_path / "60-emqx.conf"
    settings = dict(SETTINGS, **{"net.netfilter.nf_conntrack_max": 1000000})
    failed, result = run_module(module_main(proc), {"settings": settings, "file": str(conf)})
    assert not failed and result["unwritable"] == ["fs.file-max"]
    assert result["unavailable"] == ["net.netfilter.nf_conntrack_max"]
    assert [w["event"]["msg"] for w in result["warnings"] if "fs.file-max" in w["event"]["msg"]] == [
        "Read-only where this host runs (a container?): fs.file-max. They are kept in %s for a real host." % conf]
    assert "nf_conntrack_max = 1000000" in conf.read_text() and "fs.file-max = 2097152" in conf.read_text()
    failed, again = run_module(module_main(proc), {"settings": settings, "file": str(conf)})
    assert not failed and not again["changed"], "an unwritable key is not a change on every run"


def _may_unshare_network():
    """Whether this process may make a network namespace (root with CAP_SYS_ADMIN; not in a plain container)."""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        os._exit(0 if emqx_sysctl.ctypes.CDLL(None, use_errno=True).unshare(emqx_sysctl.CLONE_NEWNET) == 0 else 1)
    return os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 0


@pytest.mark.skipif(not _may_unshare_network(), reason="needs root with CAP_SYS_ADMIN (unshare(CLONE_NEWNET))")
def test_the_probe_asks_the_running_kernel_in_a_scratch_namespace():
    before = open("/proc/sys/net/ipv4/ip_local_port_range").read()
    answers = emqx_sysctl.probe_network_values({"net.ipv4.ip_local_port_range": "70000 80000",
                                                "net.core.somaxconn": "1234"})
    assert answers == {"net.ipv4.ip_local_port_range": "Invalid argument", "net.core.somaxconn": None}
    assert open("/proc/sys/net/ipv4/ip_local_port_range").read() == before
    assert open("/proc/sys/net/core/somaxconn").read().strip() != "1234"
