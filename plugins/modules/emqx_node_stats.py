#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_node_stats
short_description: Sample EMQX nodes while a load test runs (connections, CPU, memory)
version_added: 0.2.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - Every O(interval) seconds for O(duration) seconds, reads for each node on this host the number of
    MQTT connections it holds (C(GET /api/v4/nodes/<node>), field C(connections)), its message counters
    (C(messages.received), C(messages.sent), C(delivery.dropped) and C(messages.dropped.no_subscribers) of
    C(GET /api/v4/nodes/<node>/metrics), cumulative) and the CPU and memory its container uses (from the
    container's cgroup, v1 or v2; the node's process otherwise).
  - Meant to run with C(async) on every EMQX host while load generators run, so that the report of
    a load test shows the brokers' side; playbook C(mqttaction.emqx.bench) does that.
  - Reads only; check mode samples too.
extends_documentation_fragment:
  - mqttaction.emqx.emqx.action_group
  - mqttaction.emqx.emqx.api
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: It changes nothing.
options:
  nodes:
    description: The nodes of this host.
    type: list
    elements: dict
    required: true
    suboptions:
      node:
        description: Node name, as the API lists it.
        type: str
        required: true
      container:
        description: The node's container.
        type: str
        required: true
      api_url:
        description: The node's management API (default the module's O(api_url)).
        type: str
  duration:
    description: Seconds to sample for.
    type: float
    required: true
  interval:
    description: Seconds between samples.
    type: float
    default: 1
  docker_cli:
    description: The docker command, a name in E(PATH) or a full path.
    type: str
    default: docker
notes:
  - CPU is given in percent of one core; memory is the cgroup's usage less its inactive file cache, as
    C(docker stats) shows it.
"""

EXAMPLES = r"""
- name: Sample this host's node for a 60 s load test
  mqttaction.emqx.emqx_node_stats:
    nodes: [{node: emqx@10.0.0.1, container: emqx}]
    api_username: mqttaction
    api_password: "{{ vault_emqx_api_secret }}"
    duration: 70
  async: 100
  poll: 0
  register: sampler
"""

RETURN = r"""
samples:
  description: One entry per node and sample; C(time) is seconds since the epoch. A figure that could not be read is null.
  returned: always
  type: list
  elements: dict
  sample:
    - {time: 1764150000.5, node: emqx@10.0.0.1, connections: 9800, cpu_percent: 63.2, memory_bytes: 184549376,
       messages_received: 120311, messages_sent: 120290, delivery_dropped: 0, no_subscribers: 21}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import EmqxApi, api_argument_spec
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_errors import EmqxError

CGROUP = "/sys/fs/cgroup"
# The node's message counters (GET /api/v4/nodes/<node>/metrics), cumulative since it started.
METRICS = (("messages_received", "messages.received"), ("messages_sent", "messages.sent"),
           ("delivery_dropped", "delivery.dropped"), ("no_subscribers", "messages.dropped.no_subscribers"))


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def cgroup_paths(pid):
    """{controller: path} of a process, from /proc/<pid>/cgroup ('' is cgroup v2's unified tree)."""
    paths = {}
    for line in (read("/proc/%s/cgroup" % pid) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


class Usage(object):
    """CPU time (seconds) and memory (bytes) of a container, from its cgroup or its main process."""

    def __init__(self, pid):
        self.pid = pid
        self.paths = cgroup_paths(pid)

    def cpu_seconds(self):
        if "cpuacct" in self.paths:
            text = read("%s/cpuacct%s/cpuacct.usage" % (CGROUP, self.paths["cpuacct"]))
            if text and text.strip().isdigit():
                return int(text) / 1e9
        if "" in self.paths:
            for line in (read("%s%s/cpu.stat" % (CGROUP, self.paths[""])) or "").splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        fields = (read("/proc/%s/stat" % self.pid) or "").rsplit(")", 1)[-1].split()
        if len(fields) > 12:
            return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
        return None

    def memory_bytes(self):
        if "memory" in self.paths:
            base = "%s/memory%s" % (CGROUP, self.paths["memory"])
            usage, stats = read(base + "/memory.usage_in_bytes"), read(base + "/memory.stat")
            if usage and usage.strip().isdigit():
                inactive = 0
                for line in (stats or "").splitlines():
                    if line.startswith("total_inactive_file "):
                        inactive = int(line.split()[1])
                return max(0, int(usage) - inactive)
        if "" in self.paths:
            current = read("%s%s/memory.current" % (CGROUP, self.paths[""]))
            if current and current.strip().isdigit():
                inactive = 0
                for line in (read("%s%s/memory.stat" % (CGROUP, self.paths[""])) or "").splitlines():
                    if line.startswith("inactive_file "):
                        inactive = int(line.split()[1])
                return max(0, int(current) - inactive)
        for line in (read("/proc/%s/status" % self.pid) or "").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None


def container_pid(module, docker, container):
    rc, out, err = module.run_command([docker, "inspect", "--format", "{{.State.Pid}}", container])
    if rc != 0 or not out.strip().isdigit() or out.strip() == "0":
        module.fail_json(msg="container %s does not run here (docker inspect: %s)" % (container, (err or out).strip()))
    return out.strip()


def main():
    argument_spec = dict(
        nodes=dict(type="list", elements="dict", required=True, options=dict(
            node=dict(type="str", required=True), container=dict(type="str", required=True),
            api_url=dict(type="str"))),
        duration=dict(type="float", required=True),
        interval=dict(type="float", default=1.0),
        docker_cli=dict(type="str", default="docker"),
    )
    argument_spec.update(api_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, required_together=[("api_username", "api_password")],
                           supports_check_mode=True)
    params = module.params
    docker = module.get_bin_path(params["docker_cli"], required=True)
    watched = []
    for entry in params["nodes"]:
        api = EmqxApi.from_module_params(dict(params, api_url=entry["api_url"] or params["api_url"]))
        watched.append((entry["node"], api, Usage(container_pid(module, docker, entry["container"]))))

    samples = []
    previous = {}
    deadline = time.time() + params["duration"]
    while True:
        started = time.time()
        for node, api, usage in watched:
            try:
                connections = api.get("nodes/%s" % node).get("connections")
            except (EmqxError, AttributeError):
                connections = None
            try:
                metrics = api.get("nodes/%s/metrics" % node)
            except EmqxError:
                metrics = None
            metrics = metrics if isinstance(metrics, dict) else {}
            cpu, now = usage.cpu_seconds(), time.time()
            cpu_percent = None
            if cpu is not None and node in previous:
                before_cpu, before_time = previous[node]
                cpu_percent = round(100.0 * (cpu - before_cpu) / max(1e-6, now - before_time), 1)
            if cpu is not None:
                previous[node] = (cpu, now)
            sample = {"time": round(now, 3), "node": node, "connections": connections,
                      "cpu_percent": cpu_percent, "memory_bytes": usage.memory_bytes()}
            for key, metric in METRICS:
                sample[key] = metrics.get(metric)
            samples.append(sample)
        if started + params["interval"] > deadline:
            break
        time.sleep(max(0.0, started + params["interval"] - time.time()))
    module.exit_json(changed=False, samples=samples)


if __name__ == "__main__":
    main()
