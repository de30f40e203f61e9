"""Unit tests for roles/emqx_bench/files/mqtt_bench.py, the built-in MQTT load generator.

The runs go against a tiny MQTT acceptor started here on 127.0.0.1 (CONNACK with
a chosen code, SUBACK, PUBACK, PINGRESP, PUBLISH forwarded to subscribers of the
same topic); nothing leaves the loopback interface and no root is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "roles" / "emqx_bench" / "files" / "mqtt_bench.py"
spec = importlib.util.spec_from_file_location("mqtt_bench", BENCH)
mqtt_bench = importlib.util.module_from_spec(spec)
sys.modules["mqtt_bench"] = mqtt_bench
spec.loader.exec_module(mqtt_bench)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


skip_props = mqtt_bench.skip_props


class Acceptor:
    """A minimal MQTT 3.1/3.1.1/5 server on 127.0.0.1, run in a thread of its own.

    It answers CONNECT with CONNACK connack_code (and closes after a refusal),
    SUBSCRIBE with SUBACK granting the asked QoS, QoS 1 PUBLISH with PUBACK,
    PINGREQ with PINGRESP, and forwards every PUBLISH to the subscribers of
    exactly its topic.  It records peer addresses, client ids, user names and payloads.
    """

    def __init__(self, connack_code: int = 0, port: int = 0, ssl_context=None):
        self.connack_code = connack_code
        self.listen_port = port
        self.ssl_context = ssl_context
        self.peers = []
        self.client_ids = []
        self.usernames = []
        self.subscriptions = {}
        self.published = 0
        self.payloads = []
        self.forwarded = 0
        self.open = 0
        self.open_peak = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None
        self.port = None

    def __enter__(self):
        self.thread.start()
        serving = self.loop.create_server(lambda: AcceptorConnection(self), "127.0.0.1", self.listen_port,
                                          backlog=4096, ssl=self.ssl_context)
        self.server = asyncio.run_coroutine_threadsafe(serving, self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_exc):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class AcceptorConnection(asyncio.Protocol):
    def __init__(self, acceptor: Acceptor):
        self.acceptor = acceptor
        self.transport = None
        self.buf = b""
        self.version = 4
        self.next_pid = 0

    def connection_made(self, transport):
        self.transport = transport
        acceptor = self.acceptor
        acceptor.peers.append(transport.get_extra_info("peername")[0])
        acceptor.open += 1
        acceptor.open_peak = max(acceptor.open_peak, acceptor.open)

    def connection_lost(self, exc):
        self.acceptor.open -= 1
        for subscribers in self.acceptor.subscriptions.values():
            subscribers[:] = [s for s in subscribers if s[0] is not self]

    def data_received(self, data):
        self.buf += data
        while len(self.buf) >= 2:
            length, shift, at = 0, 0, 1
            while at < len(self.buf):
                byte = self.buf[at]
                at += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            else:
                return
            if len(self.buf) < at + length:
                return
            first, body, self.buf = self.buf[0], self.buf[at:at + length], self.buf[at + length:]
            self.packet(first, body)

    def packet(self, first: int, body: bytes) -> None:
        acceptor = self.acceptor
        kind = first >> 4
        props = b"\x00" if self.version == 5 else b""
        if kind == 1:  # CONNECT
            at = 2 + int.from_bytes(body[0:2], "big")
            self.version, flags = body[at], body[at + 1]
            at += 4
            if self.version == 5:
                at = skip_props(body, at)
            id_len = int.from_bytes(body[at:at + 2], "big")
            acceptor.client_ids.append(body[at + 2:at + 2 + id_len].decode())
            at += 2 + id_len
            if flags & 0x80:
                user_len = int.from_bytes(body[at:at + 2], "big")
                acceptor.usernames.append(body[at + 2:at + 2 + user_len].decode())
            props = b"\x00" if self.version == 5 else b""
            self.transport.write(b"\x20" + bytes((2 + len(props), 0, acceptor.connack_code)) + props)
            if acceptor.connack_code:
                self.transport.close()
        elif kind == 8:  # SUBSCRIBE
            at = 2 if self.version < 5 else skip_props(body, 2)
            topic_len = int.from_bytes(body[at:at + 2], "big")
            topic = body[at + 2:at + 2 + topic_len].decode()
            qos = body[at + 2 + topic_len] & 3
            acceptor.subscriptions.setdefault(topic, []).append((self, qos))
            payload = body[0:2] + props + bytes((qos,))
            self.transport.write(b"\x90" + varint(len(payload)) + payload)
        elif kind == 3:  # PUBLISH
            qos = (first >> 1) & 3
            topic_len = int.from_bytes(body[0:2], "big")
            topic = body[2:2 + topic_len]
            at = 2 + topic_len
            pid = body[at:at + 2] if qos else b""
            at += len(pid)
            if self.version == 5:
                at = skip_props(body, at)
            acceptor.published += 1
            acceptor.payloads.append(body[at:])
            if qos == 1:
                self.transport.write(b"\x40\x02" + pid)
            for target, target_qos in acceptor.subscriptions.get(topic.decode(), ()):
                target.forward(topic, body[at:], min(qos, target_qos))
        elif kind == 12:  # PINGREQ
            self.transport.write(b"\xd0\x00")
        elif kind == 14:  # DISCONNECT
            self.transport.close()

    def forward(self, topic: bytes, payload: bytes, qos: int) -> None:
        self.acceptor.forwarded += 1
        self.next_pid = self.next_pid % 65535 + 1
        out = len(topic).to_bytes(2, "big") + topic
        out += self.next_pid.to_bytes(2, "big") if qos else b""
        out += b"\x00" if self.version == 5 else b""
        out += payload
        self.transport.write(bytes((0x30 | qos << 1,)) + varint(len(out)) + out)


def run_bench(*args, timeout=30):
    """Run mqtt_bench.py with --json - and return (result dict, stdout lines, process)."""
    proc = subprocess.run([sys.executable, str(BENCH), *args, "--json", "-"],
                          capture_output=True, text=True, timeout=timeout, check=False)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines and lines[-1].startswith("RESULT "), proc.stdout
    return json.loads(lines[-1][len("RESULT "):]), lines, proc


@contextlib.contextmanager
def closed_port():
    """A port that refuses connections: bound for the whole block but never listening, so that no other
    scenario running meanwhile gets it for its listener (a port closed again at once could be)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ---------------------------------------------------------------- pure functions

