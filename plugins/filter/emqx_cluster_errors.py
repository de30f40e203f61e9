# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_cluster_errors
short_description: The rules only the whole inventory can break, checked before any host changes
version_added: 1.0.0
author: mqttaction.emqx contributors
description:
  - Returns one sentence per broken rule of the cluster as a whole; a rule that holds says nothing.
  - The rules are that every host of the play answered, that no node name is used twice, that
    C(emqx_cluster_seeds) names nodes of the cluster's group, that the host is in that group and that
    every host of the group has the same C(emqx_cookie).
options:
  _input:
    description:
      - C(unreachable) (hosts that failed or did not answer), C(nodes) (every node name of the cluster),
        C(seeds), C(group), C(host), C(in_group) (a boolean) and C(cookies) (how many different cookies the
        group's hosts have).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the cluster as a whole
  ansible.builtin.assert:
    that: errors | length == 0
    fail_msg: "{{ errors | join(' | ') }}"
  vars:
    errors: >-
      {{ {'unreachable': [], 'nodes': ['emqx@a', 'emqx@a'], 'seeds': [], 'group': 'emqx', 'host': 'a',
          'in_group': true, 'cookies': 1} | mqttaction.emqx.emqx_cluster_errors }}
"""

RETURN = r"""
_value:
  description: The broken rules, one sentence each.
  type: list
  elements: string
"""

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_settings import cluster_errors


class FilterModule(object):
    def filters(self):
        return {"emqx_cluster_errors": cluster_errors}
