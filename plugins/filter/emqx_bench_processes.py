# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_bench_processes
short_description: The load generator processes of one host of an MQTT load test
version_added: 1.1.0
author: mqttaction.emqx contributors
description:
  - From one host's share of the load, the processes that carry it, for M(mqttaction.emqx.emqx_bench_run).
  - "emqtt-bench: one process per C(nofile - 256) clients (each process is bound by its open-file limit),
    the clients and the connect rate split over them, with C(--ifaddr) over the source addresses."
  - "With O(_input.command=sub) and publishers: a publishing process on the subscribers' topics (publisher N
    publishes where subscriber N listens, through the next target, so messages cross nodes); it starts once
    the subscribers had time to connect and stops 5 s before them. emqtt-bench gets C(--payload-hdrs ts), so
    its subscribers print each second's average latency; because that is all emqtt-bench 0.4.19 gives, a
    few pairs of built-in clients (O(_input.probe)) measure each message's latency beside it."
  - "The built-in generator (C(mqtt_bench.py)) is one process whatever the count (it forks its own workers);
    with publishers, both sides run with C(--latency)."
options:
  _input:
    description:
      - "The host's share: C(tool), C(command), C(host), C(clients), C(start), C(rate), C(publishers), C(probe),
        C(addresses), C(targets), C(port), C(keepalive), C(topic), C(probe_topic), C(qos), C(message_interval),
        C(payload_size), C(username), C(password), C(nofile), C(duration), C(emqtt_bench), C(builtin), C(python)."
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Plan this host's processes
  ansible.builtin.set_fact:
    __processes: "{{ __share | mqttaction.emqx.emqx_bench_processes }}"
"""

RETURN = r"""
_value:
  description: One dict per process (C(name), C(role), C(tool), C(clients), C(delay), C(seconds), C(stop_after),
    C(ok_codes), C(argv)).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_bench import plan_processes


def emqx_bench_processes(spec):
    try:
        return plan_processes(dict(spec))
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("emqx_bench_processes: %s (%r)" % (exc, exc)) from exc


class FilterModule(object):
    def filters(self):
        return {"emqx_bench_processes": emqx_bench_processes}