@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (5, "5s"), (5.9, "5s"), (59, "59s"), (60, "1m0s"), (61, "1m1s"),
    (3600, "1h0m0s"), (3723, "1h2m3s"), (86400, "1d0h0m0s"),
])
def test_fmt_tdiff(seconds, text):
    assert mqtt_bench.fmt_tdiff(seconds) == text


def test_output_line_formats():
    assert mqtt_bench.format_counter_line(5.4, "connect_succ", 1000, 199.996) == "5s connect_succ total=1000 rate=200.00/sec"
    assert mqtt_bench.format_counter_line(62, "recv", 7, 0.5) == "1m2s recv total=7 rate=0.50/sec"
    assert mqtt_bench.connect_error_line(4, "eaddrinuse") == "client(4): connect error - eaddrinuse"
    assert mqtt_bench.exit_line(4, "eaddrinuse") == "client(4): EXIT for {shutdown,eaddrinuse}"
    assert mqtt_bench.start_line(2, 3, 10) == "Start with 2 workers, addrs pool size: 3 and req interval: 10 ms"
    assert mqtt_bench.format_latency_line(61.5, 12) == "1m1s publish_latency avg=12ms"


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.EADDRINUSE, "in use"), "eaddrinuse"),
    (OSError(errno.EADDRNOTAVAIL, "not available"), "eaddrnotavail"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "econnrefused"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "econnreset"),
    (OSError(errno.ETIMEDOUT, "timed out"), "timeout"),
    (OSError(errno.EMFILE, "too many"), "emfile"),
    (OSError(errno.ENETUNREACH, "unreachable"), "enetunreach"),
    (TimeoutError(), "timeout"),
    (mqtt_bench.MqttError("connack_5"), "connack_5"),
])
def test_error_kind(exc, kind):
    assert mqtt_bench.error_kind(exc) == kind


