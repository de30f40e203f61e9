"""The test double's emqx_auth_mysql side (emqx_double_authdb.py), checked against the
collection's own hashing: two separate implementations must agree."""

from __future__ import annotations

import importlib.util
import io
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_passwd as p

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "lab" / "images" / "emqx-double" / "emqx_double_authdb.py"
spec = importlib.util.spec_from_file_location("emqx_double_authdb", SCRIPT)
authdb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(authdb)


@pytest.mark.parametrize("value", ["plain", "md5", "sha", "sha256", "sha512", "bcrypt", "salt,sha256",
                                   "sha256,salt", "salt,md5", "salt,bcrypt", "pbkdf2,sha256,1000,20",
                                   "pbkdf2,sha,10,32"])
def test_the_double_accepts_what_the_module_stores(value):
    scheme = p.parse(value)
    salt = p.new_salt(scheme)
    stored = p.hash_password(scheme, "pässword", salt)
    double = authdb.hash_spec(value)
    assert authdb.check_password(double, stored, salt, "pässword")
    assert not authdb.check_password(double, stored, salt, "password")


def test_a_salt_column_with_an_unsalted_scheme_fails_as_in_4_4_4():
    assert not authdb.check_password(("sha256",), p.hash_password(("sha256",), "pw"), "salt", "pw")


def test_parse_query_binds_the_quoted_variables_only():
    sql, variables = authdb.parse_query(
        "select password from mqtt_user where username = '%u' and clientid = '%c' and note like '5%' limit 1")
    assert variables == ["'%u'", "'%c'"]
    assert sql == "select password from mqtt_user where username = %s and clientid = %s and note like '5%%' limit 1"
    assert authdb.parse_query("") is None


def test_duration():
    assert authdb.duration_seconds("5s", 300) == 5
    assert authdb.duration_seconds("", 300) == 300
    assert authdb.duration_seconds("1500", 300) == 1.5


class FakeDatabase:
    def __init__(self):
        self.asked = []

    def authenticate(self, client, password):
        self.asked.append((client, password))
        return ["ok", "1"] if password == "pw" else ["not_found"]

    def acl_rows(self, client):
        return [[1, None, "$all", None, 3, "a/%u"], [0, "10.0.0.0/8", None, None, 1, "eq #"]]


def test_protocol_round_trip():
    database = FakeDatabase()
    requests = "\t".join(["auth", authdb.field("älice"), authdb.field("c1"), authdb.field("10.0.0.5"),
                          authdb.field("pw")]) + "\n"
    requests += "\t".join(["auth", "-", authdb.field("c2"), "-", "-"]) + "\n"
    requests += "\t".join(["acl", authdb.field("u"), authdb.field("c"), authdb.field("10.0.0.5")]) + "\n"
    out = io.StringIO()
    authdb.serve(database, io.StringIO(requests), out)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["ok\t1", "not_found"]
    assert database.asked[0] == ({"username": "älice", "clientid": "c1", "peerhost": "10.0.0.5"}, "pw")
    assert database.asked[1][0]["username"] is None
    assert lines[2] == "rows\t2"
    assert [authdb.unfield(f) for f in lines[3].split("\t")] == ["1", None, "$all", None, "3", "a/%u"]


# ---------------------------------------------------------------------------
# auth.mysql.ssl: the settings, the SSL context, and PyMySQL against a small
# fake MySQL server that speaks the handshake (and TLS when it offers it).

TLS_ENV = {"AUTHDB_SERVER": "mysql.test:3306", "AUTHDB_SSL": "on", "AUTHDB_ROOT": "/opt/emqx"}


@pytest.mark.parametrize("value", [None, "", "off", "false"])
def test_tls_is_off_unless_the_flag_is_on(value):
    env = dict(TLS_ENV, AUTHDB_SSL_CACERTFILE="/ca.pem")
    env.pop("AUTHDB_SSL")
    if value is not None:
        env["AUTHDB_SSL"] = value
    assert authdb.tls_settings(env, "mysql.test") is None
    assert authdb.Database(env).tls is None


@pytest.mark.parametrize("value", ["on", "true", "ON"])
def test_tls_flag_on(value):
    settings = authdb.tls_settings(dict(TLS_ENV, AUTHDB_SSL=value), "mysql.test")
    assert settings == authdb.TlsSettings(None, None, None, False, "mysql.test")


