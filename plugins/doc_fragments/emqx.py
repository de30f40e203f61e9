# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by the EMQX modules: the management API and emqx_ctl in a container."""

    API = r"""
options:
  api_url:
    description:
      - Base URL of one node's management API (the C(emqx_management) plugin's
        C(management.listener.http), or C(.https)), without C(/api/v4).
      - The modules run on the managed host, so C(127.0.0.1) and the host port the node's
        8081 is published on reach the local node.
    type: str
    default: http://127.0.0.1:8081
  api_username:
    description:
      - AppID of a management application (C(management.default_application.id) in
        C(emqx_management.conf); 4.4.4's default is C(admin)).
      - Not the dashboard's user; the dashboard (18083) has its own users.
    type: str
  api_password:
    description:
      - The application's secret (C(management.default_application.secret)).
      - 4.4.4 creates the default application once, when its mnesia table is first made; a secret
        changed in the file later is not applied and the API then answers 401.
    type: str
  api_timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 10
  validate_certs:
    description: Check the API's TLS certificate when O(api_url) is C(https://). Turn off for tests only.
    type: bool
    default: true
  ca_path:
    description: PEM file of the CA that signed the API's certificate, for C(https://).
    type: path
  client_cert:
    description: PEM client certificate, when the https listener verifies clients.
    type: path
  client_key:
    description: PEM private key of O(client_cert).
    type: path
"""

    CLI = r"""
options:
  container:
    description:
      - Name or ID of the node's Docker container on the managed host; the module runs
        C(docker exec <container> emqx_ctl ...) in it.
      - The container's C(EMQX_NODE_COOKIE) is what emqx_ctl uses to reach the node.
    type: str
  docker_cli:
    description: The docker command, a name in E(PATH) or a full path.
    type: str
    default: docker
"""

    WAIT = r"""
options:
  wait_timeout:
    description:
      - Seconds to keep polling until the cluster is as wanted; C(0) looks once.
      - While waiting, a node that is starting (connection refused, emqx_ctl not answering,
        a container restarting) is asked again; an error that waiting cannot cure (a wrong
        password, no such container, an answer that is not EMQX's) ends the wait at once.
    type: int
    default: 60
  poll_interval:
    description: Seconds between two looks while waiting.
    type: float
    default: 2
"""

    ACTION_GROUP = r"""
attributes:
  action_group:
    description: >-
      Use C(group/mqttaction.emqx.emqx) in C(module_defaults) to give the modules of this group
      their shared options (the API credentials, the waiting) once.
    support: full
    membership:
      - mqttaction.emqx.emqx
"""
