# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""A client of EMQX 4.4.4's management REST API (``/api/v4`` on port 8081).

4.4.4 (emqx_management with minirest 0.3.7) answers every API call with an
envelope, ``{"code": 0, "data": ...}`` or ``{"code": N, "message": "..."}``;
a request without a valid management application gets HTTP 401 with the body
``UNAUTHORIZED``. ``GET /api/v4/nodes`` lists the running nodes only: a node
that is down is not in the answer at all, and a running node that fails the
RPC appears as ``{"node": ..., "error": ...}``.
"""

from __future__ import annotations

import json
import socket
import ssl
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_errors import EmqxError

DEFAULT_API_URL = "http://127.0.0.1:8081"


def api_argument_spec():
    """The module options of the API path (see the emqx doc fragment's ``api``)."""
    return dict(
        api_url=dict(type="str", default=DEFAULT_API_URL),
        api_username=dict(type="str"),
        api_password=dict(type="str", no_log=True),
        api_timeout=dict(type="float", default=10),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
    )


class ApiError(EmqxError):
    """The API could not be asked, or did not answer as 4.4.4 does.

    ``kind`` is one of ``auth``, ``refused``, ``timeout``, ``tls``, ``http``,
    ``not_json``, ``envelope``, ``unreachable``; ``transient`` is true when
    waiting may help (the node is starting or restarting).
    """

    TRANSIENT = ("refused", "timeout", "unreachable")

    def __init__(self, kind, message, status=None):
        super(ApiError, self).__init__(
            message, transient=kind in self.TRANSIENT or (kind == "http" and (status or 0) >= 500))
        self.kind = kind
        self.status = status


def _reason(exc):
    return getattr(exc, "reason", None) or exc


def _tls_error(url, reason):
    text = str(reason)
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        hint = "The port does not speak TLS: use http:// or the https listener's port"
    elif "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        hint = ("Give the CA that signed the API's certificate with ca_path (the name in api_url "
                "must be in the certificate), or, for a test only, set validate_certs to false")
    else:
        hint = "Check the listener's certificate, ca_path, client_cert and client_key"
    return ApiError("tls", "%s: TLS failed: %s. %s" % (url, text, hint))


class EmqxApi(object):
    """GET requests against one node's management API, with basic auth."""

    def __init__(self, url=DEFAULT_API_URL, username=None, password=None, timeout=10,
                 validate_certs=True, ca_path=None, client_cert=None, client_key=None,
                 opener=open_url):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls = dict(validate_certs=validate_certs, ca_path=ca_path,
                        client_cert=client_cert, client_key=client_key)
        self._open = opener

    @classmethod
    def from_module_params(cls, params):
        return cls(url=params["api_url"], username=params["api_username"],
                   password=params["api_password"], timeout=params["api_timeout"],
                   validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                   client_cert=params["client_cert"], client_key=params["client_key"])

    def get(self, path):
        """The ``data`` of a GET on ``/api/v4/<path>``; raises ApiError."""
        return self.call("GET", path)

    def call(self, method, path, body=None):
        """The ``data`` of a request on ``/api/v4/<path>`` with a JSON body; raises ApiError.

        4.4.4 answers a refused change with HTTP 200 and ``{"message": ...}``
        (``existed``, ``noexisted``...): that is an ApiError of kind ``refused_change``.
        """
        url = "%s/api/v4/%s" % (self.url, path.lstrip("/"))
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._open(url, method=method, data=data, url_username=self.username,
                                  url_password=self.password, force_basic_auth=True,
                                  timeout=self.timeout, headers=headers, **self.tls)
            body = response.read()
        except HTTPError as exc:
            raise self._http_error(url, exc)
        except SSLValidationError as exc:
            raise _tls_error(url, exc)
        except URLError as exc:
            raise self._url_error(url, _reason(exc))
        except UrlsConnectionError as exc:
            raise self._url_error(url, exc)
        except (socket.timeout, ssl.SSLError, OSError) as exc:
            raise self._url_error(url, exc)
        return parse_envelope(url, body)

    def nodes(self):
        """The entries of ``GET /api/v4/nodes`` (running nodes only)."""
        data = self.get("nodes")
        if not isinstance(data, list):
            raise ApiError("envelope", "%s/api/v4/nodes: expected a list of nodes in data, got %r"
                           % (self.url, data))
        return data

    def plugins(self, node):
        """Plugin name to whether it is active, from ``GET /api/v4/nodes/<node>/plugins``."""
        data = self.get("nodes/%s/plugins" % node)
        if not isinstance(data, list) or not all(isinstance(item, dict) and "name" in item for item in data):
            raise ApiError("envelope", "%s/api/v4/nodes/%s/plugins: expected a list of plugins in data, got %r"
                           % (self.url, node, data))
        return dict((item["name"], item.get("active") is True) for item in data)

    def listeners(self, node):
        """The entries of ``GET /api/v4/nodes/<node>/listeners``."""
        data = self.get("nodes/%s/listeners" % node)
        if not isinstance(data, list):
            raise ApiError("envelope", "%s/api/v4/nodes/%s/listeners: expected a list of listeners in data, got %r"
                           % (self.url, node, data))
        return data

    def _http_error(self, url, exc):
        if exc.code == 401:
            return ApiError(
                "auth", "%s: 401 Unauthorized. api_username/api_password are not a management "
                "application of this cluster (4.4.4 creates management.default_application.id/secret "
                "only when its mnesia table is first made; a changed secret in emqx_management.conf "
                "is not applied later)" % url, status=401)
        try:
            body = exc.read()[:200]
        except Exception:  # pylint: disable=broad-except
            body = b""
        return ApiError("http", "%s: HTTP %s %s %r" % (url, exc.code, exc.msg, body), status=exc.code)

    def _url_error(self, url, reason):
        text = str(reason)
        if isinstance(reason, ConnectionRefusedError) or "Connection refused" in text:
            return ApiError("refused", "%s: connection refused; nothing listens there (is the node "
                                       "running with emqx_management, and is the port published?)" % url)
        if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in text:
            return ApiError("timeout", "%s: no answer within %s s (api_timeout)" % (url, self.timeout))
        if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
            return _tls_error(url, text)
        return ApiError("unreachable", "%s: %s" % (url, text))


def parse_envelope(url, body):
    """The ``data`` of a 4.4.4 answer ``{"code": 0, "data": ...}``; raises ApiError."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        answer = json.loads(body)
    except ValueError:
        raise ApiError("not_json", "%s: the answer is not JSON, so this is not EMQX 4.4.4's "
                                   "management API (check api_url): %r" % (url, body[:200]))
    if isinstance(answer, dict) and "code" not in answer and "message" in answer:
        raise ApiError("refused_change", "%s: EMQX refused: %s" % (url, answer["message"]))
    if not isinstance(answer, dict) or "code" not in answer:
        raise ApiError("envelope", "%s: no {\"code\": ..., \"data\": ...} envelope: %r"
                       % (url, body[:200]))
    if answer["code"] != 0:
        raise ApiError("envelope", "%s: EMQX answered code %s: %s"
                       % (url, answer["code"], answer.get("message", "")))
    return answer.get("data")
