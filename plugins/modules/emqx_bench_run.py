#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_bench_run
short_description: Start, follow and collect the load generator processes of an MQTT load test
version_added: 1.1.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Runs the processes the filter M(mqttaction.emqx.emqx_bench_processes) planned for this host (emqtt-bench,
    the collection's C(mqtt_bench.py), or both) as transient systemd services, so each gets its own
    open-file limit whatever the login session has, survives the SSH connection, and is stopped by
    C(timeout) and at the latest by systemd.
  - O(state=started) stops what an earlier run left, then starts every process (those with a C(delay)
    sleep first) and returns at once. O(state=progress) waits O(wait) seconds and returns what the
    processes printed last (connections, subscriptions, messages, errors). O(state=finished) waits until
    every process ended and returns each one's result, parsed from its output.
  - Each process writes its output to C(<run_dir>/<name>.log) and its exit code to C(<name>.rc); both stay
    there for reading after the run.
attributes:
  check_mode:
    support: full
    description: Starts nothing and returns the plan; progress and finished return no figures.
  diff_mode:
    support: none
    description: A load test leaves no configuration behind.
options:
  state:
    description: What to do.
    type: str
    choices: [started, progress, finished]
    required: true
  processes:
    description:
      - The processes, as M(mqttaction.emqx.emqx_bench_processes) plans them (C(name), C(role), C(tool),
        C(clients), C(delay), C(seconds), C(stop_after), C(ok_codes), C(argv), and C(limit) for a publishing
        emqtt-bench).
    type: list
    elements: dict
    required: true
  run_dir:
    description: Directory for the processes' output; made when missing.
    type: path
    required: true
  nofile:
    description: Open-file limit (soft and hard) of every process.
    type: int
    default: 1048576
  wait:
    description: With O(state=progress), seconds to wait before reading.
    type: int
    default: 10
  timeout:
    description: With O(state=finished), seconds to wait at most for the processes to end.
    type: int
    default: 300
notes:
  - Needs systemd (C(systemd-run)) and coreutils' C(timeout) on the generator host.
"""

EXAMPLES = r"""
- name: Start this host's share of the load
  mqttaction.emqx.emqx_bench_run:
    state: started
    processes: "{{ __processes }}"
    run_dir: /opt/mqttaction-emqx-bench/run
    nofile: 1048576

- name: Collect the results once every process ended
  mqttaction.emqx.emqx_bench_run:
    state: finished
    processes: "{{ __processes }}"
    run_dir: /opt/mqttaction-emqx-bench/run
    timeout: 400
  register: __results
"""

RETURN = r"""
started_at:
  description: When the processes were started (seconds since the epoch), read back from the run directory.
  returned: always
  type: float
progress:
  description: With O(state=progress), the figures the processes printed last, summed, and a line for people.
  returned: when state is progress
  type: dict
  sample: {elapsed: 40, connected: 21000, subscribed: 21000, published: 0, received: 0, errors: 0, running: 2,
           line: "40 s: 21,000 connected, 21,000 subscribed, 0 errors, 2 of 2 processes running"}
results:
  description:
    - With O(state=finished), one entry per process (C(name), C(role), C(tool), C(offset), C(rc), C(result)).
      C(result) is C(mqtt_bench.py)'s result, or emqtt-bench's output parsed into the same shape.
  returned: when state is finished
  type: list
  elements: dict
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_bench import latest_counters, parse_emqtt_bench

UNIT_PREFIX = "mqttaction-emqx-bench-"
# The wrapper each service runs: sleep the delay, run the generator under
# timeout, keep its exit code (a code of the shell alone would not say whether
# timeout or the generator ended it).
WRAPPER = ('sleep "$1"; rc_file="$2"; shift 2; '
           'timeout --signal=TERM --kill-after=15 "$@"; echo $? > "$rc_file"')
STARTED = "started_at"
TAIL_BYTES = 262144


def unit(process):
    return UNIT_PREFIX + process["name"]


def active(module, processes):
    names = [unit(process) + ".service" for process in processes]
    dummy, out, dummy_err = module.run_command(["systemctl", "is-active"] + names)
    return [name for name, state in zip(names, out.split()) if state in ("active", "activating", "deactivating")]


def read(path, tail=None):
    try:
        with open(path, "rb") as handle:
            if tail:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - tail))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def start(module, params, processes):
    run_dir = params["run_dir"]
    os.makedirs(run_dir, exist_ok=True)
    leftovers = active(module, processes)
    if leftovers:  # an earlier run that was interrupted: its clients would count twice
        module.run_command(["systemctl", "stop"] + leftovers, check_rc=True)
    for process in processes:
        for suffix in (".log", ".rc"):
            path = os.path.join(run_dir, process["name"] + suffix)
            if os.path.exists(path):
                os.remove(path)
    started = time.time()
    with open(os.path.join(run_dir, STARTED), "w") as handle:
        handle.write("%.3f\n" % started)
    for process in processes:
        log = os.path.join(run_dir, process["name"] + ".log")
        command = ["systemd-run", "--quiet", "--collect", "--unit", unit(process),
                   "--property=LimitNOFILE=%d" % params["nofile"],
                   "--property=RuntimeMaxSec=%d" % (int(process["delay"]) + int(process["stop_after"]) + 60),
                   "--property=StandardOutput=file:%s" % log, "--property=StandardError=inherit",
                   "--property=WorkingDirectory=%s" % run_dir, "--setenv=HOME=%s" % run_dir,
                   "/bin/sh", "-c", WRAPPER, "mqttaction-bench", str(int(process["delay"])),
                   os.path.join(run_dir, process["name"] + ".rc"), str(int(process["stop_after"]))]
        module.run_command(command + [str(arg) for arg in process["argv"]], check_rc=True)
    return started


