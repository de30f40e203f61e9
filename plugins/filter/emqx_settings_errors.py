# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_settings_errors
short_description: Every rule the emqx role's settings must keep, checked before any host changes
version_added: 1.0.0
author: mqttaction.emqx contributors
description:
  - Takes the C(emqx) role's variables by name and returns one sentence per broken rule, naming the variable, what is
    wrong and what to do; a rule that holds says nothing. Numbers are bounded, networks and addresses are read with
    Python's C(ipaddress), settings that a Docker deployment decides otherwise (C(node.name) in C(emqx_conf_extra),
    for example) are refused with the variable to use instead, and every C(emqx.conf) and plugin key is checked
    against the keys EMQX 4.4.4 accepts.
  - Secrets are judged but never repeated.
options:
  _input:
    description: The role's variables, by name.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the settings
  ansible.builtin.assert:
    that: errors | length == 0
    fail_msg: "{{ errors | join(' | ') }}"
  vars:
    errors: "{{ {'emqx_rolling_batch': 0} | mqttaction.emqx.emqx_settings_errors }}"
"""

RETURN = r"""
_value:
  description: The broken rules, one sentence each.
  type: list
  elements: string
"""

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_settings import setting_errors


class FilterModule(object):
    def filters(self):
        return {"emqx_settings_errors": setting_errors}