def test_connect_packet_encoding():
    v4 = mqtt_bench.encode_connect(b"c1", 4, 300, True, b"u", b"p")
    assert v4 == b"\x10\x14\x00\x04MQTT\x04\xc2\x01\x2c\x00\x02c1\x00\x01u\x00\x01p"
    v5 = mqtt_bench.encode_connect(b"c1", 5, 60, False)
    assert v5 == b"\x10\x0f\x00\x04MQTT\x05\x00\x00\x3c\x00\x00\x02c1"
    v3 = mqtt_bench.encode_connect(b"c", 3, 10, True)
    assert v3[2:11] == b"\x00\x06MQIsdp\x03"
    big = mqtt_bench.encode_publish(b"t", b"x" * 200, 1, 7, 4)
    assert big[:3] == b"\x32\xcd\x01" and big[3:8] == b"\x00\x01t\x00\x07"


def test_latency_histogram_percentiles():
    hist = mqtt_bench.LatencyHist()
    assert hist.summary() is None and hist.bounds_json() is None and hist.percentile(0.5) is None
    for us in range(1, 10_001):
        hist.add(us)
    summary = hist.summary()
    assert summary["count"] == 10_000 and summary["min"] == 1 and summary["max"] == 10_000
    assert summary["mean"] in (5000, 5001)
    for key, exact in (("p50", 5000), ("p90", 9000), ("p99", 9900), ("p999", 9990)):
        assert abs(summary[key] - exact) <= 0.05 * exact, (key, summary[key])
    assert sum(hist.bounds_json().values()) == 10_000
    # every sample is at most its bucket's upper bound and above the previous one
    bounds = mqtt_bench.LATENCY_BOUNDS
    for us in (0, 1, 20, 21, 999, 1000, 1001, 59_999_999, 60_000_000, 2**40 + 1):
        b = next(i for i, bound in enumerate(bounds) if us <= bound)
        assert b == 0 or bounds[b - 1] < us
        assert bounds[b] <= max(us, 20) * 1.05 or b == len(bounds) - 1
    # one value reports itself (clamped to min and max); negatives count as 0
    for us in (0, 7, 1234, 60_000_000):
        one = mqtt_bench.LatencyHist()
        one.add(us)
        assert one.summary() == dict(count=1, min=us, mean=us, p50=us, p90=us, p99=us, p999=us, max=us)
    skewed = mqtt_bench.LatencyHist()
    skewed.add(-500)
    assert skewed.min == skewed.max == skewed.percentile(0.5) == 0


def test_latency_histogram_deltas_merge_like_one():
    whole, parent = mqtt_bench.LatencyHist(), mqtt_bench.LatencyHist()
    samples = [(n * 7919) % 60_000_000 for n in range(5000)] + [1500] * 3000 + [45_000] * 40
    for start in range(0, len(samples), 1000):  # a worker's reports: a delta each, through JSON
        delta = mqtt_bench.LatencyHist()
        for us in samples[start:start + 1000]:
            delta.add(us)
            whole.add(us)
        parent.merge(mqtt_bench.LatencyHist.from_message(json.loads(json.dumps(delta.message()))))
    assert parent.summary() == whole.summary()
    assert parent.bounds_json() == whole.bounds_json()
    ordered = sorted(samples)
    for fraction in (0.5, 0.9, 0.99, 0.999):
        exact = ordered[math.ceil(len(ordered) * fraction) - 1]  # nearest rank
        assert abs(parent.percentile(fraction) - exact) <= 0.05 * exact


