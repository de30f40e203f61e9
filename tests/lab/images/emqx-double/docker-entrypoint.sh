#!/bin/sh
# emqx-double (a TEST DOUBLE of EMQX 4.4.4, not EMQX): the 4.4.4 entrypoint
# rules (node name, EMQX_LOADED_PLUGINS, rpc.port_discovery) live in Python.
exec python3 /opt/emqx/lib/emqx-double/emqx_double_config.py entrypoint "$@"
