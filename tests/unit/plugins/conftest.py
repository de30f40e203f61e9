"""A local HTTP server that answers as EMQX 4.4.4's management API does (FACTS.md §5)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

API_USER = "mqttaction"
API_SECRET = "s3cret"


class ManagementApi(BaseHTTPRequestHandler):
    """Answers server.answer, (status, headers, body) or ("sleep", seconds, body), else
    ``{"code":0,"data":server.nodes}``; ``/api/v4/nodes/<node>/plugins`` gets the next of
    server.plugins[node] (a list of answers, the last one kept), ``.../listeners``
    server.listeners[node]; a request without
    API_USER:API_SECRET gets 4.4.4's 401."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        data = self.server.nodes
        parts = self.path.split("/")
        if len(parts) == 6 and parts[3] == "nodes" and parts[5] == "plugins":
            answers = self.server.plugins.get(parts[4], [[]])
            data = answers.pop(0) if len(answers) > 1 else answers[0]
        if len(parts) == 6 and parts[3] == "nodes" and parts[5] == "listeners":
            data = self.server.listeners.get(parts[4], [])
        answer = self.server.answer or (200, {}, json.dumps({"code": 0, "data": data}).encode())
        status, headers, body = answer
        if status == "sleep":
            time.sleep(headers)
            status, headers = 200, {}
        expected = "Basic " + base64.b64encode(("%s:%s" % (API_USER, API_SECRET)).encode()).decode()
        if self.headers.get("Authorization") != expected and status == 200:
            status, headers, body = 401, {"WWW-Authenticate": 'Basic Realm="minirest-server"'}, b"UNAUTHORIZED"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ManagementApi)
    server.seen = []
    server.answer = None
    server.nodes = []
    server.plugins = {}
    server.listeners = {}
    server.url = "http://127.0.0.1:%d" % server.server_address[1]
    server.user, server.secret = API_USER, API_SECRET
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