def started_at(run_dir):
    text = read(os.path.join(run_dir, STARTED)).strip()
    return float(text) if text else None


def progress(module, params, processes):
    time.sleep(max(0, params["wait"]))
    started = started_at(params["run_dir"])
    figures = {"elapsed": int(time.time() - started) if started else 0, "connected": 0, "subscribed": 0,
               "published": 0, "received": 0, "errors": 0}
    for process in processes:
        text = read(os.path.join(params["run_dir"], process["name"] + ".log"), TAIL_BYTES)
        latest = latest_counters(text)
        figures["connected"] += latest.get("connect_succ", 0)
        # A failed connect prints an error line and an EXIT line: count each client once.
        connect_errors = text.count(" connect error - ")
        figures["errors"] += max(latest.get("connect_fail", 0), connect_errors) + max(
            0, text.count(" EXIT for ") - connect_errors)
        if process["role"] == "sub":
            figures["subscribed"] += latest.get("sub", 0)
            figures["received"] += latest.get("recv", 0)
        elif process["role"] == "pub":
            figures["published"] += latest.get("pub", 0)
    figures["running"] = len(active(module, processes))
    figures["line"] = "%d s: %s connected, %s subscribed, %s published, %s received, %s errors; %d of %d processes running" % (
        figures["elapsed"], format(figures["connected"], ","), format(figures["subscribed"], ","),
        format(figures["published"], ","), format(figures["received"], ","), format(figures["errors"], ","),
        figures["running"], len(processes))
    return figures


def finish(module, params, processes):
    deadline = time.time() + params["timeout"]
    running = active(module, processes)
    while running and time.time() < deadline:
        time.sleep(1)
        running = active(module, processes)
    if running:
        module.run_command(["systemctl", "stop"] + running)
        module.fail_json(msg="the load generators %s did not end within %d s; stopped them (their output is in %s)"
                         % (", ".join(running), params["timeout"], params["run_dir"]))
    results, failed = [], []
    started = started_at(params["run_dir"])
    for process in processes:
        base = os.path.join(params["run_dir"], process["name"])
        text = read(base + ".log")
        code = read(base + ".rc").strip()
        rc = int(code) if code.lstrip("-").isdigit() else None
        if process["tool"] == "emqtt_bench":
            result = parse_emqtt_bench(text, int(process["clients"]), process.get("limit"))
        else:
            lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
            result = json.loads(lines[-1][len("RESULT "):]) if lines else None
        if rc not in process["ok_codes"] or result is None:
            failed.append("%s (exit code %s; the end of %s.log: %s)" % (
                process["name"], code or "none", base, " | ".join(text.strip().splitlines()[-5:])))
            continue
        # How long it ran: its exit code was written when it ended. emqtt-bench prints a counter only
        # when it changes, so this is what says it still held its clients after its last line.
        ran = os.path.getmtime(base + ".rc") - started - int(process["delay"]) if started else None
        results.append({"name": process["name"], "role": process["role"], "tool": process["tool"],
                        "offset": int(process["delay"]), "seconds": None if ran is None else max(0, int(ran)),
                        "rc": rc, "result": result})
    if failed:
        module.fail_json(msg="load generators failed: %s" % "; ".join(failed), results=results)
    return results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["started", "progress", "finished"]),
            processes=dict(type="list", elements="dict", required=True),
            run_dir=dict(type="path", required=True),
            nofile=dict(type="int", default=1048576),
            wait=dict(type="int", default=10),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    params, processes = module.params, module.params["processes"]
    for process in processes:
        missing = [key for key in ("name", "role", "tool", "clients", "delay", "stop_after", "ok_codes", "argv")
                   if key not in process]
        if missing:
            module.fail_json(msg="process %r lacks %s (plan it with the emqx_bench_processes filter)"
                             % (process.get("name"), ", ".join(missing)))
    if module.check_mode:
        module.exit_json(changed=False, started_at=None, processes=[process["name"] for process in processes])
    # A load test leaves nothing behind on the host: it reports no change.
    if params["state"] == "started":
        module.exit_json(changed=False, started_at=start(module, params, processes))
    if params["state"] == "progress":
        module.exit_json(changed=False, started_at=started_at(params["run_dir"]),
                         progress=progress(module, params, processes))
    module.exit_json(changed=False, started_at=started_at(params["run_dir"]),
                     results=finish(module, params, processes))


if __name__ == "__main__":
    main()
