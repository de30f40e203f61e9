# emqx-double: a TEST DOUBLE of EMQX 4.4.4 for the mqttaction.emqx lab, not EMQX.
"""The MySQL side of emqx_auth_mysql 4.4.4, for the double's Erlang node.

The node runs this as a port while the emqx_auth_mysql plugin is active and
gives it the plugin's settings in the environment (AUTHDB_* = auth.mysql.*).
It asks MySQL what 4.4.4 asks, the way 4.4.4 asks it:

* every ``'%u'``, ``'%c'``, ``'%a'``, ``'%C'`` and ``'%d'`` in a query becomes a
  bound parameter (username, client id, peer address, certificate CN and
  subject; ``undefined`` when missing), as ``emqx_auth_mysql_cli:parse_query``;
* the auth query must answer the columns ``password`` or ``password, salt``;
  no row is ``not_found`` (the next authenticator, then allow_anonymous,
  decides), a wrong password is ``not_authorized``;
* passwords are checked with ``auth.mysql.password_hash`` as emqx_passwd does:
  plain, md5, sha, sha256, sha512 (lowercase hex), ``salt,<hash>``,
  ``<hash>,salt``, bcrypt (salt = the first 29 characters of the stored
  hash), ``salt,bcrypt`` and ``pbkdf2,<mac>,<iterations>,<dklen>``;
* the super query makes a superuser only when it answers exactly one row
  holding the integer 1;
* ``auth.mysql.ssl = on`` talks TLS to MySQL with ``auth.mysql.ssl.*`` as the
  plugin's ssl options: ``cacertfile`` (``cafile`` is the 4.0-4.2 name),
  ``certfile`` and ``keyfile`` (relative to /opt/emqx), ``verify`` (true:
  verify_peer, the chain against cacertfile only, no system CAs; false:
  verify_none) and ``server_name_indication`` (a host name: sent as SNI and,
  with verify, the name the certificate must carry; ``disable``: no SNI and
  no name check; unset: the host of ``auth.mysql.server``). A server without
  TLS, or a failed handshake, is a MySQL error: the client is refused.

Protocol: one request per line, fields separated by tabs, each field written
as ``x`` + hex of its UTF-8 bytes, or ``-`` for a missing value.
``auth <user> <clientid> <peerhost> <password>`` answers ``ok 0|1``,
``not_found``, ``not_authorized`` or ``error <reason field>``;
``acl <user> <clientid> <peerhost>`` answers ``rows <n>`` and then n lines of
six fields (allow, ipaddr, username, clientid, access, topic).
"""

import hashlib
import os
import re
import ssl
import sys
from dataclasses import dataclass

import bcrypt
import pymysql
from pymysql.constants import CLIENT

# MySQL's client error CR_SSL_CONNECTION_ERROR.
SSL_CONNECTION_ERROR = 2026

VARIABLE = re.compile(r"'%[ucCad]'")


def field(value):
    if value is None:
        return "-"
    return "x" + str(value).encode("utf-8").hex()


def unfield(text):
    if text == "-":
        return None
    return bytes.fromhex(text[1:]).decode("utf-8")


def parse_query(sql):
    """(SQL with %s placeholders, the variables in order), or None for no query."""
    if not sql:
        return None
    parts = VARIABLE.split(sql)
    return "%s".join(part.replace("%", "%%") for part in parts), VARIABLE.findall(sql)


def duration_seconds(text, default):
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h)?\s*", text or "")
    if not match:
        return default
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 0.001}[match.group(2)]
    return int(match.group(1)) * scale


def hash_spec(text):
    parts = [part.strip() for part in (text or "sha256").split(",")]
    if parts[0] == "pbkdf2":
        mac = {"sha": "sha1"}.get(parts[1], parts[1])
        return ("pbkdf2", mac, int(parts[2]), int(parts[3]))
    return tuple(parts)


def hexdigest(name, data):
    return hashlib.new({"sha": "sha1"}.get(name, name), data).hexdigest()


