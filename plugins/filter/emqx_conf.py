# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_conf
short_description: Render EMQX 4.4.4 settings as C(key = value) lines of a .conf file
version_added: 0.1.0
author: mqttaction.emqx contributors
description:
  - Renders a dict of settings as the lines of C(emqx.conf) or of a plugin's C(.conf), sorted by key.
  - Booleans are written as V(on)/V(off) for the keys 4.4.4 types as flags and as V(true)/V(false) for
    the others.
  - Use P(mqttaction.emqx.emqx_conf_errors#filter) first to refuse settings 4.4.4 would reject.
options:
  _input:
    description: The settings, key to value.
    type: dict
    required: true
  app:
    description: V(emqx) for C(emqx.conf), or the plugin the C(.conf) file belongs to.
    type: string
    default: emqx
"""

EXAMPLES = r"""
- name: Write a plugin configuration
  ansible.builtin.copy:
    dest: /opt/emqx/etc/plugins/emqx_retainer.conf
    content: "{{ {'retainer.storage_type': 'ram'} | mqttaction.emqx.emqx_conf(app='emqx_retainer') | join('\n') }}\n"
    mode: "0644"
"""

RETURN = r"""
_value:
  description: One C(key = value) string per setting.
  type: list
  elements: string
"""

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_config import errors, lines


def emqx_conf(settings, app="emqx"):
    return lines(settings, app)


def emqx_conf_errors(settings, app="emqx", where=None):
    return errors(settings, app, where or ("emqx.conf" if app == "emqx" else "plugins/%s.conf" % app))


class FilterModule:
    """EMQX configuration filters."""

    def filters(self):
        return {"emqx_conf": emqx_conf, "emqx_conf_errors": emqx_conf_errors}