def test_latency_payload_header_round_trip():
    now_us = time.time_ns() // 1000
    payload = mqtt_bench.stamp_payload(now_us, b"x" * 24)
    assert len(payload) == 32 and payload[:8] == now_us.to_bytes(8, "big") and payload[8:] == b"x" * 24
    assert mqtt_bench.stamp_of(payload) == now_us
    assert mqtt_bench.stamp_of(b"x" * 7) is None
    assert mqtt_bench.stamp_of(mqtt_bench.stamp_payload(now_us, b"")) == now_us
    for version, qos in ((4, 0), (4, 1), (5, 0), (5, 1)):
        packet = mqtt_bench.encode_publish(b"bench/t", payload, qos, 9, version)
        body = packet[2:]  # one-byte remaining length here
        at = 2 + 7 + (2 if qos else 0)
        if version == 5:
            at = mqtt_bench.skip_props(body, at)
        assert mqtt_bench.stamp_of(body, at) == now_us


# ---------------------------------------------------------------- arguments

@pytest.mark.parametrize("argv", [
    ["conn", "-c", "200001", "--duration", "1"],
    ["conn", "-c", "10", "--duration", "3601"],
    ["conn", "-c", "0", "--duration", "1"],
    ["conn", "--duration", "1"],
    ["conn", "-c", "10"],
    ["pub", "-c", "10", "--duration", "1"],
    ["sub", "-c", "1", "--duration", "1", "-t", "t", "-q", "3"],
    ["conn", "-c", "1", "--duration", "1", "--ifaddr", "not-an-address"],
    ["conn", "-c", "1", "--duration", "1", "--workers", "many"],
    ["bogus", "-c", "1", "--duration", "1"],
    ["conn", "-c", "1", "--duration", "1", "--json", "/nonexistent/dir/result.json"],
    ["conn", "-c", "1", "--duration", "1", "-S", "--cacertfile", "/nonexistent/ca.pem"],
    ["pub", "-c", "1", "--duration", "1", "-t", "t", "--latency", "-s", "7"],
])
def test_bad_arguments_exit_2(argv, capsys):
    assert mqtt_bench.main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_latency_needs_room_for_the_send_time(capsys):
    assert mqtt_bench.main(["pub", "-c", "1", "--duration", "1", "-t", "t", "--latency", "-s", "4"]) == 2
    assert "--latency needs --size of at least 8" in capsys.readouterr().err
    assert mqtt_bench.configure(["pub", "-c", "1", "--duration", "1", "-t", "t", "--latency", "-s", "8"]).latency
    assert not mqtt_bench.configure(["pub", "-c", "1", "--duration", "1", "-t", "t", "-s", "4"]).latency


