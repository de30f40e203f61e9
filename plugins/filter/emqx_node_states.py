# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_node_states
short_description: Which of a host's EMQX nodes run, and which of them run with other settings than they must
version_added: 1.0.0
author: mqttaction.emqx contributors
description:
  - Reads the containers M(community.docker.docker_host_info) lists (with O(community.docker.docker_host_info#module:verbose_output=true))
    and tells, for the nodes of one host, which run and which of those carry another configuration digest
    (the label C(org.mqttaction.emqx.config)) than the one they must have now.
options:
  _input:
    description: The C(containers) that M(community.docker.docker_host_info) returned.
    type: list
    elements: dict
    required: true
  nodes:
    description: The host's nodes (the C(emqx_nodes) fact), each with C(name) and C(container).
    type: list
    elements: dict
    required: true
  digests:
    description: The digest each node must carry, by node name.
    type: dict
    required: true
  restart_all:
    description: Count every running node as pending (a rolling restart of all of them).
    type: bool
    default: false
  cookie:
    description: The digest of the cookie the nodes must run with (the label C(org.mqttaction.emqx.cookie)).
    type: str
"""

EXAMPLES = r"""
- name: Note which nodes run, and which of them wait for a restart
  ansible.builtin.set_fact:
    states: "{{ containers.containers | mqttaction.emqx.emqx_node_states(emqx_nodes, digests) }}"
"""

RETURN = r"""
_value:
  description: The nodes by state.
  type: dict
  contains:
    running: {description: Names of the nodes whose container runs., type: list, elements: str}
    pending: {description: Names of running nodes whose digest differs (or all, with O(restart_all))., type: list, elements: str}
    changed: {description: "Names of running nodes whose digest differs, with or without O(restart_all).", type: list, elements: str}
    cookie_changed:
      description: Node names (name@host) of running nodes whose container carries another cookie digest than O(cookie).
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError

DIGEST_LABEL = "org.mqttaction.emqx.config"
COOKIE_LABEL = "org.mqttaction.emqx.cookie"


def node_states(containers, nodes, digests, restart_all=False, cookie=None):
    by_name = {}
    for container in containers or []:
        if not isinstance(container, dict) or "Names" not in container:
            raise AnsibleFilterError("emqx_node_states wants docker_host_info's containers with verbose_output=true")
        for name in container["Names"] or []:
            by_name[name.lstrip("/")] = container
    running, pending, changed, cookie_changed = [], [], [], []
    for node in nodes:
        container = by_name.get(node["container"])
        if container is None or container.get("State") != "running":
            continue
        labels = container.get("Labels") or {}
        running.append(node["name"])
        differs = labels.get(DIGEST_LABEL) != digests.get(node["name"])
        if differs:
            changed.append(node["name"])
        if restart_all or differs:
            pending.append(node["name"])
        # Containers made before the label was there say nothing about their cookie.
        if cookie is not None and labels.get(COOKIE_LABEL, cookie) != cookie:
            cookie_changed.append(node["node"])
    return {"running": running, "pending": pending, "changed": changed, "cookie_changed": cookie_changed}


class FilterModule(object):
    def filters(self):
        return {"emqx_node_states": node_states}
