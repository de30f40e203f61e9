# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""The error every EMQX reader of this collection raises."""

from __future__ import annotations


class EmqxError(Exception):
    """A node could not be asked, or its answer is not what 4.4.4 gives.

    ``transient`` is true when waiting may help: the node or its management
    plugin is starting, or its container is restarting.
    """

    def __init__(self, message, transient=False):
        super(EmqxError, self).__init__(message)
        self.transient = transient