def check_password(spec, stored, salt, password):
    """emqx_passwd:check_pass/2 of 4.4.4, for one row."""
    password = password.encode("utf-8")
    stored = stored.encode("utf-8") if isinstance(stored, str) else stored
    salt = salt.encode("utf-8") if isinstance(salt, str) else salt
    if salt is None:
        if spec == ("bcrypt",):
            try:
                return bcrypt.hashpw(password, stored[:29]) == stored
            except ValueError:
                return False
        if spec == ("plain",):
            return password == stored
        if len(spec) != 1:
            return False
        return hexdigest(spec[0], password).encode() == stored
    if spec[0] == "pbkdf2":
        mac, iterations, dklen = spec[1:]
        return hashlib.pbkdf2_hmac(mac, password, salt, iterations, dklen).hex().encode() == stored
    if spec in (("salt", "bcrypt"), ("bcrypt", "salt")):
        try:
            return bcrypt.hashpw(password, salt) == stored
        except ValueError:
            return False
    if spec[0] == "salt":
        data, name = salt + password, spec[1]
    elif len(spec) == 2 and spec[1] == "salt":
        data, name = password + salt, spec[0]
    else:  # a salt column with an unsalted hash: 4.4.4 finds no clause and fails
        return False
    if name == "plain":
        return data == stored
    return hexdigest(name, data).encode() == stored


def flag(text):
    """cuttlefish's flag datatype: on/true are true."""
    return (text or "").strip().lower() in ("on", "true")


@dataclass(frozen=True)
class TlsSettings:
    """The ssl options emqx_auth_mysql 4.4.4 gives its MySQL connections."""

    cacertfile: str | None
    certfile: str | None
    keyfile: str | None
    verify: bool
    server_name: str | None  # sent as SNI and, with verify, checked; None: neither


def tls_settings(env, host):
    """TlsSettings from the AUTHDB_SSL* variables, or None when auth.mysql.ssl is off."""
    if not flag(env.get("AUTHDB_SSL")):
        return None
    root = env.get("AUTHDB_ROOT") or os.getcwd()

    def path(name):
        value = env.get(name)
        return os.path.join(root, value) if value else None

    sni = (env.get("AUTHDB_SSL_SERVER_NAME_INDICATION") or "").strip()
    return TlsSettings(
        cacertfile=path("AUTHDB_SSL_CACERTFILE") or path("AUTHDB_SSL_CAFILE"),
        certfile=path("AUTHDB_SSL_CERTFILE"),
        keyfile=path("AUTHDB_SSL_KEYFILE"),
        verify=(env.get("AUTHDB_SSL_VERIFY") or "false").strip() == "true",
        server_name=None if sni == "disable" else (sni or host),
    )


