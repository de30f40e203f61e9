# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: emqx_node_plan
short_description: What each EMQX node of a host must be - its files, settings, container and restart digest
version_added: 1.0.0
author: mqttaction.emqx contributors
description:
  - The one place the C(emqx) role works out its nodes; its tasks only apply the result.
  - Returns each node's C(emqx.conf) settings (what 4.4.4 ships, the role's settings, the TLS listeners' files and
    C(emqx_conf_extra) over them), the plugin settings, every directory and file with its content (for
    M(mqttaction.emqx.emqx_files)), each node's container (for M(community.docker.docker_container)) and its
    digest.
  - A node's digest covers everything it reads at boot but C(cluster.static.seeds), and its container, so a running
    node restarts exactly when its digest changes. It is computed as release 0.2.0 computed it, so upgrading the
    collection restarts no node whose settings did not change.
  - Certificate files are read on the controller, from the paths given.
options:
  _input:
    description:
      - C(settings) (the role's variables by name), C(nodes) (the host's nodes, from
        P(mqttaction.emqx.emqx_instances#filter)), C(seeds) (comma-separated node names), C(certificates)
        (C({dest, mode, srcs}), controller paths) and C(headers) (the managed-file comment for C(#) and C(%)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Work out the nodes of this host
  ansible.builtin.set_fact:
    plan: "{{ {'settings': settings, 'nodes': emqx_nodes, 'seeds': 'emqx@192.0.2.11', 'certificates': [],
               'headers': {'#': '# managed', '%': '% managed'}} | mqttaction.emqx.emqx_node_plan }}"
  no_log: true  # the settings carry secrets
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    conf: {description: The emqx.conf settings, key to value., type: dict}
    plugin_confs: {description: Each plugin's settings, by plugin., type: dict}
    plugins: {description: The plugins every node loads., type: list, elements: str}
    errors: {description: What 4.4.4 would refuse in these settings, one sentence each., type: list, elements: str}
    certificates:
      description: Which certificates the nodes need - C(host) (TLS listeners, https API), C(mysql_ca) (TLS to MySQL), C(any).
      type: dict
    directories: {description: The directories, for M(mqttaction.emqx.emqx_files)., type: list, elements: dict}
    files: {description: The files with their content, for M(mqttaction.emqx.emqx_files)., type: list, elements: dict}
    containers: {description: Each node's container, by node name., type: dict}
    digests: {description: Each node's restart digest, by node name., type: dict}
    checksums: {description: The SHA-1 checksum of each file's content, by path., type: dict}
"""

from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_plan import host_plan


class FilterModule(object):
    def filters(self):
        return {"emqx_node_plan": host_plan}
