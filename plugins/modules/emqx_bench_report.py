#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_bench_report
short_description: Write the report of an MQTT load test (JSON, Markdown and an SVG plot)
version_added: 0.2.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Joins what the load generators measured (each process's result from M(mqttaction.emqx.emqx_bench_run),
    C(mqtt_bench.py)'s result JSON or emqtt-bench's output parsed into the same shape) with the samples the
    brokers gave meanwhile (M(mqttaction.emqx.emqx_node_stats)), and writes into O(dest) C(report.json) (the
    summary, the timeline and every input, for comparing runs), C(report.md) (a table for people) and the
    plots as SVG - C(connections.svg) (connected and subscribed clients, and each node's connections, over
    time; errors by kind), and when they apply C(messages.svg) (messages in and out per second),
    C(latency.svg) (each second's delivery latency), C(cpu.svg) and C(memory.svg) (each node's container).
  - "The summary gives the clients asked for and held, the ramp, the seconds the full load was held, errors
    by kind, messages published, received and dropped with their rates, delivery latency percentiles
    (from the built-in clients' per-message timestamps) and each node's peaks."
  - "Runs where the files should go, normally the controller (C(delegate_to: localhost))."
attributes:
  check_mode:
    support: full
    description: Computes the summary and writes nothing.
  diff_mode:
    support: none
    description: The files are new every run.
options:
  dest:
    description: Directory to write the report into; made when missing.
    type: path
    required: true
  title:
    description: Title of the report and the plot.
    type: str
    default: MQTT load test
  command_line:
    description: How the load was generated, for the report.
    type: str
    default: ""
  generators:
    description:
      - One entry per load generator process, with C(host), C(role) (C(conn), C(sub), C(pub), C(probe-sub),
        C(probe-pub); default C(conn)), C(offset) (seconds after its host's start it began), C(started_at) (its
        host's start, seconds since the epoch) and either C(result) (mqtt_bench.py's JSON, or what
        M(mqttaction.emqx.emqx_bench_run) parsed) or C(emqtt_bench_output) (what emqtt-bench printed) with
        C(clients) (how many it was asked for).
    type: list
    elements: dict
    required: true
  samples:
    description: The brokers' samples (C(time), C(node), C(connections), C(cpu_percent), C(memory_bytes)).
    type: list
    elements: dict
    default: []
  started_at:
    description:
      - When the run started, in seconds since the epoch; sample times are counted from it. Default the
        earliest C(started_at) of the generators.
    type: float
"""

EXAMPLES = r"""
- name: Write the report of a run on the controller
  mqttaction.emqx.emqx_bench_report:
    dest: "{{ playbook_dir }}/bench/{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}"
    title: 30,000 subscribers through HAProxy
    generators: "{{ results }}"
    samples: "{{ samples }}"
  delegate_to: localhost
"""

RETURN = r"""
summary:
  description: The run in figures (without the timelines, which are in report.json).
  returned: always
  type: dict
  sample: {clients: 30000, connected_peak: 30000, reached_target: true, ramp_seconds: 17.0, connect_rate: 1764.7,
           connect_fail: 0, errors: {}, generator_peak_rss_bytes: 104857600,
           nodes: {emqx@10.0.0.1: {connections_peak: 10000, cpu_percent_peak: 71.5, memory_bytes_peak: 201326592}}}
files:
  description: The files written.
  returned: when not in check mode
  type: list
  elements: path
  sample: [/srv/bench/20261126T101500Z/report.json]
"""

import datetime
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_bench import (
    markdown,
    parse_emqtt_bench,
    summarize,
    charts,
)


def epoch(text):
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            title=dict(type="str", default="MQTT load test"),
            command_line=dict(type="str", default=""),
            generators=dict(type="list", elements="dict", required=True),
            samples=dict(type="list", elements="dict", default=[]),
            started_at=dict(type="float"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    generators = []
    for entry in params["generators"]:
        if isinstance(entry.get("result"), dict):
            result = entry["result"]
        elif isinstance(entry.get("emqtt_bench_output"), str):
            result = parse_emqtt_bench(entry["emqtt_bench_output"], int(entry.get("clients") or 0))
        else:
            module.fail_json(msg="generator %r has neither a result nor emqtt_bench_output" % entry.get("host"))
        begun = entry.get("started_at")
        if not isinstance(begun, (int, float)):
            begun = epoch(result.get("started_at"))
        generators.append({"host": entry.get("host"), "name": entry.get("name"), "role": entry.get("role", "conn"),
                           "tool": entry.get("tool"), "offset": int(entry.get("offset") or 0), "begun": begun,
                           "seconds": entry.get("seconds") if isinstance(entry.get("seconds"), int) else None,
                           "result": result})
    start = params["started_at"]
    if start is None:
        starts = [entry["begun"] for entry in generators if entry["begun"] is not None]
        start = min(starts) if starts else min([sample["time"] for sample in params["samples"]] or [0])
    for entry in generators:  # the hosts started their processes a little apart
        if entry["begun"] is not None:
            entry["offset"] += max(0, int(round(entry["begun"] - start)))
    samples = [dict(sample, t=max(0, int(sample["time"] - start))) for sample in params["samples"]
               if isinstance(sample.get("time"), (int, float))]
    summary = summarize(generators, samples)
    short = dict((key, value) for key, value in summary.items() if key not in ("timeline", "broker_samples"))
    if module.check_mode:
        module.exit_json(changed=False, summary=short)
    os.makedirs(params["dest"], exist_ok=True)
    files = {
        "report.json": json.dumps({"title": params["title"], "command_line": params["command_line"],
                                   "started_at": start, "summary": summary, "generators": generators,
                                   "samples": samples}, indent=2, sort_keys=True) + "\n",
        "report.md": markdown(summary, params["title"], params["command_line"]),
    }
    files.update(charts(summary, params["title"]))
    written = []
    for name, content in files.items():
        path = os.path.join(params["dest"], name)
        with open(path, "w") as handle:
            handle.write(content)
        written.append(path)
    module.exit_json(changed=True, summary=short, files=sorted(written))


if __name__ == "__main__":
    main()