def ssl_context(settings):
    """An SSLContext that checks what OTP's ssl checks with these options.

    verify true: the chain must lead to cacertfile (no default CAs, as OTP
    loads none) and, unless server_name_indication = disable, a name of the
    certificate must match server_name. verify false: nothing is checked.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.verify:
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = settings.server_name is not None
        if settings.cacertfile:
            context.load_verify_locations(cafile=settings.cacertfile)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.certfile:
        context.load_cert_chain(settings.certfile, keyfile=settings.keyfile)
    return context


class ServerNameContext(object):
    """Wraps sockets with `context` for `server_name` instead of the host PyMySQL passes."""

    def __init__(self, context, server_name):
        self.context = context
        self.server_name = server_name

    def wrap_socket(self, sock, server_hostname=None):
        return self.context.wrap_socket(sock, server_hostname=self.server_name)


class TlsConnection(pymysql.connections.Connection):
    """PyMySQL's connection with the TLS of auth.mysql.ssl.*.

    PyMySQL silently stays in plain text when the server offers no TLS; the
    plugin's driver refuses, and so does this class. Bad certificate files are
    an SSL connection error, raised when connecting.
    """

    def __init__(self, tls, **kwargs):
        self.double_tls = tls
        # Any non-empty dict turns PyMySQL's TLS on; _create_ssl_ctx builds the context.
        super().__init__(ssl={"auth.mysql.ssl": "on"}, **kwargs)

    def _create_ssl_ctx(self, sslp):
        try:
            context = ssl_context(self.double_tls)
        except (OSError, ValueError) as exc:
            raise pymysql.err.OperationalError(SSL_CONNECTION_ERROR, "SSL connection error: %s" % exc)
        return ServerNameContext(context, self.double_tls.server_name)

    def _request_authentication(self):
        if not self.server_capabilities & CLIENT.SSL:
            raise pymysql.err.OperationalError(
                SSL_CONNECTION_ERROR, "SSL connection error: the server does not support TLS")
        return super()._request_authentication()


class Database(object):
    def __init__(self, env):
        host, port = (env.get("AUTHDB_SERVER") or "127.0.0.1:3306").rpartition(":")[::2]
        if not host:
            host, port = port, "3306"
        self.connect_args = dict(
            host=host, port=int(port), user=env.get("AUTHDB_USERNAME") or "",
            password=env.get("AUTHDB_PASSWORD") or "", database=env.get("AUTHDB_DATABASE") or "mqtt",
            charset="utf8mb4", autocommit=True, connect_timeout=5,
            read_timeout=duration_seconds(env.get("AUTHDB_QUERY_TIMEOUT"), 300))
        self.auth = parse_query(env.get("AUTHDB_AUTH_QUERY"))
        self.super = parse_query(env.get("AUTHDB_SUPER_QUERY"))
        self.acl = parse_query(env.get("AUTHDB_ACL_QUERY"))
        self.spec = hash_spec(env.get("AUTHDB_PASSWORD_HASH"))
        self.tls = tls_settings(env, host)
        self.connection = None

    def connect(self):
        if self.tls is None:
            return pymysql.connect(**self.connect_args)
        return TlsConnection(self.tls, **self.connect_args)

    def query(self, parsed, client):
        sql, variables = parsed
        values = {"'%u'": client["username"] or "undefined", "'%c'": client["clientid"],
                  "'%a'": client["peerhost"], "'%C'": "undefined", "'%d'": "undefined"}
        params = [values[name] for name in variables]
        for attempt in (1, 2):  # auto_reconnect, as the plugin's pool
            try:
                if self.connection is None:
                    self.connection = self.connect()
                with self.connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    columns = [column[0] for column in cursor.description or []]
                    return columns, [list(row) for row in cursor.fetchall()]
            except pymysql.err.OperationalError:
                self.connection = None
                if attempt == 2:
                    raise

    def authenticate(self, client, password):
        columns, rows = self.query(self.auth, client)
        if not rows:
            return ["not_found"]
        if len(rows) != 1 or columns not in (["password"], ["password", "salt"]):
            return ["error", "unexpected answer to auth_query: %s %d rows" % (columns, len(rows))]
        stored = rows[0][0]
        salt = rows[0][1] if len(columns) == 2 else None
        if password is None or stored is None or not check_password(self.spec, stored, salt, password):
            return ["not_authorized"]
        superuser = False
        if self.super is not None:
            try:
                super_rows = self.query(self.super, client)[1]
                superuser = super_rows == [[1]]
            except pymysql.MySQLError:
                superuser = False
        return ["ok", "1" if superuser else "0"]

    def acl_rows(self, client):
        if self.acl is None:
            return []
        return self.query(self.acl, client)[1]


def serve(database, stdin, stdout):
    for line in stdin:
        fields = line.rstrip("\n").split("\t")
        op, values = fields[0], [unfield(text) for text in fields[1:]]
        client = {"username": values[0], "clientid": values[1], "peerhost": values[2]}
        try:
            if op == "auth":
                answer = [database.authenticate(client, values[3])]
            elif op == "acl":
                rows = database.acl_rows(client)
                answer = [["rows", str(len(rows))]] + [[field(value) for value in row] for row in rows]
            else:
                answer = [["error", "unknown request"]]
        except pymysql.MySQLError as exc:
            answer = [["error", str(exc)]]
        for row in answer:
            if row[0] == "error":
                row = ["error", field(row[1])]
            stdout.write("\t".join(row) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve(Database(os.environ), sys.stdin, sys.stdout)
