#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_bench_compare
short_description: Put the reports of MQTT load tests side by side
version_added: 1.1.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Reads the C(report.json) of two or more runs of the playbook C(mqttaction.emqx.bench) and returns (and,
    with O(dest), writes) one Markdown table with a column per run (clients held, ramp, how long the full load
    was held, errors, messages and drops, latency percentiles, and each node's connections, CPU and memory).
  - "Runs where the reports are, normally the controller (C(delegate_to: localhost)); the playbook
    C(mqttaction.emqx.bench_compare) does that."
attributes:
  check_mode:
    support: full
    description: Reads the reports and writes nothing.
  diff_mode:
    support: none
    description: The comparison is a new file.
options:
  reports:
    description: The runs, each a report directory or its C(report.json), oldest first.
    type: list
    elements: path
    required: true
  labels:
    description: A column heading per run; default each report directory's name.
    type: list
    elements: str
    default: []
  dest:
    description: File to write the table into (Markdown); nothing is written without it.
    type: path
"""

EXAMPLES = r"""
- name: Compare two load tests
  mqttaction.emqx.emqx_bench_compare:
    reports:
      - ~/.ansible/mqttaction-emqx/bench/20261205T120000Z
      - ~/.ansible/mqttaction-emqx/bench/20261205T123000Z
    labels: [three nodes, through HAProxy]
    dest: ~/.ansible/mqttaction-emqx/bench/compare.md
  delegate_to: localhost
"""

RETURN = r"""
markdown:
  description: The table.
  returned: always
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_bench import compare


def main():
    module = AnsibleModule(
        argument_spec=dict(
            reports=dict(type="list", elements="path", required=True),
            labels=dict(type="list", elements="str", default=[]),
            dest=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if len(params["reports"]) < 2:
        module.fail_json(msg="reports: give two runs or more to compare (report directories or their report.json)")
    if params["labels"] and len(params["labels"]) != len(params["reports"]):
        module.fail_json(msg="labels: one per report (%d reports, %d labels)"
                         % (len(params["reports"]), len(params["labels"])))
    runs = []
    for index, path in enumerate(params["reports"]):
        file_name = os.path.join(path, "report.json") if os.path.isdir(path) else path
        try:
            with open(file_name) as handle:
                report = json.load(handle)
            report["summary"]["clients"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            module.fail_json(msg="reports: %s is not the report.json of a load test (%s)" % (file_name, exc))
        label = params["labels"][index] if params["labels"] else os.path.basename(os.path.dirname(file_name))
        runs.append((label, report))
    text = compare(runs)
    if params["dest"] and not module.check_mode:
        with open(params["dest"], "w") as handle:
            handle.write(text)
    module.exit_json(changed=bool(params["dest"]) and not module.check_mode, markdown=text)


if __name__ == "__main__":
    main()
