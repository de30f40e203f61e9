"""Publish numbered QoS 1 messages on one broker address and receive them on another.

Used by the molecule scenarios to prove that MQTT works across the cluster
(or through a load balancer): exits 0 when every message arrived once, 1 with
what was missing otherwise. Bounded: --count messages, --timeout seconds.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt


def connect(host: str, port: int, client_id: str, protocol, username=None, password=None) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if username is not None:
        client.username_pw_set(username, password)
    connected = threading.Event()
    result = {}

    def on_connect(_client, _userdata, _flags, reason_code, _properties=None):
        result["reason"] = reason_code
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"no CONNACK from {host}:{port} within 10 s")
    if result["reason"].is_failure:
        raise SystemExit(f"{host}:{port} refused the connection: {result['reason']}")
    return client


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribe-host", required=True)
    parser.add_argument("--publish-host", required=True)
    parser.add_argument("--subscribe-port", type=int, default=1883)
    parser.add_argument("--publish-port", type=int, default=1883)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--mqtt5", action="store_true", help="use MQTT 5 (default 3.1.1)")
    parser.add_argument("--username", help="log in as this user (both clients)")
    parser.add_argument("--password")
    parser.add_argument("--topic-prefix", default="lab/roundtrip", help="where the run's topic goes")
    args = parser.parse_args(argv)
    protocol = mqtt.MQTTv5 if args.mqtt5 else mqtt.MQTTv311

    run = uuid.uuid4().hex[:8]
    topic = f"{args.topic_prefix}/{run}"
    received = []
    subscribed = threading.Event()

    subscriber = connect(args.subscribe_host, args.subscribe_port, f"sub-{run}", protocol, args.username, args.password)
    subscriber.on_message = lambda _c, _u, message: received.append(message.payload.decode())
    subscriber.on_subscribe = lambda *_a: subscribed.set()
    subscriber.subscribe(topic, qos=1)
    if not subscribed.wait(10):
        raise SystemExit("no SUBACK within 10 s")
    # A subscription made on one node reaches the others' routing asynchronously.
    time.sleep(0.5)

    publisher = connect(args.publish_host, args.publish_port, f"pub-{run}", protocol, args.username, args.password)
    for number in range(args.count):
        publisher.publish(topic, str(number), qos=1).wait_for_publish(5)

    deadline = time.monotonic() + args.timeout
    while len(received) < args.count and time.monotonic() < deadline:
        time.sleep(0.1)
    publisher.loop_stop()
    subscriber.loop_stop()
    publisher.disconnect()
    subscriber.disconnect()

    expected = [str(n) for n in range(args.count)]
    missing = sorted(set(expected) - set(received), key=int)
    duplicates = len(received) - len(set(received))
    print(f"{len(set(received))}/{args.count} messages from {args.publish_host}:{args.publish_port} "
          f"reached {args.subscribe_host}:{args.subscribe_port}; duplicates {duplicates}")
    if missing:
        print(f"missing: {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
