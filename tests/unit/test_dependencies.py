"""The collections the content uses are exactly those galaxy.yml and requirements.yml declare.

Uses are read where Ansible resolves them: module names of tasks and handlers,
roles named by include_role/import_role, module_defaults groups, filters, tests
and lookups in Jinja (task strings and templates), and Python imports of
ansible_collections in plugins. Documentation that merely mentions a module
(M(...)) is not a use.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OWN = "mqttaction.emqx"
FQCN = r"([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"
JINJA_USES = [
    re.compile(r"\|\s*" + FQCN),                               # a filter
    re.compile(r"\b(?:is|is not)\s+" + FQCN),                 # a test
    re.compile(r"\b(?:lookup|query)\(\s*['\"]" + FQCN),        # a lookup
]
PYTHON_IMPORT = re.compile(r"\bansible_collections\.([a-z0-9_]+\.[a-z0-9_]+)\.")
NOT_COLLECTIONS = {"ansible.builtin", "ansible.legacy"}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for section in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if isinstance(task.get(section), list):
                yield from _tasks(task[section])


def uses_in_yaml(document):
    found = set()
    for task in _tasks(document if isinstance(document, list) else [document]):
        for key, value in task.items():
            match = re.fullmatch(FQCN, str(key))
            if match:
                found.add(match.group(1))
            if key in ("ansible.builtin.include_role", "ansible.builtin.import_role") and isinstance(value, dict):
                match = re.fullmatch(FQCN, str(value.get("name", "")))
                if match:
                    found.add(match.group(1))
            if key == "roles":
                for role in value or []:
                    name = role.get("role", role.get("name", "")) if isinstance(role, dict) else role
                    match = re.fullmatch(FQCN, str(name))
                    if match:
                        found.add(match.group(1))
            if key == "module_defaults" and isinstance(value, dict):
                for group in value:
                    match = re.search(FQCN, str(group))
                    if match:
                        found.add(match.group(1))
    for text in _strings(document):
        for pattern in JINJA_USES:
            found.update(pattern.findall(text))
    return found


def collections_used():
    found = set()
    yaml_files = [ROOT / "site.yml"] + sorted((ROOT / "playbooks").glob("*.yml"))
    yaml_files += sorted(p for p in (ROOT / "roles").glob("*/*/*.yml") if p.parent.name in ("tasks", "handlers"))
    yaml_files += sorted((ROOT / "roles").glob("*/tasks/**/*.yml"))
    for path in yaml_files:
        found |= uses_in_yaml(yaml.safe_load(path.read_text()))
    for path in sorted((ROOT / "roles").glob("*/templates/**/*.j2")) + sorted((ROOT / "roles").glob("*/vars/**/*.yml")):
        text = path.read_text()
        for pattern in JINJA_USES:
            found.update(pattern.findall(text))
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        found.update(PYTHON_IMPORT.findall(path.read_text()))
    return found - NOT_COLLECTIONS - {OWN}


def test_uses_are_read_where_ansible_resolves_them():
    document = [{"name": "x", "community.docker.docker_container": {"name": "a"},
                 "when": "a | community.general.counter and b is ansible.utils.in_any_network",
                 "vars": {"v": "{{ lookup('community.crypto.gpg_fingerprint', 'k') }}"}},
                {"block": [{"ansible.builtin.include_role": {"name": "geerlingguy.extra.role"}}]},
                {"hosts": "all", "module_defaults": {"group/community.mysql.mysql": {}},
                 "roles": [{"role": "other.collection.role"}],
                 "tasks": [{"ansible.posix.sysctl": {"name": "x"}}]},
                {"debug": {"msg": "M(community.zabbix.host) in prose is not a use"}}]
    assert uses_in_yaml(document) - NOT_COLLECTIONS == {
        "community.docker", "community.general", "ansible.utils", "community.crypto", "geerlingguy.extra",
        "community.mysql", "other.collection", "ansible.posix"}


def test_every_collection_used_is_declared_and_every_declared_one_used():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    requirements = {item["name"]: item["version"]
                    for item in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    used = collections_used()
    assert set(galaxy) == used, "galaxy.yml dependencies %s, the content uses %s" % (sorted(galaxy), sorted(used))
    assert requirements == galaxy, "requirements.yml must declare what galaxy.yml does, with the same versions"
