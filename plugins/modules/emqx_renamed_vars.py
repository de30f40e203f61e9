#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: emqx_renamed_vars
short_description: Warn about inventory variables of the collection that were renamed
version_added: 1.0.0
author: mqttaction.emqx maintainers (@mqttaction)
description:
  - For each old name in O(renamed) that the host's variables still set, prints a deprecation warning naming the
    variable to set instead. The roles read the old names until 2.0.0, so nothing breaks meanwhile.
  - Runs on the controller only; it changes nothing.
options:
  renamed:
    description: Old variable name to new variable name.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Reads variables only.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: Warn about the old group-name variables
  mqttaction.emqx.emqx_renamed_vars:
    renamed:
      emqx_lb_cluster_group: emqx_cluster_group
"""

RETURN = r"""
renamed:
  description: The old names this host still sets, with the new name of each.
  returned: always
  type: dict
  sample: {emqx_lb_cluster_group: emqx_cluster_group}
"""
