"""What one ansible-playbook -vvv run cost each host, from its output.

Module runs: the SSH commands that start Python on the host (with pipelining,
one per module run; an action such as template may run several). Tasks: the
recap's ok + changed ... counts. Prints JSON:
{"hosts": {host: {"ok": n, "changed": n, ...}}, "module_runs_by_address": {address: n}}
  python3 tests/lab/run_counts.py LOG
"""

from __future__ import annotations

import json
import re
import sys

EXEC = re.compile(r"^<([^>]+)> SSH: EXEC .*python3")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)")


def counts(lines):
    runs, hosts = {}, {}
    for line in lines:
        match = EXEC.match(line)
        if match:
            runs[match.group(1)] = runs.get(match.group(1), 0) + 1
            continue
        match = RECAP.match(line)
        if match:
            hosts[match.group(1)] = dict(zip(("ok", "changed", "unreachable", "failed", "skipped"),
                                             map(int, match.groups()[1:])))
    return {"hosts": hosts, "module_runs_by_address": runs}


def main(argv):
    with open(argv[1], encoding="utf-8", errors="replace") as log:
        print(json.dumps(counts(log), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
