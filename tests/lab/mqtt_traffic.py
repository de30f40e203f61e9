"""Numbered QoS 1 traffic through a load balancer while the cluster changes, and what got lost.

    mqtt_traffic.py --host LB [--port 1883] --stop-file FILE [--rate 20] [--max-seconds 300]
                    [--api http://NODE:8081 ...] [--api-user U --api-password P] [--expected N]

A subscriber and a publisher connect through the load balancer (paho-mqtt, clean sessions,
reconnecting as soon as they are dropped). The publisher sends messages numbered 0, 1, 2 ... at
--rate per second with QoS 1 and notes which ones the broker acknowledged (PUBACK). Every second
each node's management API (--api) is asked which nodes run. The run ends when --stop-file
appears (or after --max-seconds), waits 3 s for messages in flight, and prints one JSON object:

    {"seconds", "published", "acked", "received", "lost_acked": acked but never received,
     "unacked": sent but never acknowledged, "duplicates", "out_of_order", "sub_reconnects",
     "pub_reconnects", "membership_min", "membership_samples", "membership_unanswered",
     "membership_seen": {count: samples},
     "membership_low": the first 20 samples below two, with what each API said,
     "acked_unsubscribed": acked while the subscriber held no subscription,
     "lost_acked_subscribed": of lost_acked, those acked while it held one}

With clean sessions a message the broker takes while the subscriber is away (its node restarting,
or its subscription not yet renewed) has nobody to go to, and the publisher's client sends what it
queued while disconnected as soon as it is back, maybe before the subscriber. So a message counts
as acked while subscribed when its PUBACK came at least ROUTED seconds after the subscriber's
SUBACK and DELIVERED seconds before the subscriber next lost its connection; a lost one of those
is a message the cluster lost. (When both come back together, the PUBACKs of the publisher's
queued messages arrive in the same instant as the SUBACK, for messages routed before the
subscription: seen in the lab, 64 of them within 10 ms.)

membership of a sample is the number of nodes that every node answering it lists as running;
membership_min and membership_seen count the samples some API answered (within 2 s), and
membership_unanswered the others (no node answered: the cluster was down, or the machine too busy). Used by the molecule operations scenario; bounded in time.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt

TOPIC = "traffic/numbered"
ROUTED = 0.2
DELIVERED = 0.5


def client(name, host, port, on_connect, username=None, password=None, **callbacks):
    """A client that reconnects at once when dropped, counting its (re)connections.

    callbacks (on_subscribe, on_disconnect...) are set before it connects."""
    result = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="%s-%s" % (name, uuid.uuid4().hex[:8]),
                         protocol=mqtt.MQTTv311, clean_session=True)
    if username:
        result.username_pw_set(username, password)
    result.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
    counts = {"connects": 0}

    def connected(cl, _userdata, _flags, reason_code, _properties=None):
        if not getattr(reason_code, "is_failure", False):
            counts["connects"] += 1
            on_connect(cl)

    result.on_connect = connected
    for event, callback in callbacks.items():
        setattr(result, event, callback)
    result.connect_async(host, port, keepalive=10)
    result.loop_start()
    return result, counts


def running_nodes(url, auth):
    """The nodes an API lists as running, or None when it does not answer."""
    request = urllib.request.Request(url.rstrip("/") + "/api/v4/nodes", headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            body = json.load(answer)
    except (OSError, ValueError):
        return None
    return {entry["node"] for entry in body.get("data", []) if entry.get("node_status") == "Running"}


def sample_membership(apis, auth, samples, stop, low=None, since=0.0):
    """Every second, how many nodes every answering API lists as running (the APIs are asked side
    by side, each given 2 s); None when none answered. A sample below two is also noted in low, with
    its time (seconds since ``since``) and what each API said."""
    while not stop.is_set():
        started = time.monotonic()
        answers = dict.fromkeys(apis)

        def ask(url):
            answers[url] = running_nodes(url, auth)

        askers = [threading.Thread(target=ask, args=(url,), daemon=True) for url in apis]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
        answers = list(answers.items())
        views = [view for _url, view in answers if view is not None]
        samples.append(len(set.intersection(*views)) if views else None)
        if low is not None and (samples[-1] or 0) < 2:
            low.append({"at": round(started - since, 1),
                        "views": dict((url, sorted(view) if view is not None else None) for url, view in answers)})
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--api", action="append", default=[])
    parser.add_argument("--api-user", default="")
    parser.add_argument("--api-password", default="")
    parser.add_argument("--username", help="MQTT user (built-in authentication), allowed on the traffic topic")
    parser.add_argument("--password", default="")
    args = parser.parse_args(argv)
    auth = "Basic " + base64.b64encode(("%s:%s" % (args.api_user, args.api_password)).encode()).decode()

    received = Counter()
    arrival_order = []
    lock = threading.Lock()

    def on_message(_client, _userdata, message):
        number = int(message.payload)
        with lock:
            received[number] += 1
            arrival_order.append(number)

    # The subscriber's subscriptions, as [SUBACK time, time its connection was lost or None].
    subscribed = []

    def on_subscribe(_client, _userdata, _mid, _reason_codes, _properties=None):
        with lock:
            subscribed.append([time.monotonic(), None])

    def on_disconnect(*_args):
        with lock:
            if subscribed and subscribed[-1][1] is None:
                subscribed[-1][1] = time.monotonic()

    subscriber, sub_counts = client("traffic-sub", args.host, args.port, lambda cl: cl.subscribe(TOPIC, qos=1),
                                    args.username, args.password,
                                    on_subscribe=on_subscribe, on_disconnect=on_disconnect)
    subscriber.on_message = on_message
    acked, sent, acked_at = set(), {}, {}

    def on_publish(_client, _userdata, mid, _reason_code=None, _properties=None):
        with lock:
            if mid in sent:
                number = sent.pop(mid)
                acked.add(number)
                acked_at[number] = time.monotonic()

    def while_subscribed(at):
        return any(start + ROUTED <= at and (end is None or at <= end - DELIVERED) for start, end in subscribed)

    publisher, pub_counts = client("traffic-pub", args.host, args.port, lambda cl: None, args.username, args.password)
    publisher.on_publish = on_publish

    samples, low, stop = [], [], threading.Event()
    sampler = threading.Thread(target=sample_membership, args=(args.api, auth, samples, stop, low, time.monotonic()),
                               daemon=True)
    if args.api:
        sampler.start()

    deadline = time.monotonic() + args.max_seconds
    while not subscribed and time.monotonic() < deadline:  # subscribe before the first message
        time.sleep(0.05)
    time.sleep(0.5)
    started, number = time.monotonic(), 0
    stop_file = Path(args.stop_file)
    while time.monotonic() < deadline and not stop_file.exists():
        info = publisher.publish(TOPIC, str(number).encode(), qos=1)
        with lock:
            sent[info.mid] = number
        number += 1
        time.sleep(max(0.0, started + number / args.rate - time.monotonic()))
    time.sleep(3)
    stop.set()
    for each in (publisher, subscriber):
        each.loop_stop()
        each.disconnect()

    with lock:
        got = set(received)
        answered = [sample for sample in samples if sample is not None]
        unsubscribed = set(number for number in acked if not while_subscribed(acked_at[number]))
        late = sum(1 for earlier, later in zip(arrival_order, arrival_order[1:]) if later < earlier)
        result = {
            "seconds": round(time.monotonic() - started, 1),
            "published": number,
            "acked": len(acked),
            "received": len(got),
            "lost_acked": len(acked - got),
            "unacked": number - len(acked),
            "duplicates": sum(count - 1 for count in received.values()),
            "out_of_order": late,
            "sub_reconnects": max(0, sub_counts["connects"] - 1),
            "pub_reconnects": max(0, pub_counts["connects"] - 1),
            "membership_min": min(answered) if answered else None,
            "membership_samples": len(samples),
            "membership_unanswered": len(samples) - len(answered),
            "membership_seen": dict(sorted(Counter(answered).items())),
            "membership_low": low[:20],
            "acked_unsubscribed": len(unsubscribed),
            "lost_acked_subscribed": len(acked - got - unsubscribed),
            # When each of the first 20 of those was acknowledged, and the subscriber's
            # subscriptions, in seconds since the first message.
            "lost_subscribed_acked_at": [[number, round(acked_at[number] - started, 2)]
                                         for number in sorted(acked - got - unsubscribed)[:20]],
            "subscribed": [[round(start - started, 2), None if end is None else round(end - started, 2)]
                           for start, end in subscribed],
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
