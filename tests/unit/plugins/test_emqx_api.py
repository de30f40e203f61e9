"""The management API client against a local HTTP server that answers as 4.4.4 does (FACTS.md §5)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ansible_collections.mqttaction.emqx.plugins.module_utils.emqx_api import ApiError, EmqxApi

# The docs' example answer of GET /api/v4/nodes (one node), as 4.4.4 sends it.
ONE_NODE = (b'{"data":[{"version":"develop","uptime":"7 seconds","process_used":315,'
            b'"process_available":2097152,"otp_release":"R21/10.3.5","node_status":"Running",'
            b'"node":"emqx@127.0.0.1","memory_used":"96.75M","memory_total":"118.27M",'
            b'"max_fds":10240,"load5":"2.60","load15":"2.65","load1":"2.31","connections":0}],"code":0}')


def node(name, connections=0):
    return {"node": name, "node_status": "Running", "version": "4.4.4", "uptime": "2 minutes, 21 seconds",
            "otp_release": "24.1.5/12.1.5", "memory_total": "210.34M", "memory_used": "160.19M",
            "process_available": 2097152, "process_used": 471, "max_fds": 1048576,
            "connections": connections, "load1": "0.31", "load5": "0.25", "load15": "0.20"}


@pytest.fixture
def broker(api_server):
    api_server.answer = (200, {}, ONE_NODE)
    return api_server


def api(server, password=None, timeout=5):
    return EmqxApi(server.url + "/", server.user, password or server.secret, timeout=timeout)


def test_one_node_from_the_docs_example(broker):
    nodes = api(broker).nodes()
    assert [entry["node"] for entry in nodes] == ["emqx@127.0.0.1"]
    assert nodes[0]["memory_used"] == "96.75M"
    assert broker.seen[0][0] == "/api/v4/nodes"


def test_three_nodes_and_an_error_entry(broker):
    data = [node("emqx@10.0.0.1", 12), node("emqx@10.0.0.2"), {"node": "emqx@10.0.0.3", "error": "timeout"}]
    broker.answer = (200, {"content-type": "application/json"}, json.dumps({"code": 0, "data": data}).encode())
    assert api(broker).nodes() == data


def test_one_node_endpoint_returns_an_object(broker):
    broker.answer = (200, {}, json.dumps({"code": 0, "data": node("emqx@10.0.0.1")}).encode())
    assert api(broker).get("nodes/emqx@10.0.0.1")["node"] == "emqx@10.0.0.1"
    with pytest.raises(ApiError, match="expected a list of nodes"):
        api(broker).nodes()


def test_401_names_the_options_and_is_not_retried(broker):
    with pytest.raises(ApiError) as info:
        api(broker, password="public").nodes()
    assert info.value.kind == "auth" and info.value.status == 401 and not info.value.transient
    assert "api_username/api_password" in str(info.value)
    assert "public" not in str(info.value)


def test_not_json(broker):
    broker.answer = (200, {"content-type": "text/html"}, b"<html>nginx</html>")
    with pytest.raises(ApiError) as info:
        api(broker).nodes()
    assert info.value.kind == "not_json" and "not EMQX 4.4.4's management API" in str(info.value)
    assert "<html>nginx</html>" in str(info.value) and not info.value.transient


@pytest.mark.parametrize("body", [b'{"code":101,"message":"rpc failed"}', b'[1, 2]', b'{"data": []}'])
def test_bad_envelopes(broker, body):
    broker.answer = (200, {}, body)
    with pytest.raises(ApiError) as info:
        api(broker).nodes()
    assert info.value.kind == "envelope"


def test_server_error_is_transient(broker):
    broker.answer = (500, {}, b"internal error")
    with pytest.raises(ApiError) as info:
        api(broker).nodes()
    assert info.value.kind == "http" and info.value.status == 500 and info.value.transient


def test_404_is_not_transient(broker):
    broker.answer = (404, {}, b"Not Found")
    with pytest.raises(ApiError) as info:
        api(broker).nodes()
    assert info.value.kind == "http" and not info.value.transient


def test_connection_refused_is_transient():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ApiError) as info:
        EmqxApi("http://127.0.0.1:%d" % port, "a", "b").nodes()
    assert info.value.kind == "refused" and info.value.transient
    assert "connection refused" in str(info.value)


def test_timeout_is_transient(broker):
    broker.answer = ("sleep", 1.5, b"")
    with pytest.raises(ApiError) as info:
        api(broker, timeout=0.3).nodes()
    assert info.value.kind == "timeout" and info.value.transient
    assert "api_timeout" in str(info.value)


def test_tls_to_a_plain_http_port_is_a_clear_error(broker):
    url = "https://127.0.0.1:%d" % broker.server_address[1]
    with pytest.raises(ApiError) as info:
        EmqxApi(url, broker.user, broker.secret, timeout=3).nodes()
    assert info.value.kind == "tls" and "does not speak TLS" in str(info.value)


def self_signed(directory):
    """A CA-less self-signed certificate for 127.0.0.1, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emqx-api-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "api.pem", directory / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_https_checks_the_certificate(broker, tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    broker.socket = context.wrap_socket(broker.socket, server_side=True)
    url = "https://127.0.0.1:%d" % broker.server_address[1]
    with pytest.raises(ApiError) as info:
        EmqxApi(url, broker.user, broker.secret, timeout=3).nodes()
    assert info.value.kind == "tls" and "ca_path" in str(info.value)
    assert EmqxApi(url, broker.user, broker.secret, ca_path=str(cert_file)).nodes()[0]["node"] == "emqx@127.0.0.1"
    assert EmqxApi(url, broker.user, broker.secret, validate_certs=False).nodes()
