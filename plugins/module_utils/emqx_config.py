# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Check EMQX 4.4.4 configuration settings before they reach a node.

EMQX 4.4.4 refuses to start on an emqx.conf key its schema does not know or on
a value of the wrong type; a bad value in a plugin's .conf leaves that plugin
unloaded while the broker runs on (for emqx_auth_mysql: without
authentication). Both are caught here, before any host is changed.
"""

from __future__ import annotations

import re

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_config_keys import KEYS

_SEGMENT = re.compile(r"\$[a-z_]+")
_PATTERNS = []
for _key, _apps in KEYS.items():
    if "$" in _key:
        _regex = "^" + ".".join(
            "[^.]+" if _SEGMENT.fullmatch(part) else re.escape(part) for part in _key.split(".")
        ) + "$"
        _PATTERNS.append((re.compile(_regex), _apps))

_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(f|w|d|h|m|s|ms))+$")
_BYTESIZE = re.compile(r"^[0-9]+(B|KB|MB|GB)?$")
_INTEGER = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_PERCENT = re.compile(r"^[0-9]+(\.[0-9]+)?%$")
_ATOM = re.compile(r"^[^\s]+$")
_IPV4 = r"([0-9]{1,3}\.){3}[0-9]{1,3}"
_IP_PORT = re.compile(r"^(" + _IPV4 + r"|\[?[0-9A-Fa-f:]+\]?):[0-9]{1,5}$")
# cuttlefish's plain flag is on/off only; true/false keys are enums.
_FLAGS = ("on", "off")


def lookup(key, app="emqx"):
    """The datatype of a key for one application, or None when 4.4.4 does not accept it."""
    apps = KEYS.get(key)
    if apps is None:
        for pattern, candidate in _PATTERNS:
            if pattern.match(key):
                apps = candidate
                break
    if not apps:
        return None
    return apps.get(app)


def _alternatives(datatype):
    """Split '[integer, ip]' into its alternatives; enums stay whole."""
    datatype = datatype.strip()
    if datatype.startswith("[") and datatype.endswith("]"):
        inner, parts, depth, current = datatype[1:-1], [], 0, ""
        for char in inner:
            if char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
            if char == "," and depth == 0:
                parts.append(current.strip())
                current = ""
            else:
                current += char
        parts.append(current.strip())
        return parts
    return [datatype]


def _enum_values(datatype):
    match = re.match(r"^\{enum,\s*\[(.*)\]\s*\}$", datatype)
    if not match:
        return None
    return [value.strip().strip('"') for value in match.group(1).split(",")]


def value_fits(value, datatype):
    """Whether a value (as written in a .conf file) fits a cuttlefish datatype."""
    text = str(value).strip()
    for alternative in _alternatives(datatype):
        enum = _enum_values(alternative)
        if enum is not None:
            if text in enum:
                return True
            continue
        if alternative in ("string", "file", "directory"):
            return True
        if alternative == "atom" and _ATOM.match(text):
            return True
        if alternative == "integer" and _INTEGER.match(text):
            return True
        if alternative == "float" and _FLOAT.match(text):
            return True
        if alternative == "flag" and text in _FLAGS:
            return True
        if alternative == "bytesize" and _BYTESIZE.match(text):
            return True
        if alternative.startswith("{duration") and _DURATION.match(text):
            return True
        if alternative.startswith("{percent") and _PERCENT.match(text):
            return True
        if alternative == "ip" and _IP_PORT.match(text):
            return True
    return False


def render_value(value, datatype=None):
    """A value as written in a .conf file: booleans become on/off for flags and
    true/false for the keys whose enum is [true, false]."""
    if isinstance(value, bool):
        if datatype and "flag" in _alternatives(datatype):
            return "on" if value else "off"
        return "true" if value else "false"
    return str(value)


def lines(settings, app="emqx"):
    """``key = value`` lines, sorted by key, values rendered for their datatype."""
    return ["%s = %s" % (key, render_value(settings[key], lookup(key, app))) for key in sorted(settings)]


def errors(settings, app="emqx", where="emqx.conf"):
    """Every problem EMQX 4.4.4 would have with these settings, as sentences."""
    found = []
    for key in sorted(settings):
        datatype = lookup(key, app)
        value = render_value(settings[key], datatype)
        if datatype is None:
            found.append("%s: EMQX 4.4.4 does not accept the key %r" % (where, key))
        elif "\n" in value:
            found.append("%s: %s must be one line" % (where, key))
        elif not value_fits(value, datatype):
            found.append("%s: %s = %r is not a valid %s" % (where, key, value, datatype))
    return found
