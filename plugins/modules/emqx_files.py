#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_files
short_description: Write the directories and files of EMQX nodes in one pass
version_added: 0.2.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Makes sure a set of directories and files exists with the given content, owner, group and mode, in
    one module run. An EMQX host has a dozen or more files per node (C(emqx.conf), C(acl.conf), plugin
    configurations, C(loaded_plugins), certificates); writing them with one M(ansible.builtin.template)
    or M(ansible.builtin.copy) run each costs a module start per file, which this avoids.
  - Files are replaced atomically (written beside the target, then renamed), so a reader never sees half a
    file. Only what differs is touched; a second run changes nothing.
  - Returns the SHA-1 checksum of every file's wanted content, also in check mode, so that a caller can tell
    what a node would read at its next start.
  - Values listed in O(secrets) are masked wherever they would appear in the output, diffs included.
attributes:
  check_mode:
    support: full
    description: Reports what would change, with diffs, and writes nothing.
  diff_mode:
    support: full
    description: Shows each changed file (but those with O(files[].diff=false)) and each changed owner, group or mode.
options:
  directories:
    description: Directories to create, or whose owner, group and mode to set. They are handled before the files.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner: &emqx_files_owner
        description: User name or numeric id.
        type: str
        default: root
      group: &emqx_files_group
        description: Group name or numeric id.
        type: str
        default: root
      mode:
        description: Octal mode, as a string such as V("0750").
        type: str
        default: "0755"
  files:
    description: Files to write. Their directory must exist (or be in O(directories)).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: The whole content, as text (UTF-8).
        type: str
        required: true
      owner: *emqx_files_owner
      group: *emqx_files_group
      mode:
        description: Octal mode, as a string such as V("0640").
        type: str
        default: "0644"
      diff:
        description: Show this file's content in diffs; V(false) for private keys and other secrets as a whole.
        type: bool
        default: true
      validate:
        description:
          - A command that checks the new content before it replaces the file, with V(%s) standing for a
            temporary copy (as M(ansible.builtin.template)'s O(ansible.builtin.template#module:validate)). When it
            fails, the file is left as it was and the module fails with the command's output.
          - Not run in check mode, nor when the content is already right.
        type: str
  secrets:
    description: Strings masked in everything the module returns (passwords inside configuration files).
    type: list
    elements: str
    default: []
notes:
  - Owners and groups that are numbers need not exist on the host (EMQX's container runs as uid 1000).
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write a node's configuration in one pass
  mqttaction.emqx.emqx_files:
    directories:
      - {path: /opt/mqttaction-emqx/emqx/etc, mode: "0755"}
      - {path: /opt/mqttaction-emqx/emqx/data, owner: "1000", group: "1000", mode: "0750"}
    files:
      - path: /opt/mqttaction-emqx/emqx/etc/emqx.conf
        content: "{{ lookup('ansible.builtin.template', 'emqx.conf.j2') }}"
        validate: grep -q '^node.name' %s
        group: "1000"
        mode: "0640"
      - path: /opt/mqttaction-emqx/emqx/etc/plugins/emqx_management.conf
        content: "management.default_application.secret = {{ vault_api_secret }}\n"
        group: "1000"
        mode: "0640"
    secrets:
      - "{{ vault_api_secret }}"
  register: node_files
"""

RETURN = r"""
changed_files:
  description: Files whose content, owner, group or mode was (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
  sample: [/opt/mqttaction-emqx/emqx/etc/emqx.conf]
changed_directories:
  description: Directories created or whose owner, group or mode was changed.
  returned: always
  type: list
  elements: str
  sample: []
checksums:
  description: SHA-1 of the wanted content of every file, by path.
  returned: always
  type: dict
  sample: {/opt/mqttaction-emqx/emqx/etc/emqx.conf: 0bd4a3c1b6bd4c8a9a3fa5b3a0a6a1d3f9b1a2c3}
"""

import grp
import hashlib
import os
import pwd
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


class FilesError(Exception):
    pass


def resolve_id(name, kind):
    """A uid or gid from a name or a number written as text."""
    text = str(name)
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid if kind == "owner" else grp.getgrnam(text).gr_gid
    except KeyError:
        raise FilesError("%s %r does not exist on this host" % (kind, text))


def parse_mode(text, path):
    try:
        mode = int(str(text), 8)
    except ValueError:
        raise FilesError("%s: mode %r is not an octal number such as \"0640\"" % (path, text))
    if mode > 0o7777:
        raise FilesError("%s: mode %r is out of range" % (path, text))
    return mode


def attribute_changes(path, uid, gid, mode):
    """What differs in owner, group and mode of an existing path: (before, after) strings per attribute."""
    info = os.lstat(path)
    changes = {}
    if info.st_uid != uid:
        changes["owner"] = (str(info.st_uid), str(uid))
    if info.st_gid != gid:
        changes["group"] = (str(info.st_gid), str(gid))
    if stat.S_IMODE(info.st_mode) != mode:
        changes["mode"] = ("%04o" % stat.S_IMODE(info.st_mode), "%04o" % mode)
    return changes


def describe(changes):
    return "".join("%s: %s\n" % (name, value) for name, value in sorted(changes.items()))


def ensure_directory(spec, check_mode):
    """(changed, diff) for one directory."""
    path = spec["path"]
    uid, gid = resolve_id(spec["owner"], "owner"), resolve_id(spec["group"], "group")
    mode = parse_mode(spec["mode"], path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise FilesError("%s exists and is not a directory" % path)
    if not os.path.exists(path):
        if not check_mode:
            os.makedirs(path)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return True, {"before_header": path, "after_header": path, "before": "state: absent\n",
                      "after": "state: directory\nowner: %d\ngroup: %d\nmode: %04o\n" % (uid, gid, mode)}
    changes = attribute_changes(path, uid, gid, mode)
    if not changes:
        return False, None
    if not check_mode:
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return True, {"before_header": path, "after_header": path,
                  "before": describe(dict((k, v[0]) for k, v in changes.items())),
                  "after": describe(dict((k, v[1]) for k, v in changes.items()))}


def ensure_file(spec, check_mode, run_command=None):
    """(changed, diff, checksum) for one file; run_command(argv) -> (rc, out, err) runs its validate command."""
    path = spec["path"]
    wanted = spec["content"].encode("utf-8")
    checksum = hashlib.sha1(wanted).hexdigest()
    uid, gid = resolve_id(spec["owner"], "owner"), resolve_id(spec["group"], "group")
    mode = parse_mode(spec["mode"], path)
    if os.path.lexists(path) and not os.path.isfile(path):
        raise FilesError("%s exists and is not a regular file" % path)
    exists = os.path.exists(path)
    current = None
    if exists:
        with open(path, "rb") as handle:
            current = handle.read()
    content_changed = current != wanted
    changes = attribute_changes(path, uid, gid, mode) if exists else {}
    if not content_changed and not changes:
        return False, None, checksum
    if not check_mode:
        if content_changed:
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                raise FilesError("%s: the directory %s does not exist" % (path, directory))
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(wanted)
                os.chown(temporary, uid, gid)
                os.chmod(temporary, mode)
                if spec.get("validate"):
                    validate(spec["validate"], temporary, path, run_command)
                os.replace(temporary, path)
            except BaseException:
                if os.path.exists(temporary):
                    os.unlink(temporary)
                raise
        else:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
    if spec["diff"] and content_changed:
        before = "" if current is None else current.decode("utf-8", "replace")
        diff = {"before_header": path if exists else "%s (absent)" % path, "after_header": path,
                "before": before, "after": spec["content"]}
    elif content_changed:
        diff = {"before_header": path, "after_header": path,
                "before": "(content not shown)\n" if exists else "state: absent\n",
                "after": "(new content not shown, sha1 %s)\n" % checksum}
    else:
        diff = {"before_header": path, "after_header": path,
                "before": describe(dict((k, v[0]) for k, v in changes.items())),
                "after": describe(dict((k, v[1]) for k, v in changes.items()))}
    return True, diff, checksum


def validate(command, temporary, path, run_command):
    """Run a validate command (%s: the new content's temporary file); FilesError when it fails."""
    if "%s" not in command:
        raise FilesError("%s: the validate command %r needs %%s where the file goes" % (path, command))
    rc, out, err = run_command(shlex.split(command.replace("%s", shlex.quote(temporary))))
    if rc != 0:
        raise FilesError("%s: the new content failed %r (exit %d): %s" % (path, command, rc, (err or out).strip()))


def main():
    ownership = dict(owner=dict(type="str", default="root"), group=dict(type="str", default="root"))
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True), mode=dict(type="str", default="0755"), **ownership)),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True), content=dict(type="str", required=True),
                mode=dict(type="str", default="0644"), diff=dict(type="bool", default=True),
                validate=dict(type="str"), **ownership)),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    # Mask the secrets wherever they would show: results, diffs, the invocation.
    for secret in module.params["secrets"]:
        if secret:
            module.no_log_values.add(secret)
    for spec in module.params["files"]:
        if not spec["diff"]:
            module.no_log_values.add(spec["content"])

    result = dict(changed=False, changed_files=[], changed_directories=[], checksums={})
    diffs = []
    try:
        for spec in module.params["directories"]:
            changed, diff = ensure_directory(spec, module.check_mode)
            if changed:
                result["changed_directories"].append(spec["path"])
                diffs.append(diff)
        for spec in module.params["files"]:
            if not os.path.isabs(spec["path"]):
                raise FilesError("%s: give an absolute path" % spec["path"])
            changed, diff, checksum = ensure_file(spec, module.check_mode, module.run_command)
            result["checksums"][spec["path"]] = checksum
            if changed:
                result["changed_files"].append(spec["path"])
                diffs.append(diff)
    except (FilesError, OSError) as exc:
        module.fail_json(msg=str(exc), **result)
    result["changed"] = bool(result["changed_files"] or result["changed_directories"])
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
