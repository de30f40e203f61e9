"""emqx_files run in-process on a temporary directory."""

from __future__ import annotations

import hashlib
import json
import os
import stat

from ansible_collections.mqttaction.emqx.plugins.modules import emqx_files

UID = os.getuid()
GID = os.getgid()


def spec(tmp_path, secret="s3cret-value"):
    base = tmp_path / "emqx"
    return {
        "directories": [
            {"path": str(base), "owner": str(UID), "group": str(GID), "mode": "0755"},
            {"path": str(base / "etc"), "owner": str(UID), "group": str(GID), "mode": "0750"},
        ],
        "files": [
            {"path": str(base / "etc" / "emqx.conf"), "content": "node.process_limit = 2097152\n",
             "owner": str(UID), "group": str(GID), "mode": "0640"},
            {"path": str(base / "etc" / "mgmt.conf"), "content": "secret = %s\n" % secret,
             "owner": str(UID), "group": str(GID), "mode": "0640"},
            {"path": str(base / "etc" / "key.pem"), "content": "-----BEGIN PRIVATE KEY-----\nAAAA\n",
             "owner": str(UID), "group": str(GID), "mode": "0600", "diff": False},
        ],
        "secrets": [secret],
    }


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_everything_then_changes_nothing(tmp_path, run_module):
    args = spec(tmp_path)
    failed, result = run_module(emqx_files.main, args)
    assert not failed and result["changed"] is True
    assert len(result["changed_files"]) == 3 and len(result["changed_directories"]) == 2
    conf = tmp_path / "emqx" / "etc" / "emqx.conf"
    assert conf.read_text() == "node.process_limit = 2097152\n"
    assert mode_of(conf) == 0o640 and mode_of(tmp_path / "emqx" / "etc") == 0o750
    assert result["checksums"][str(conf)] == hashlib.sha1(b"node.process_limit = 2097152\n").hexdigest()

    failed, again = run_module(emqx_files.main, args)
    assert not failed and again["changed"] is False and again["changed_files"] == []
    assert again["checksums"] == result["checksums"]
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "emqx" / "etc")), "no temporary left"


def test_check_mode_reports_and_writes_nothing(tmp_path, run_module):
    failed, result = run_module(emqx_files.main, spec(tmp_path), check_mode=True, diff=True)
    assert not failed and result["changed"] is True and len(result["changed_files"]) == 3
    assert not (tmp_path / "emqx").exists()
    assert len(result["checksums"]) == 3


def test_diff_masks_secrets_and_hides_keys(tmp_path, run_module):
    run_module(emqx_files.main, spec(tmp_path, secret="first-secret-1"))
    failed, result = run_module(emqx_files.main, spec(tmp_path, secret="second-secret-2"), diff=True)
    assert not failed and result["changed_files"] == [str(tmp_path / "emqx" / "etc" / "mgmt.conf")]
    printed = json.dumps(result)
    assert "second-secret-2" not in printed
    assert result["diff"][0]["after"] == "secret = ********\n"

    args = spec(tmp_path, secret="second-secret-2")
    args["files"][2]["content"] = "-----BEGIN PRIVATE KEY-----\nBBBB\n"
    failed, result = run_module(emqx_files.main, args, diff=True)
    assert "BBBB" not in json.dumps(result)
    assert result["diff"][0]["after"].startswith("(new content not shown")


def test_owner_and_mode_drift_is_repaired_without_rewriting(tmp_path, run_module):
    args = spec(tmp_path)
    run_module(emqx_files.main, args)
    conf = tmp_path / "emqx" / "etc" / "emqx.conf"
    inode = conf.stat().st_ino
    conf.chmod(0o666)
    failed, result = run_module(emqx_files.main, args, diff=True)
    assert not failed and result["changed_files"] == [str(conf)]
    assert mode_of(conf) == 0o640 and conf.stat().st_ino == inode
    assert result["diff"][0]["before"] == "mode: 0666\n" and result["diff"][0]["after"] == "mode: 0640\n"


def test_content_change_replaces_the_file_atomically(tmp_path, run_module):
    args = spec(tmp_path)
    run_module(emqx_files.main, args)
    conf = tmp_path / "emqx" / "etc" / "emqx.conf"
    inode = conf.stat().st_ino
    args["files"][0]["content"] = "node.process_limit = 1024\n"
    failed, result = run_module(emqx_files.main, args, diff=True)
    assert not failed and conf.read_text() == "node.process_limit = 1024\n"
    assert conf.stat().st_ino != inode, "a new file renamed over the old one"
    assert result["diff"][0]["before"] == "node.process_limit = 2097152\n"


def test_bad_input_fails_clearly(tmp_path, run_module):
    args = spec(tmp_path)
    args["files"][0]["mode"] = "rw-r"
    failed, result = run_module(emqx_files.main, args)
    assert failed and "not an octal number" in result["msg"]

    args = spec(tmp_path)
    args["files"][0]["owner"] = "no-such-user-here"
    failed, result = run_module(emqx_files.main, args)
    assert failed and "owner 'no-such-user-here' does not exist" in result["msg"]

    args = spec(tmp_path / "elsewhere")
    args["directories"] = []
    failed, result = run_module(emqx_files.main, args)
    assert failed and "does not exist" in result["msg"]

    (tmp_path / "plain").write_text("x")
    failed, result = run_module(emqx_files.main, {"directories": [{"path": str(tmp_path / "plain")}]})
    assert failed and "is not a directory" in result["msg"]


def test_content_that_fails_its_validate_command_leaves_the_file_as_it_was(tmp_path, run_module):
    args = spec(tmp_path)
    run_module(emqx_files.main, args)
    conf = tmp_path / "emqx" / "etc" / "emqx.conf"
    args["files"][0]["content"] = "broken = \n"
    args["files"][0]["validate"] = "grep -q process_limit %s"
    failed, result = run_module(emqx_files.main, args)
    assert failed and "failed 'grep -q process_limit %s' (exit 1)" in result["msg"]
    assert conf.read_text() == "node.process_limit = 2097152\n"
    assert not any(name.startswith(".") for name in os.listdir(conf.parent)), "no temporary left"

    args["files"][0]["content"] = "node.process_limit = 4194304\n"
    failed, result = run_module(emqx_files.main, args)
    assert not failed and result["changed_files"] == [str(conf)]
    assert conf.read_text() == "node.process_limit = 4194304\n"


def test_a_validate_command_without_the_file_placeholder_is_refused(tmp_path, run_module):
    args = spec(tmp_path)
    args["files"][0]["validate"] = "true"
    failed, result = run_module(emqx_files.main, args)
    assert failed and "needs %s where the file goes" in result["msg"]