def test_tls_files_resolve_against_the_emqx_root_and_cafile_is_the_old_name():
    env = dict(TLS_ENV, AUTHDB_SSL_CAFILE="etc/certs/old-ca.pem", AUTHDB_SSL_CERTFILE="etc/c.pem",
               AUTHDB_SSL_KEYFILE="/abs/k.pem", AUTHDB_SSL_VERIFY="true")
    settings = authdb.tls_settings(env, "mysql.test")
    assert settings.cacertfile == "/opt/emqx/etc/certs/old-ca.pem"
    assert (settings.certfile, settings.keyfile, settings.verify) == ("/opt/emqx/etc/c.pem", "/abs/k.pem", True)
    env["AUTHDB_SSL_CACERTFILE"] = "/new-ca.pem"
    assert authdb.tls_settings(env, "mysql.test").cacertfile == "/new-ca.pem"


@pytest.mark.parametrize("sni, name", [(None, "mysql.test"), ("", "mysql.test"), ("disable", None),
                                       ("db.example", "db.example")])
def test_server_name_indication(sni, name):
    env = dict(TLS_ENV)
    if sni is not None:
        env["AUTHDB_SSL_SERVER_NAME_INDICATION"] = sni
    assert authdb.Database(env).tls.server_name == name


def test_ssl_context_modes():
    ctx = authdb.ssl_context(authdb.TlsSettings(None, None, None, True, "mysql.test"))
    assert (ctx.verify_mode, ctx.check_hostname) == (authdb.ssl.CERT_REQUIRED, True)
    assert ctx.cert_store_stats()["x509_ca"] == 0  # as OTP: no default CAs
    ctx = authdb.ssl_context(authdb.TlsSettings(None, None, None, True, None))
    assert (ctx.verify_mode, ctx.check_hostname) == (authdb.ssl.CERT_REQUIRED, False)
    ctx = authdb.ssl_context(authdb.TlsSettings(None, None, None, False, "mysql.test"))
    assert (ctx.verify_mode, ctx.check_hostname) == (authdb.ssl.CERT_NONE, False)