def test_bad_arguments_exit_2_from_the_command_line():
    proc = subprocess.run([sys.executable, str(BENCH), "conn", "-c", "500000", "--duration", "1"],
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 2
    assert "--count must be between 1 and 200000" in proc.stderr


def test_help_uses_double_dash():
    assert mqtt_bench.main(["--help"]) == 0


# ---------------------------------------------------------------- runs
#
# Every bench run below lasts a fixed --duration, so the runs are started all
# at once by one module fixture (a thread each) and the tests only judge what
# their run produced.  A scenario returns its observations; an exception in a
# scenario fails the test that asks for it.

SCENARIOS = {}


def scenario(enabled: bool = True):
    def register(function):
        if enabled:
            SCENARIOS[function.__name__] = function
        return function
    return register


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mqtt_bench")
    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {name: pool.submit(function, workdir) for name, function in SCENARIOS.items()}
    return futures


def outcome(runs, name):
    return runs[name].result()


@scenario()
def conn_200(_workdir):
    with Acceptor() as acceptor:
        result, lines, _proc = run_bench("conn", "-h", "127.0.0.1", "-p", str(acceptor.port), "-c", "200",
                                         "-R", "2000", "--workers", "2", "--duration", "1.1", "-P", "secret",
                                         "-u", "user%i")
    return result, lines, acceptor


def test_conn_200_clients_over_two_workers(runs):
    result, lines, acceptor = outcome(runs, "conn_200")
    assert set(mqtt_bench.RESULT_KEYS) <= set(result)
    assert result["tool"] == "mqttaction.emqx mqtt_bench"
    assert result["command"] == "conn"
    assert result["workers"] == 2
    assert result["clients"] == 200
    assert result["connected_peak"] == 200
    assert result["connected_at_end"] == 200
    assert result["connect_succ"] == 200
    assert result["connect_fail"] == 0
    assert result["errors"] == {}
    assert result["hosts"] == ["127.0.0.1"] and result["ifaddrs"] == []
    assert result["args"]["password"] == "********"
    assert result["args"]["count"] == 200
    assert 0 < result["ramp_seconds"] < 1.1
    assert result["connect_rate_avg"] > 0
    assert result["peak_rss_bytes"] > 0
    assert result["started_at"].endswith("Z")
    assert 1.0 <= result["duration_s"] < 6
    assert result["timeline"][0]["t"] == 1
    assert set(result["timeline"][0]) == {"t", "connected", "connect_succ", "connect_fail", "pub", "recv", "errors",
                                          "latency_p50_us", "latency_p99_us"}
    assert result["timeline"][0]["latency_p50_us"] is None and result["timeline"][0]["latency_p99_us"] is None
    assert result["latency_us"] is None and result["latency_hist"] is None
    assert result["timeline"][-1]["connected"] == 200
    assert lines[0] == "Start with 2 workers, addrs pool size: 0 and req interval: 1 ms"
    assert any(line.startswith("1s connect_succ total=") and line.endswith("/sec") for line in lines)
    assert len(set(acceptor.client_ids)) == 200
    assert all("_bench_conn_" in cid for cid in acceptor.client_ids)
    assert sorted(int(cid.rsplit("_", 1)[1]) for cid in acceptor.client_ids) == list(range(1, 201))
    assert sorted(acceptor.usernames) == sorted(f"user{n}" for n in range(1, 201))


def wait_for(condition, timeout=10.0):
    limit = time.monotonic() + timeout
    while not condition() and time.monotonic() < limit:
        time.sleep(0.02)


@scenario()
def pub_sub(_workdir):
    # The subscribers run until every message has reached them, then get SIGTERM:
    # no timing to guess on a busy machine.
    with Acceptor() as acceptor:
        sub = subprocess.Popen([sys.executable, str(BENCH), "sub", "-h", "127.0.0.1", "-p", str(acceptor.port),
                                "-c", "3", "-R", "1000", "-t", "bench/t", "-q", "1", "-V", "5",
                                "--duration", "30", "--json", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(acceptor.subscriptions.get("bench/t", ())) == 3)
        pub, _lines, _proc = run_bench("pub", "-h", "127.0.0.1", "-p", str(acceptor.port), "-c", "2", "-R", "1000",
                                       "-t", "bench/t", "-q", "1", "-I", "50", "-L", "4", "-s", "32",
                                       "--duration", "1")
        wait_for(lambda: acceptor.forwarded == 24)
        sub.send_signal(signal.SIGTERM)
        out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, out + err
    return pub, json.loads(out.splitlines()[-1][len("RESULT "):]), acceptor


def test_pub_and_sub_counts(runs):
    pub, sub, acceptor = outcome(runs, "pub_sub")
    assert pub["pub"] == 8 and pub["pub_succ"] == 8 and pub["pub_fail"] == 0
    assert acceptor.published == 8
    assert sub["sub"] == 3 and sub["sub_fail"] == 0
    assert sub["recv"] == 24
    assert sub["connect_fail"] == 0 and pub["connect_fail"] == 0
    # without --latency: the payload as before and no latency figures
    assert acceptor.payloads == [b"x" * 32] * 8
    assert sub["latency_us"] is None and sub["latency_hist"] is None and pub["latency_us"] is None


@scenario()
def pub_sub_latency(_workdir):
    # MQTT 5 and QoS 1, so the receiver skips a packet id and properties to find
    # the send time; 15 messages 100 ms apart cross at least one printed second.
    with Acceptor() as acceptor:
        sub = subprocess.Popen([sys.executable, str(BENCH), "sub", "-h", "127.0.0.1", "-p", str(acceptor.port),
                                "-c", "2", "-R", "1000", "-t", "bench/lat", "-q", "1", "-V", "5", "--latency",
                                "--workers", "2", "--duration", "30", "--json", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(acceptor.subscriptions.get("bench/lat", ())) == 2)
        pub, _lines, _proc = run_bench("pub", "-h", "127.0.0.1", "-p", str(acceptor.port), "-c", "1", "-R", "1000",
                                       "-t", "bench/lat", "-q", "1", "-V", "5", "-I", "100", "-L", "15", "-s", "64",
                                       "--latency", "--duration", "2")
        wait_for(lambda: acceptor.forwarded == 30)
        time.sleep(0.3)  # the last worker report
        sub.send_signal(signal.SIGTERM)
        out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, out + err
    return pub, json.loads(out.splitlines()[-1][len("RESULT "):]), out.splitlines(), acceptor


def test_pub_and_sub_with_latency(runs):
    pub, sub, lines, acceptor = outcome(runs, "pub_sub_latency")
    assert pub["pub"] == 15 and sub["recv"] == 30
    assert pub["latency_us"] is None  # publishers receive nothing
    now_us = time.time_ns() // 1000
    for payload in acceptor.payloads:
        assert len(payload) == 64 and payload[8:] == b"x" * 56
        assert 0 < now_us - int.from_bytes(payload[:8], "big") < 120_000_000
    latency = sub["latency_us"]
    assert set(latency) == {"count", "min", "mean", "p50", "p90", "p99", "p999", "max"}
    assert latency["count"] == 30
    ordered = [latency[key] for key in ("min", "p50", "p90", "p99", "p999", "max")]
    assert ordered == sorted(ordered) and ordered[0] >= 0
    assert latency["min"] <= latency["mean"] <= latency["max"]
    assert all(isinstance(value, int) for value in latency.values())
    assert sum(sub["latency_hist"].values()) == 30
    assert all(int(bound) >= latency["min"] for bound in sub["latency_hist"])
    seconds = [entry for entry in sub["timeline"] if entry["latency_p50_us"] is not None]
    assert seconds and all(0 <= entry["latency_p50_us"] <= entry["latency_p99_us"] for entry in seconds)
    assert sum(entry["recv"] - before["recv"] for before, entry in zip([{"recv": 0}] + sub["timeline"], sub["timeline"])
               if entry["latency_p50_us"] is not None) == 30
    printed = [line for line in lines if " publish_latency avg=" in line]
    assert printed and all(re.fullmatch(r"(\d+[dhm])*\d+s publish_latency avg=\d+ms", line) for line in printed)


@scenario()
def connack_5(_workdir):
    with Acceptor(connack_code=5) as acceptor:
        return run_bench("conn", "-h", "127.0.0.1", "-p", str(acceptor.port), "-c", "3", "-R", "1000",
                         "--duration", "1")


def test_connack_refusal_is_a_connect_failure(runs):
    result, lines, _proc = outcome(runs, "connack_5")
    assert result["connect_fail"] == 3 and result["connect_succ"] == 0
    assert result["errors"] == {"connack_5": 3}
    assert result["connected_peak"] == 0 and result["ramp_seconds"] is None
    assert "client(1): connect error - connack_5" in lines
    assert "client(1): EXIT for {shutdown,connack_5}" in lines


@scenario()
def refused_and_unbindable(_workdir):
    # Even clients (sequence numbers 1, 3, 5) bind 127.0.0.1 and meet a closed port;
    # odd ones bind 192.0.2.1 (TEST-NET-1), not an address of this host: bind() fails.
    with closed_port() as port:
        return run_bench("conn", "-h", "127.0.0.1", "-p", str(port), "-c", "5", "-R", "1000",
                         "--ifaddr", "127.0.0.1,192.0.2.1", "--workers", "1", "--duration", "1",
                         "--max-errors-printed", "3")


def test_refused_and_unbindable_are_named_like_emqtt_bench(runs):
    result, lines, _proc = outcome(runs, "refused_and_unbindable")
    assert result["errors"] == {"eaddrnotavail": 2, "econnrefused": 3} and result["connect_fail"] == 5
    client_lines = [line for line in lines if line.startswith("client(")]
    assert len(client_lines) == 3  # --max-errors-printed
    possible = {f"client({n}): connect error - {kind}" for n, kind in ((1, "econnrefused"), (2, "eaddrnotavail"),
                                                                       (3, "econnrefused"), (4, "eaddrnotavail"),
                                                                       (5, "econnrefused"))}
    possible |= {line.replace("connect error - ", "EXIT for {shutdown,") + "}" for line in possible}
    assert set(client_lines) <= possible
    assert "error summary - econnrefused: 3 clients" in lines
    assert "error summary - eaddrnotavail: 2 clients" in lines


@scenario()
def ifaddr_spread(_workdir):
    with Acceptor() as acceptor:
        result, lines, _proc = run_bench("conn", "-h", "127.0.0.1", "-p", str(acceptor.port), "-c", "10",
                                         "-R", "1000", "--ifaddr", "127.0.0.1,127.0.0.2", "--duration", "1")
    return result, lines, acceptor


def test_ifaddr_spreads_clients_over_source_addresses(runs):
    result, lines, acceptor = outcome(runs, "ifaddr_spread")
    assert result["workers"] == 2
    assert result["connect_succ"] == 10
    assert result["ifaddrs"] == ["127.0.0.1", "127.0.0.2"]
    assert sorted(acceptor.peers) == ["127.0.0.1"] * 5 + ["127.0.0.2"] * 5
    assert lines[0] == "Start with 2 workers, addrs pool size: 2 and req interval: 2 ms"
    by_seq = {int(cid.rsplit("_", 1)[1]): cid for cid in acceptor.client_ids}
    # client i (sequence number i + 1) uses addrs[i % 2]
    assert all(by_seq[seq].startswith("127.0.0.1_bench_conn_") for seq in (1, 3, 5, 7, 9))
    assert all(by_seq[seq].startswith("127.0.0.2_bench_conn_") for seq in (2, 4, 6, 8, 10))


def make_certificates(directory: Path) -> None:
    """ca.pem signs server.pem (for IP 127.0.0.1); other-ca.pem signs nothing here."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=30)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    # What Python 3.13's strict verification wants of a CA (key usage) and of a leaf (AKI).
    ca_usage = ("-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-x509", *ec, *ca_usage, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=bench test CA",
            "-days", "2")
    openssl("req", "-x509", *ec, *ca_usage, "-keyout", "other-ca.key", "-out", "other-ca.pem", "-subj", "/CN=other CA",
            "-days", "2")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\nauthorityKeyIdentifier=keyid,issuer\n"
                                       "basicConstraints=critical,CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")


HAVE_OPENSSL = shutil.which("openssl") is not None


@scenario(HAVE_OPENSSL)
def tls(workdir):
    make_certificates(workdir)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(workdir / "server.pem", workdir / "server.key")
    with Acceptor(ssl_context=server) as acceptor:
        common = ("conn", "-h", "127.0.0.1", "-p", str(acceptor.port), "-c", "3", "-R", "1000", "-S",
                  "--duration", "1")
        with ThreadPoolExecutor(max_workers=2) as pool:
            good = pool.submit(run_bench, *common, "--cacertfile", str(workdir / "ca.pem"))
            bad = pool.submit(run_bench, *common, "--cacertfile", str(workdir / "other-ca.pem"))
            return good.result()[0], bad.result()[0]


@pytest.mark.skipif(not HAVE_OPENSSL, reason="needs the openssl command to make certificates")
def test_tls_verifies_the_server_against_cacertfile(runs):
    good, bad = outcome(runs, "tls")
    assert good["connect_succ"] == 3 and good["errors"] == {}
    assert bad["connect_succ"] == 0 and bad["errors"] == {"tls_verify_failed": 3}


@scenario()
def sigterm(_workdir):
    with Acceptor() as acceptor:
        proc = subprocess.Popen([sys.executable, str(BENCH), "conn", "-h", "127.0.0.1", "-p", str(acceptor.port),
                                 "-c", "20", "-R", "1000", "--duration", "60", "--json", "-"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: acceptor.open == 20)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        wait_for(lambda: acceptor.open == 0, timeout=3)
        open_after = acceptor.open
    return proc, out, err, open_after


def test_sigterm_stops_the_run_cleanly(runs):
    proc, out, err, open_after = outcome(runs, "sigterm")
    assert proc.returncode == 0, out + err
    assert open_after == 0
    result = json.loads(out.splitlines()[-1][len("RESULT "):])
    assert result["stopped_by"] == "SIGTERM"
    assert result["connected_at_end"] == 20 and result["errors"] == {}
    assert result["duration_s"] < 10


def can_unshare_network() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0


NETNS_DRIVER = """
import importlib.util, json, subprocess, sys
spec = importlib.util.spec_from_file_location("bench_tests", sys.argv[1])
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)
with tests.Acceptor(port=1883) as acceptor:
    proc = subprocess.run([sys.executable, *sys.argv[2:], "--json", "-"], capture_output=True, text=True, timeout=30)
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "peers": acceptor.peers}))
"""


def run_in_small_netns(*args):
    """Run the bench against an acceptor in a network namespace of its own whose
    ip_local_port_range has 100 ports (40000-40099); the host is not touched."""
    setup = "ip link set lo up && echo '40000 40099' > /proc/sys/net/ipv4/ip_local_port_range && exec \"$@\""
    proc = subprocess.run(["unshare", "-n", "sh", "-c", setup, "sh", sys.executable, "-c", NETNS_DRIVER,
                           str(Path(__file__).resolve()), str(BENCH), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["rc"] == 0, found["stdout"] + found["stderr"]
    lines = found["stdout"].splitlines()
    return json.loads(lines[-1][len("RESULT "):]), lines, found["peers"]


HAVE_UNSHARE = can_unshare_network()


@scenario(HAVE_UNSHARE)
def port_exhaustion(_workdir):
    common = ("conn", "-h", "127.0.0.1", "-p", "1883", "-c", "150", "-R", "3000", "--duration", "1")
    with ThreadPoolExecutor(max_workers=2) as pool:
        one = pool.submit(run_in_small_netns, *common, "--ifaddr", "127.0.0.1", "--max-errors-printed", "1000")
        two = pool.submit(run_in_small_netns, *common, "--ifaddr", "127.0.0.1,127.0.0.2")
        return one.result(), two.result()


@pytest.mark.skipif(not HAVE_UNSHARE, reason="needs root and unshare -n for a private ip_local_port_range")
def test_source_ports_run_out_with_eaddrinuse_like_emqtt_bench(runs):
    one, two = outcome(runs, "port_exhaustion")
    result, lines, peers = one
    assert result["connect_succ"] == 100 and result["connected_peak"] == 100
    assert result["errors"] == {"eaddrinuse": 50} and result["connect_fail"] == 50
    assert "client(150): connect error - eaddrinuse" in lines
    assert "client(150): EXIT for {shutdown,eaddrinuse}" in lines
    assert len(peers) == 100
    # a second source address brings a second set of 100 ports
    result, _lines, peers = two
    assert result["connect_succ"] == 150 and result["errors"] == {}
    assert sorted(set(peers)) == ["127.0.0.1", "127.0.0.2"]
