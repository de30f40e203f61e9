"""Check every certificate in a CA directory the way Python 3.13 checks a server's, and print JSON.

    cert_check.py CA_DIR
        {"ca.pem": "ok", "lab-host1.pem": "ok", "lab-host4.pem": "ok"}

Python 3.13 verifies with OpenSSL's X509_V_FLAG_X509_STRICT by default (it refuses,
for example, a CA without a critical basicConstraints or a certificate without
an authority key identifier). This sets that flag explicitly, so the check is
the same on the Python 3.11 of a Debian 12 controller: every certificate with
its key beside it (NAME.pem, NAME.key) is served on loopback and verified by a
client that trusts only ca.pem and checks the first name in the certificate.
Exits 1 when any certificate fails.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from pathlib import Path

from cryptography import x509


def first_name(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    for kind in (x509.IPAddress, x509.DNSName):
        found = names.get_values_for_type(kind)
        if found:
            return str(found[0])
    raise ValueError("no IP or DNS name")


def strict_client(ca_file):
    context = ssl.create_default_context(cafile=str(ca_file))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def handshake(ca_file, cert, key):
    """Serve cert/key on loopback and connect to it with a strict client; '' when it verifies."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(cert), str(key))
    name = first_name(cert)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _addr = listener.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with strict_client(ca_file).wrap_socket(raw, server_hostname=name):
                return ""
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        return str(exc)
    finally:
        listener.close()
        thread.join(5)


def main(argv=None):
    directory = Path((argv or sys.argv[1:])[0])
    ca_file = directory / "ca.pem"
    results = {}
    # The CA is checked as the anchor of every chain below; here only that it loads as one.
    results["ca.pem"] = "ok" if strict_client(ca_file).get_ca_certs() else "not loaded as a CA"
    for cert in sorted(directory.glob("*.pem")):
        key = cert.with_suffix(".key")
        if cert.name == "ca.pem" or not key.is_file():
            continue
        error = handshake(ca_file, cert, key)
        results[cert.name] = error or "ok"
    print(json.dumps(results, sort_keys=True))
    return 0 if set(results.values()) == {"ok"} and len(results) > 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