def test_a_missing_certificate_file_is_an_ssl_connection_error(tmp_path):
    env = dict(TLS_ENV, AUTHDB_SSL_VERIFY="true", AUTHDB_SSL_CACERTFILE=str(tmp_path / "missing.pem"))
    with pytest.raises(authdb.pymysql.err.OperationalError) as info:
        authdb.Database(env).connect()
    assert info.value.args[0] == authdb.SSL_CONNECTION_ERROR
    assert "SSL connection error" in info.value.args[1]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-days", "2", "-subj", f"/CN={ca}", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.pem", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:mysql.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                               "authorityKeyIdentifier=keyid,issuer\n")
    _openssl("req", *ec, "-subj", "/CN=mysql.test", "-keyout", "server.key", "-out", "server.csr", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem", cwd=d)
    return d


class FakeMySQL:
    """Greets like MySQL (offering TLS when given a context), takes any login, answers OK."""

    def __init__(self, tls_context=None):
        self.tls_context = tls_context
        self.server_names = []
        self.tls_used = []
        self.errors = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def close(self):
        self.listener.close()

    @staticmethod
    def read(sock):
        head = b""
        while len(head) < 4:
            chunk = sock.recv(4 - len(head))
            if not chunk:
                raise EOFError
            head += chunk
        length, seq = int.from_bytes(head[:3], "little"), head[3]
        body = b""
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                raise EOFError
            body += chunk
        return seq, body

    @staticmethod
    def write(sock, seq, body):
        sock.sendall(len(body).to_bytes(3, "little") + bytes([seq]) + body)

    def greeting(self):
        caps = authdb.CLIENT.LONG_PASSWORD | authdb.CLIENT.PROTOCOL_41 | authdb.CLIENT.SECURE_CONNECTION \
            | authdb.CLIENT.PLUGIN_AUTH | authdb.CLIENT.CONNECT_WITH_DB | authdb.CLIENT.TRANSACTIONS
        if self.tls_context is not None:
            caps |= authdb.CLIENT.SSL
        return (b"\x0a" + b"8.0.0-fake\0" + struct.pack("<I", 1) + b"abcdefgh\0"
                + struct.pack("<HBHHB", caps & 0xFFFF, 45, 2, caps >> 16, 21) + b"\0" * 10
                + b"ijklmnopqrst\0" + b"mysql_native_password\0")

    def run(self):
        while True:
            try:
                sock = self.listener.accept()[0]
            except OSError:
                return
            try:
                self.serve(sock)
            except (OSError, EOFError) as exc:
                self.errors.append(exc)
            finally:
                sock.close()

    def serve(self, sock):
        self.write(sock, 0, self.greeting())
        seq, body = self.read(sock)
        flags = struct.unpack("<I", body[:4])[0]
        tls = len(body) == 32 and flags & authdb.CLIENT.SSL
        self.tls_used.append(bool(tls))
        if tls:
            def sni(_sslobj, name, _ctx):
                if name is not None:  # called with None when the client sent no SNI
                    self.server_names.append(name)
            self.tls_context.sni_callback = sni
            sock = self.tls_context.wrap_socket(sock, server_side=True)
            seq, body = self.read(sock)  # the login
        ok = b"\x00\x00\x00\x02\x00\x00\x00"
        self.write(sock, seq + 1, ok)
        while True:
            seq, body = self.read(sock)
            if body[:1] == b"\x01":  # COM_QUIT
                return
            self.write(sock, seq + 1, ok)


@pytest.fixture
def server_tls(certs):
    ctx = authdb.ssl.SSLContext(authdb.ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    return ctx


def connect(port, host="127.0.0.1", root=None, **ssl_env):
    """Database.connect() with auth.mysql.ssl = on and auth.mysql.ssl.<key> = value (when given)."""
    env = {"AUTHDB_SERVER": f"{host}:{port}", "AUTHDB_USERNAME": "u", "AUTHDB_PASSWORD": "p"}
    env.update({"AUTHDB_SSL_" + k.upper(): v for k, v in ssl_env.items()})
    if ssl_env:
        env["AUTHDB_SSL"] = "on"
    if root:
        env["AUTHDB_ROOT"] = root
    database = authdb.Database(env)
    database.connect_args["connect_timeout"] = 3
    connection = database.connect()
    connection.close()


def test_plain_connection_without_tls():
    server = FakeMySQL()
    try:
        connect(server.port)
        assert server.tls_used == [False]
    finally:
        server.close()


def test_tls_refused_when_the_server_offers_none():
    server = FakeMySQL()
    try:
        with pytest.raises(authdb.pymysql.err.OperationalError) as info:
            connect(server.port, verify="false")
        assert info.value.args[0] == authdb.SSL_CONNECTION_ERROR
    finally:
        server.close()


@pytest.mark.parametrize("host, options, sni", [
    # verify with the right CA: the host of auth.mysql.server is the name checked
    ("127.0.0.1", {"verify": "true"}, None),
    # a name of the certificate given as server_name_indication: sent and checked
    ("127.0.0.1", {"verify": "true", "server_name_indication": "mysql.test"}, "mysql.test"),
    # disable: the chain only, though the certificate does not name localhost
    ("localhost", {"verify": "true", "server_name_indication": "disable"}, None),
    # no verification: any CA
    ("localhost", {"verify": "false", "cacertfile": "other-ca.pem"}, "localhost"),
])
def test_tls_accepted(certs, server_tls, host, options, sni):
    server = FakeMySQL(server_tls)
    options = {"cacertfile": "ca.pem", **options}
    try:
        connect(server.port, host, root=str(certs), **options)
        assert server.tls_used == [True]
        assert server.server_names == ([sni] if sni else [])
    finally:
        server.close()


@pytest.mark.parametrize("host, options", [
    ("127.0.0.1", {"verify": "true", "cacertfile": "other-ca.pem"}),
    ("127.0.0.1", {"verify": "true", "cacertfile": "other-ca.pem", "server_name_indication": "disable"}),
    ("localhost", {"verify": "true", "cacertfile": "ca.pem"}),
    ("127.0.0.1", {"verify": "true", "cacertfile": "ca.pem", "server_name_indication": "db.example"}),
    ("127.0.0.1", {"verify": "true"}),  # no cacertfile: nothing to trust
])
def test_tls_refused(certs, server_tls, host, options):
    server = FakeMySQL(server_tls)
    try:
        with pytest.raises(authdb.pymysql.err.OperationalError) as info:
            connect(server.port, host, root=str(certs), **options)
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    finally:
        server.close()


def test_a_tls_failure_is_answered_as_a_mysql_error(certs, server_tls):
    server = FakeMySQL(server_tls)
    try:
        env = {"AUTHDB_SERVER": f"127.0.0.1:{server.port}", "AUTHDB_SSL": "on", "AUTHDB_SSL_VERIFY": "true",
               "AUTHDB_SSL_CACERTFILE": str(certs / "other-ca.pem"),
               "AUTHDB_AUTH_QUERY": "select password from mqtt_user where username = '%u' limit 1"}
        request = "\t".join(["auth", authdb.field("u"), authdb.field("c"), authdb.field("10.0.0.5"),
                             authdb.field("pw")]) + "\n"
        out = io.StringIO()
        authdb.serve(authdb.Database(env), io.StringIO(request), out)
        status, reason = out.getvalue().rstrip("\n").split("\t")
        assert status == "error"
        assert "CERTIFICATE_VERIFY_FAILED" in authdb.unfield(reason)
    finally:
        server.close()
