# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_bench_capacity
short_description: Whether a load generator host can open this many MQTT connections
version_added: 0.2.0
author: mqttaction.emqx contributors
description:
  - A load generator that binds each socket to a source address before connecting (emqtt-bench with
    C(--ifaddr), the collection's C(mqtt_bench.py) the same way) takes one ephemeral port per connection
    at bind time, so each source address holds at most about as many connections as
    C(net.ipv4.ip_local_port_range) has ports (28,232 with Linux's default C(32768 60999)); past that
    C(bind) fails with C(eaddrinuse), the wall of the seed's load test.
  - Returns an empty string when the clients fit, else the explanation, with how many addresses would do.
options:
  _input:
    description: The number of clients this host is to open.
    type: int
    required: true
  addresses:
    description: How many source addresses the clients are spread over.
    type: int
    required: true
  port_range:
    description: The C(net.ipv4.ip_local_port_range) in force, such as C(32768 60999).
    type: str
    required: true
  host:
    description: The host's name, for the message.
    type: str
    default: this host
"""

EXAMPLES = r"""
- name: Fail before any connection when the clients cannot fit
  ansible.builtin.assert:
    that: __problem | length == 0
    fail_msg: "{{ __problem }}"
  vars:
    __problem: "{{ 40000 | mqttaction.emqx.emqx_bench_capacity(addresses=1, port_range='32768 60999') }}"
"""

RETURN = r"""
_value:
  description: Why the clients cannot fit; empty when they can.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_bench import capacity_problem, port_range_size


def emqx_bench_capacity(clients, addresses, port_range, host="this host"):
    try:
        return capacity_problem(int(clients), int(addresses), port_range_size(port_range), host)
    except ValueError as exc:
        raise AnsibleFilterError("emqx_bench_capacity: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"emqx_bench_capacity": emqx_bench_capacity}
