"""Try MQTT access the way an attacker or a legitimate client would, and print what happened as JSON.

    mqtt_access.py connect HOST [--port N] [--username U --password P] [--websocket PATH]
                   [--tls [--cafile CA] [--tls-version 1.2|1.3] [--certfile C --keyfile K]]
        {"connack": 0}                       (0 accepted; 5 not authorised, 4 bad credentials, ...)
        {"connack": null, "error": "..."}    (no MQTT session: TLS or TCP failed)
    mqtt_access.py pubsub HOST --sub-user U --sub-password P --pub-user U2 --pub-password P2
                   --subscribe FILTER --publish TOPIC [--count N] [--sub-port N --sub-websocket PATH]
        {"suback": 1, "received": 3, "sent": 3}   (suback 128: the subscription was refused)

Used by the molecule security scenario; bounded by --count and a 10 s wait.
"""

from __future__ import annotations

import argparse
import json
import ssl
import threading
import time
import uuid

import paho.mqtt.client as mqtt


def connect(host, port, username=None, password=None, tls=None, websocket=None):
    """An MQTT client connected over TCP, or over WebSocket at path ``websocket``."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="access-" + uuid.uuid4().hex[:10],
                         protocol=mqtt.MQTTv311, transport="websockets" if websocket else "tcp")
    if websocket:
        client.ws_set_options(path=websocket)
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    done = threading.Event()
    result = {}

    def on_connect(_client, _userdata, _flags, reason_code, _properties=None):
        result["connack"] = reason_code.value if hasattr(reason_code, "value") else int(reason_code)
        done.set()

    def on_disconnect(*_args):
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect(host, port, keepalive=30)
    client.loop_start()
    done.wait(10)
    return client, result.get("connack")


def v3_code(value):
    """paho reports MQTT 3.1.1 CONNACK codes as MQTT 5 reason codes; give the 3.1.1 byte back."""
    return {0: 0, 128: 5, 135: 5, 134: 4, 133: 2, 136: 3, 132: 1}.get(value, value)


def tls_context(args):
    """Checks the certificate chain and that the certificate names the host dialled."""
    if not args.tls:
        return None
    context = ssl.create_default_context(cafile=args.cafile)
    # As strict as Python 3.13 is by default, on every Python.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if args.tls_version:
        version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[args.tls_version]
        context.minimum_version = context.maximum_version = version
    if args.certfile:
        context.load_cert_chain(args.certfile, args.keyfile)
    return context


def cmd_connect(args):
    try:
        client, code = connect(args.host, args.port, args.username, args.password, tls_context(args),
                               args.websocket)
    except (ssl.SSLError, OSError) as exc:
        return {"connack": None, "error": str(exc)}
    if code is None:  # TLS 1.3 reports a refused client certificate only after the handshake
        return {"connack": None, "error": "the connection closed before CONNACK"}
    client.loop_stop()
    client.disconnect()
    return {"connack": None if code is None else v3_code(code)}


def cmd_pubsub(args):
    subscriber, code = connect(args.host, args.sub_port or args.port, args.sub_user, args.sub_password,
                               websocket=args.sub_websocket)
    if code != 0:
        return {"error": "subscriber refused with %s" % code}
    received, granted = [], threading.Event()
    result = {}

    def on_subscribe(_client, _userdata, _mid, reason_codes, _properties=None):
        first = reason_codes[0]
        result["suback"] = first.value if hasattr(first, "value") else int(first)
        granted.set()

    subscriber.on_subscribe = on_subscribe
    subscriber.on_message = lambda _client, _userdata, message: received.append(message.payload)
    subscriber.subscribe(args.subscribe, qos=1)
    granted.wait(10)
    publisher, code = connect(args.host, args.port, args.pub_user, args.pub_password)
    if code != 0:
        return {"error": "publisher refused with %s" % code, "suback": result.get("suback")}
    sent = 0
    for number in range(args.count):
        info = publisher.publish(args.publish, ("message %d" % number).encode(), qos=1)
        info.wait_for_publish(10)
        sent += int(info.is_published())
    deadline = time.monotonic() + 2
    while len(received) < args.count and time.monotonic() < deadline:
        time.sleep(0.05)
    for client in (publisher, subscriber):
        client.loop_stop()
        client.disconnect()
    return {"suback": result.get("suback"), "received": len(received), "sent": sent}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("connect")
    one.add_argument("host")
    one.add_argument("--port", type=int, default=1883)
    one.add_argument("--username")
    one.add_argument("--password")
    one.add_argument("--tls", action="store_true")
    one.add_argument("--cafile")
    one.add_argument("--tls-version", choices=["1.2", "1.3"])
    one.add_argument("--certfile", help="client certificate (PEM)")
    one.add_argument("--keyfile", help="its key (PEM)")
    one.add_argument("--websocket", metavar="PATH", help="MQTT over WebSocket at this path (ws, or wss with --tls)")
    two = sub.add_parser("pubsub")
    two.add_argument("host")
    two.add_argument("--port", type=int, default=1883)
    for role in ("sub", "pub"):
        two.add_argument("--%s-user" % role, required=True)
        two.add_argument("--%s-password" % role, required=True)
    two.add_argument("--subscribe", required=True)
    two.add_argument("--publish", required=True)
    two.add_argument("--count", type=int, default=3)
    two.add_argument("--sub-port", type=int, help="the subscriber's port (default --port)")
    two.add_argument("--sub-websocket", metavar="PATH", help="subscribe over WebSocket at this path")
    args = parser.parse_args(argv)
    print(json.dumps(cmd_connect(args) if args.command == "connect" else cmd_pubsub(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
