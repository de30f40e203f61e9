"""Put the collections galaxy.yml declares beside an installed mqttaction.emqx, and nothing else.

    dist_collections.py COLLECTIONS_PATH

Galaxy is unreachable here, so the declared collections are taken out of
PyPI's ansible package in the running Python (ansible_collections/<ns>/<name>),
each checked against the lowest version galaxy.yml declares. With
ANSIBLE_COLLECTIONS_PATH set to COLLECTIONS_PATH and
ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false, a run sees what a Galaxy install of the
tarball would give a user.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import ansible_collections
import yaml
from ansible.module_utils.compat.version import LooseVersion

ROOT = Path(__file__).resolve().parents[2]


def source_of(fqcn):
    namespace, name = fqcn.split(".")
    for base in ansible_collections.__path__:
        candidate = Path(base) / namespace / name
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    raise SystemExit("%s is not in this Python's ansible package" % fqcn)


def main(argv=None):
    target = Path((argv or sys.argv[1:])[0]) / "ansible_collections"
    declared = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    for fqcn, spec in sorted(declared.items()):
        source = source_of(fqcn)
        version = json.loads((source / "MANIFEST.json").read_text())["collection_info"]["version"]
        lowest = spec.lstrip(">=").strip()
        if not spec.startswith(">=") or LooseVersion(version) < LooseVersion(lowest):
            raise SystemExit("%s %s does not satisfy the declared %s" % (fqcn, version, spec))
        destination = target / fqcn.replace(".", "/")
        shutil.rmtree(destination, ignore_errors=True)
        shutil.copytree(source, destination, symlinks=True)
        print("%s %s (declared %s)" % (fqcn, version, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
