# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Deprecation warnings for renamed inventory variables, on the controller (no module run on the host)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("renamed",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        renamed = self._task.args.get("renamed") or {}
        found = dict((old, new) for old, new in sorted(renamed.items()) if old in (task_vars or {}))
        for old, new in found.items():
            display.deprecated(
                msg="The variable %s is renamed %s: set %s instead" % (old, new, new),
                version="2.0.0",  # the next major release stops reading them
                collection_name="mqttaction.emqx",
            )
        result.update(changed=False, renamed=found)
        return result
