# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_cluster_split
short_description: Tell whether EMQX nodes disagree about who is in the cluster (split brain)
version_added: 0.2.0
author: mqttaction.emqx contributors
description:
  - Takes what each node sees running (for example the results of M(mqttaction.emqx.emqx_cluster_info)
    asked on every node) and groups the nodes by it.
  - Returns an empty string when every node sees the same running nodes, else a message that names the
    parts, says which one EMQX 4.4.4's autoheal would keep (the majority; on a tie the part with the oldest
    node; nothing with more than two parts) and how to heal by hand.
options:
  _input:
    description:
      - The views, as a dict of asked node to the list of running nodes it sees, or as a list of
        M(mqttaction.emqx.emqx_cluster_info) results whose C(item.node) names the asked node.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Fail when the nodes disagree about the membership
  ansible.builtin.assert:
    that: __split | length == 0
    fail_msg: "{{ __split }}"
  vars:
    __split: "{{ {'emqx@10.0.0.1': ['emqx@10.0.0.1', 'emqx@10.0.0.2'], 'emqx@10.0.0.3': ['emqx@10.0.0.3']}
                 | mqttaction.emqx.emqx_cluster_split }}"
"""

RETURN = r"""
_value:
  description: Why the cluster is split and how to heal it; empty when the nodes agree.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_membership import split_message


def emqx_cluster_split(views):
    if isinstance(views, list):
        try:
            views = dict((result["item"]["node"], result["running_nodes"]) for result in views)
        except (KeyError, TypeError) as exc:
            raise AnsibleFilterError("emqx_cluster_split: each result needs item.node and running_nodes (%s)" % exc)
    if not isinstance(views, dict):
        raise AnsibleFilterError("emqx_cluster_split: expected a dict of node to running nodes, got %r" % (views,))
    return split_message(views)


class FilterModule(object):
    def filters(self):
        return {"emqx_cluster_split": emqx_cluster_split}
