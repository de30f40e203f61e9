#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_sysctl
short_description: Apply and persist kernel settings in one pass, and fail on a value the kernel refuses
version_added: 1.0.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Sets a group of kernel parameters (C(/proc/sys)) in one module run, reads each back, and writes them to a
    C(sysctl.d) file so that they hold after a reboot.
  - A value the running kernel refuses fails the run, naming the key, the value, what the kernel keeps and,
    where known, what it accepts. Network settings (C(net.*)) are first tried in a scratch network namespace,
    so a refused one fails the run before anything is changed, in check mode too. A setting written in this
    run is put back when another one is refused, and the file is then not written.
  - Keys that cannot be written where the host runs (a container's read-only C(/proc/sys)) and keys the
    kernel does not offer (a module not loaded) are reported, in one warning each, and kept in the file.
  - Compared with M(ansible.posix.sysctl), which takes one module run per key, this takes one run for all
    of them, and tells a refused value from one it could not write.
attributes:
  check_mode:
    support: full
    description: Reports which keys and file would change. Network values are checked against the running kernel.
  diff_mode:
    support: full
    description: Shows the changed values and the file.
options:
  settings:
    description:
      - Kernel parameters by their dotted name (V(net.core.somaxconn)), with their values; a value of several
        numbers is written separated by spaces.
    type: dict
    required: true
  file:
    description: The C(sysctl.d) file that keeps the settings across reboots. Not written when omitted.
    type: path
  header:
    description: Text put at the top of O(file), such as the C(ansible_managed) comment.
    type: str
    default: ""
notes:
  - Needs root. Trying network values in a scratch namespace needs C(CAP_SYS_ADMIN); without it they are
    checked when written.
"""

EXAMPLES = r"""
- name: Tune the kernel for many MQTT connections
  mqttaction.emqx.emqx_sysctl:
    settings:
      net.core.somaxconn: 32768
      net.ipv4.tcp_rmem: 4096 4096 16777216
      fs.file-max: 2097152
    file: /etc/sysctl.d/60-mqttaction-emqx.conf
    header: "{{ ansible_managed | comment }}"
"""

RETURN = r"""
applied:
  description: The keys changed (or, in check mode, that would change), with their values before and after.
  returned: always
  type: dict
  sample: {"net.core.somaxconn": {"before": "4096", "after": "32768"}}
unwritable:
  description: Keys read-only where the host runs (inside a container); they take effect from O(file) on a real host.
  returned: always
  type: list
  elements: str
  sample: ["fs.file-max", "fs.nr_open"]
unavailable:
  description: Keys the running kernel does not offer (a kernel module that is not loaded).
  returned: always
  type: list
  elements: str
file_changed:
  description: Whether O(file) was (or would be) written.
  returned: always
  type: bool
kernel:
  description: The running kernel's release.
  returned: always
  type: str
  sample: 6.1.0-28-amd64
"""

import ctypes
import errno
import os
import platform
import tempfile

from ansible.module_utils.basic import AnsibleModule

PROC_SYS = "/proc/sys"
CLONE_NEWNET = 0x40000000

# What kernels are known to accept where they refuse a value, for the message.
ACCEPTS = {
    "net.ipv4.tcp_rmem": "three byte counts (min, default, max); Linux 6.18 refuses any below 4096 (one page)",
    "net.ipv4.ip_local_port_range": "two ports, the lower first, within 1-65535",
}


def normalise(value):
    """A value as the kernel prints it, whitespace runs made one space."""
    if isinstance(value, bool):
        value = int(value)
    return " ".join(str(value).split())


def proc_path(key, root=None):
    return os.path.join(root or PROC_SYS, *key.split("."))


def read(path):
    with open(path) as handle:
        return normalise(handle.read())


def write(path, value):
    """One unbuffered write, so the kernel's answer (EINVAL...) reaches the caller."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def probe_network_values(values, root=None):
    """Try net.* values in a scratch network namespace: {key: refusal or None}, or None when that cannot be done.

    A child process leaves the host's namespace (unshare(CLONE_NEWNET)), writes each value into its own copy
    of the network settings and reports what the kernel said; the host's settings are never touched.
    """
    if not values:
        return {}
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(reader)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                code = 3
            else:
                answers = []
                for key, value in values.items():
                    try:
                        write(proc_path(key, root), value)
                        answers.append("%s\t" % key)
                    except OSError as exc:
                        answers.append("%s\t%s" % (key, exc.strerror))
                os.write(writer, "\n".join(answers).encode())
        except Exception:  # pylint: disable=broad-except
            code = 4
        finally:
            os._exit(code)  # pylint: disable=protected-access
    os.close(writer)
    chunks = []
    while True:
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    _pid, status = os.waitpid(pid, 0)
    if os.WEXITSTATUS(status) != 0:
        return None
    found = {}
    for line in b"".join(chunks).decode().splitlines():
        key, _tab, refusal = line.partition("\t")
        found[key] = refusal or None
    return found if set(found) == set(values) else None


def refusal_message(key, value, reason, kept, kernel):
    message = "%s = %r was refused by the running kernel %s (%s); it keeps %r" % (key, value, kernel, reason, kept)
    if key in ACCEPTS:
        message += "; it takes %s" % ACCEPTS[key]
    return message


def file_content(header, wanted):
    lines = [header.rstrip("\n")] if header.strip() else []
    lines += ["%s = %s" % (key, wanted[key]) for key in sorted(wanted)]
    return "\n".join(lines) + "\n"


class KernelSettings(object):
    def __init__(self, module, root=None, probe=probe_network_values):
        self.module = module
        self.root = root
        self.probe = probe
        self.kernel = platform.release()

    def plan(self, wanted):
        """(to change {key: (before, after)}, unwritable, unavailable) from the running kernel."""
        change, unwritable, unavailable = {}, [], []
        for key in sorted(wanted):
            path = proc_path(key, self.root)
            if not os.path.exists(path):
                unavailable.append(key)
                continue
            current = read(path)
            if current == wanted[key]:
                continue
            if not os.access(path, os.W_OK):
                unwritable.append(key)
                continue
            change[key] = (current, wanted[key])
        return change, unwritable, unavailable

    def check_network_values(self, change):
        """Refusals of the net.* values, found in a scratch namespace before anything is written."""
        network = dict((key, after) for key, (_before, after) in change.items() if key.startswith("net."))
        answers = self.probe(network, self.root)
        if answers is None:
            if network and self.module.check_mode:
                self.module.warn("Could not try the network settings in a scratch namespace (no CAP_SYS_ADMIN?): "
                                 "check mode cannot tell whether the kernel accepts %s." % ", ".join(sorted(network)))
            return []
        return [refusal_message(key, network[key], reason, change[key][0], self.kernel)
                for key, reason in sorted(answers.items()) if reason]

    def apply(self, change):
        """Write every change; on a refusal put back what was written and return the refusals."""
        written, refused = [], []
        for key, (before, after) in sorted(change.items()):
            path = proc_path(key, self.root)
            try:
                write(path, after)
            except OSError as exc:
                if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    refused.append("%s could not be written here (%s)" % (key, exc.strerror))
                else:
                    refused.append(refusal_message(key, after, exc.strerror, read(path), self.kernel))
                continue
            kept = read(path)
            if kept != after:
                refused.append(refusal_message(key, after, "it kept another value", kept, self.kernel))
            written.append((key, before))
        if refused:
            for key, before in written:
                try:
                    write(proc_path(key, self.root), before)
                except OSError:
                    pass
        return refused


def write_file(module, path, content):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".emqx_sysctl.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run(module, root=None, probe=probe_network_values):
    wanted = dict((str(key), normalise(value)) for key, value in module.params["settings"].items())
    kernel = KernelSettings(module, root, probe)
    change, unwritable, unavailable = kernel.plan(wanted)
    refused = kernel.check_network_values(change)
    if refused:
        module.fail_json(msg="The kernel settings were not changed. " + "; ".join(refused) + ".", refused=refused,
                         kernel=kernel.kernel)
    if not module.check_mode:
        refused = kernel.apply(change)
        if refused:
            module.fail_json(msg="The kernel settings were put back as they were. " + "; ".join(refused) + ".",
                             refused=refused, kernel=kernel.kernel)
    applied = dict((key, {"before": before, "after": after}) for key, (before, after) in change.items())
    result = dict(changed=False, applied=applied, unwritable=unwritable, unavailable=unavailable,
                  file_changed=False, kernel=kernel.kernel)
    diff_before, diff_after = [], []
    for key, (before, after) in sorted(change.items()):
        diff_before.append("%s = %s" % (key, before))
        diff_after.append("%s = %s" % (key, after))
    diffs = [{"before": "\n".join(diff_before) + "\n", "after": "\n".join(diff_after) + "\n",
              "before_header": "running kernel", "after_header": "running kernel"}] if change else []
    path = module.params["file"]
    if path:
        content = file_content(module.params["header"], wanted)
        current = None
        if os.path.exists(path):
            with open(path) as handle:
                current = handle.read()
        if current != content:
            result["file_changed"] = True
            diffs.append({"before": current or "", "after": content, "before_header": path, "after_header": path})
            if not module.check_mode:
                write_file(module, path, content)
    result["changed"] = bool(change) or result["file_changed"]
    if unwritable:
        module.warn("Read-only where this host runs (a container?): %s. They are kept in %s for a real host."
                    % (", ".join(unwritable), path or "no file"))
    if unavailable:
        module.warn("Not offered by the running kernel %s (a kernel module not loaded?): %s."
                    % (kernel.kernel, ", ".join(unavailable)))
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(settings=dict(type="dict", required=True), file=dict(type="path"),
                           header=dict(type="str", default="")),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
