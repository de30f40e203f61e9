"""mqtt_bench.py: the built-in MQTT load generator of mqttaction.emqx.

A stand-in for emqtt-bench on Linux hosts that do not have it: one file,
Python 3.11 and its standard library only.  It behaves like emqtt-bench (same
option names, output lines and error names) so that load tests of EMQX 4.4
clusters made with either tool can be compared.

Usage (run it with python3; -h is the host, as in emqtt-bench, so help is --help):

    python3 mqtt_bench.py conn -h HOST[,HOST...] -c COUNT --duration SECONDS [options]
    python3 mqtt_bench.py sub  -h HOST -c COUNT -t TOPIC [-q 0|1] [--latency] --duration SECONDS [options]
    python3 mqtt_bench.py pub  -h HOST -c COUNT -t TOPIC [-q 0|1] [-I MS] [-s BYTES] [-L N] [--latency]
                               --duration SECONDS

    e.g.: python3 mqtt_bench.py conn -h 10.0.0.5 -c 50000 -R 2000
              --ifaddr 10.0.1.10,10.0.1.11 --duration 300 --json /tmp/result.json

Options with emqtt-bench's names: -h/--host (comma-separated; client i uses
hosts[i % len]), -p/--port (1883), -c/--count, -n/--startnumber (0),
-R/--connrate (connections per second for the whole run; 0 = use -i),
-i/--interval (ms between connects for the whole run, 10: about 1000/i per
second), --ifaddr (comma-separated source addresses; client i binds
addrs[i % len]), -k/--keepalive (300), -C/--clean (true), -V/--version
(3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0; default 4, emqtt-bench's is 5),
-u/--username (%i = client sequence number), -P/--password, --prefix,
-S/--ssl with --cacertfile (verify the broker's certificate and name against
it; without it nothing is verified), --certfile, --keyfile; pub and sub:
-t/--topic (%i = sequence number, %c = client id), -q/--qos (0|1); pub:
-I/--interval_of_msg (ms, 1000), -s/--size (payload bytes, 256), -L/--limit
(messages per client, 0 = unlimited).

Own options: --duration SECONDS (required, at most 3600; every command holds
its connections until then, then sends DISCONNECT to every client, closes all
sockets and exits; SIGTERM and SIGINT end the run the same way, earlier),
--hold (accepted for compatibility: holding is what every command does),
--workers N|auto, --json FILE|-, --max-errors-printed N (20).  At most 200000
clients.

--latency (pub and sub) measures delivery latency, as emqtt-bench's
--payload-hdrs ts does; emqtt-bench 0.4.19 only prints a per-second average in
whole milliseconds, which is why this exists.  pub: every payload starts with
its send time, 8 bytes, big-endian microseconds since the epoch, then -s pads
it (so -s is at least 8).  sub: now minus that time, for every message of 8
bytes or more (negative, from clock skew, counts as 0), goes to a histogram of
5 % buckets; the result gets latency_us (count, min, mean, p50, p90, p99,
p999, max) and latency_hist, each timeline second its p50 and p99, and every
second with messages prints ``<elapsed> publish_latency avg=<N>ms`` like
emqtt-bench.  Both sides need --latency (a plain payload reads as a future
time: 0) and clocks that agree (same host, or NTP).

What matches emqtt-bench:

* With --ifaddr every socket is bound to (ifaddr, 0) before connect(), with
  neither SO_REUSEADDR nor IP_BIND_ADDRESS_NO_PORT, so one source address holds
  at most about as many sockets as net.ipv4.ip_local_port_range has ports
  (28,232 by default).  Past that bind() fails with EADDRINUSE and the client
  prints ``client(N): connect error - eaddrinuse`` and
  ``client(N): EXIT for {shutdown,eaddrinuse}``.  Without --ifaddr the kernel
  picks the source address and port.
* Errors are named like Erlang's: the errno name in lower case (eaddrinuse,
  eaddrnotavail, econnrefused, econnreset, emfile, ...), "timeout" for the
  10 s connect timeout (TCP connect to CONNACK) and for ETIMEDOUT,
  "tcp_closed"/"ssl_closed" when the broker closes a connection,
  "connack_<rc>" for a CONNACK with a non-zero return code, "nxdomain" for a
  host that does not resolve, "tls_verify_failed"/"tls_error" for TLS.
* Client sequence numbers run from startnumber + 1 to startnumber + count;
  the client id is "<prefix>_<N>" and the default prefix is
  "<ifaddr or local host name>_bench_<command>_<random>".
* Output: the start line ``Start with W workers, addrs pool size: A and req
  interval: I ms`` (I is each worker's interval between connects), then every
  second one line per counter that changed since it was last printed,
  ``<elapsed> <counter> total=<n> rate=<r>/sec``, elapsed as emqtt-bench's
  fmt_tdiff prints it ("5s", "1m0s", "1h2m3s").  Counters: connect_succ,
  connect_fail, sub, sub_fail, pub, pub_succ, pub_fail, recv.  pub counts
  PUBLISH packets sent; pub_succ QoS 0 messages written and QoS 1 messages
  acknowledged with a success code; pub_fail PUBACKs with a failure code and
  QoS 1 messages whose connection was lost before the PUBACK.

Workers: --workers auto starts max(1, number of source addresses,
ceil(count / (RLIMIT_NOFILE soft limit - 64))) processes, after raising the
soft RLIMIT_NOFILE to the hard limit; worker w runs the clients i with
i % workers == w (client i still uses hosts[i % len] and addrs[i % len]).
Each worker is one asyncio loop: one coroutine per client while it connects,
subscribes or publishes, a small protocol object per open connection, one
shared keepalive sweep and one shared connect-timeout sweep.  Workers report
to the parent over a pipe every 250 ms; only the parent prints.

At the end, clients send DISCONNECT and wait (up to 3 s) for the broker to
close first, so TIME_WAIT stays on the broker's side and this host's source
ports are free at once for the next run.

The result, a JSON object (keys in RESULT_KEYS, plus stopped_by and
worker_failures), goes to --json FILE, or to stdout as the last line with the
prefix "RESULT " when FILE is "-".  Exit status: 0 when the run completed,
connect failures included (the caller judges them), 2 for bad arguments, 1
for an internal error (a worker that did not finish cleanly included).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import ctypes
import datetime
import errno
import ipaddress
import json
import math
import os
import random
import resource
import selectors
import signal
import socket
import ssl
import sys
import time
import traceback

TOOL = "mqttaction.emqx mqtt_bench"
MAX_COUNT = 200_000
MAX_DURATION = 3600
MAX_PAYLOAD = 268_435_455 - 65_535 - 16
CONNECT_TIMEOUT = 10.0
SUBACK_TIMEOUT = 10.0
REPORT_INTERVAL = 0.25
FD_RESERVE = 64
STOP_GRACE = 10.0
CLOSE_WAIT = 3.0
STAMP_BYTES = 8
LATENCY_GROWTH = 1.05
COUNTERS = ("connect_succ", "connect_fail", "sub", "sub_fail", "pub", "pub_succ", "pub_fail", "recv")
RESULT_KEYS = (
    "tool", "command", "args", "hosts", "ifaddrs", "clients", "started_at", "duration_s",
    "connected_peak", "connected_at_end", "connect_succ", "connect_fail", "errors", "ramp_seconds",
    "connect_rate_avg", "pub", "pub_succ", "pub_fail", "recv", "sub", "sub_fail", "peak_rss_bytes",
    "workers", "timeline", "latency_us", "latency_hist",
)

CONNECTING, CONNECTED, CLOSED = 0, 1, 2
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


# ---------------------------------------------------------------- formatting

def fmt_tdiff(seconds: float) -> str:
    """Elapsed time as emqtt-bench prints it: 5s, 1m0s, 1h2m3s, 1d0h0m0s."""
    rest = int(seconds)
    parts = []
    for factor, unit in ((60, "s"), (60, "m"), (24, "h"), (10_000_000, "d")):
        if rest == 0:
            break
        parts.append(f"{rest % factor}{unit}")
        rest //= factor
    return "".join(reversed(parts)) or "0s"


def format_counter_line(elapsed: float, name: str, total: int, rate: float) -> str:
    return f"{fmt_tdiff(elapsed)} {name} total={total} rate={rate:.2f}/sec"


def format_latency_line(elapsed: float, avg_ms: int) -> str:
    return f"{fmt_tdiff(elapsed)} publish_latency avg={avg_ms}ms"


def connect_error_line(seq: int, kind: str) -> str:
    return f"client({seq}): connect error - {kind}"


def exit_line(seq: int, kind: str) -> str:
    return f"client({seq}): EXIT for {{shutdown,{kind}}}"


def start_line(workers: int, addrs: int, interval_ms: float) -> str:
    shown = int(interval_ms) if float(interval_ms).is_integer() else round(interval_ms, 3)
    return f"Start with {workers} workers, addrs pool size: {addrs} and req interval: {shown} ms"


class MqttError(Exception):
    """A client failure that already has its emqtt-bench-like name."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def error_kind(exc: BaseException) -> str:
    """Name an exception the way emqtt-bench names the error."""
    if isinstance(exc, MqttError):
        return exc.kind
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_verify_failed"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, socket.gaierror):
        return "nxdomain"
    if isinstance(exc, TimeoutError) and not exc.errno:
        return "timeout"
    if isinstance(exc, OSError) and exc.errno:
        if exc.errno == errno.ETIMEDOUT:
            return "timeout"
        return errno.errorcode.get(exc.errno, f"errno_{exc.errno}").lower()
    if isinstance(exc, (ConnectionError, EOFError)):
        return "tcp_closed"
    return type(exc).__name__.lower()


def vm_hwm(pid: int | str = "self") -> int:
    """Peak resident set size of a process in bytes (VmHWM), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


# ---------------------------------------------------------------- latency

def _latency_bounds() -> tuple[int, ...]:
    """Upper bounds (us, inclusive) of the histogram buckets: exact up to 20 us,
    then each about 5 % above the previous, so a bucket's midpoint is within
    2.5 % of every value in it; the last one takes whatever the header holds."""
    bounds = [0]
    while bounds[-1] < 1 << 40:  # 12.7 days
        bounds.append(max(bounds[-1] + 1, int(bounds[-1] * LATENCY_GROWTH)))
    bounds.append(1 << 64)
    return tuple(bounds)


LATENCY_BOUNDS = _latency_bounds()


def stamp_payload(sent_us: int, pad: bytes) -> bytes:
    """A --latency payload: the send time, big-endian microseconds since the epoch, then pad."""
    return sent_us.to_bytes(STAMP_BYTES, "big") + pad


def stamp_of(body: bytes, at: int = 0) -> int | None:
    """The send time that starts the payload body[at:], None when it is too short for one."""
    if len(body) - at < STAMP_BYTES:
        return None
    return int.from_bytes(body[at:at + STAMP_BYTES], "big")


class LatencyHist:
    """Latencies in microseconds: count, sum, min, max and log-spaced buckets.

    Workers send theirs as deltas (only the non-empty buckets) and the parent
    merges them, so percentiles come from all messages, not from averages."""

    __slots__ = ("buckets", "count", "sum", "min", "max")

    def __init__(self):
        self.buckets = {}
        self.count = 0
        self.sum = 0
        self.min = None
        self.max = None

    def add(self, us: int) -> None:
        if us < 0:
            us = 0  # the publisher's clock is ahead
        b = bisect.bisect_left(LATENCY_BOUNDS, us)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1
        self.sum += us
        if self.min is None or us < self.min:
            self.min = us
        if self.max is None or us > self.max:
            self.max = us

    def merge(self, other: LatencyHist) -> None:
        if not other.count:
            return
        for b, n in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + n
        self.count += other.count
        self.sum += other.sum
        self.min = other.min if self.min is None else min(self.min, other.min)
        self.max = other.max if self.max is None else max(self.max, other.max)

    def message(self) -> dict:
        return {"b": self.buckets, "n": self.count, "s": self.sum, "min": self.min, "max": self.max}

    @classmethod
    def from_message(cls, message: dict) -> LatencyHist:
        hist = cls()
        hist.buckets = {int(b): n for b, n in message["b"].items()}  # JSON made the keys strings
        hist.count, hist.sum, hist.min, hist.max = message["n"], message["s"], message["min"], message["max"]
        return hist

    def percentile(self, fraction: float) -> int | None:
        """The midpoint of the bucket holding the nearest-rank value, clamped to [min, max]."""
        if not self.count:
            return None
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                low = LATENCY_BOUNDS[b - 1] + 1 if b else 0
                return min(self.max, max(self.min, (low + LATENCY_BOUNDS[b]) // 2))
        return self.max

    def summary(self) -> dict | None:
        if not self.count:
            return None
        return {"count": self.count, "min": self.min, "mean": round(self.sum / self.count),
                "p50": self.percentile(0.5), "p90": self.percentile(0.9), "p99": self.percentile(0.99),
                "p999": self.percentile(0.999), "max": self.max}

    def bounds_json(self) -> dict | None:
        """{bucket upper bound in us, as a string: count}, buckets in order."""
        if not self.count:
            return None
        return {str(LATENCY_BOUNDS[b]): self.buckets[b] for b in sorted(self.buckets)}


# ---------------------------------------------------------------- MQTT codec

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _str(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def encode_connect(client_id: bytes, version: int, keepalive: int, clean: bool,
                   username: bytes | None = None, password: bytes | None = None) -> bytes:
    if version < 5 and username is None:
        password = None  # MQTT 3.1/3.1.1 forbid a password without a user name
    head = b"\x00\x06MQIsdp\x03" if version == 3 else b"\x00\x04MQTT" + bytes((version,))
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = head + bytes((flags,)) + keepalive.to_bytes(2, "big") + (b"\x00" if version == 5 else b"")
    body += _str(client_id)
    if username is not None:
        body += _str(username)
    if password is not None:
        body += _str(password)
    return _packet(0x10, body)


def encode_subscribe(packet_id: int, topic: bytes, qos: int, version: int) -> bytes:
    props = b"\x00" if version == 5 else b""
    return _packet(0x82, packet_id.to_bytes(2, "big") + props + _str(topic) + bytes((qos,)))


def encode_publish(topic: bytes, payload: bytes, qos: int, packet_id: int, version: int) -> bytes:
    body = _str(topic)
    if qos:
        body += packet_id.to_bytes(2, "big")
    if version == 5:
        body += b"\x00"
    return _packet(0x30 | (qos << 1), body + payload)


def skip_props(body: bytes, at: int) -> int:
    """Index after the MQTT 5 properties that start at body[at]."""
    length, shift = 0, 0
    while True:
        byte = body[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return at + length


def substitute(template: str, seq: int, client_id: str = "") -> str:
    return template.replace("%i", str(seq)).replace("%c", client_id)


# ---------------------------------------------------------------- worker side

class RawTransport:
    """The part of an asyncio transport that Client uses, for plain TCP.

    asyncio's own socket transport costs several system calls and objects per
    connection; this one is a socket, one reader registration and, only while
    the kernel's send buffer is full, a write buffer.
    """

    __slots__ = ("loop", "sock", "fd", "proto", "wbuf", "connecting", "closing", "closed")

    def __init__(self, loop, sock: socket.socket, proto: Client, connecting: bool):
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.proto = proto
        self.connecting = connecting
        self.closing = False
        self.closed = False
        proto.connection_made(self)
        if connecting:  # connect() is in progress: writes wait for it in wbuf
            self.wbuf = bytearray()
            loop.add_writer(self.fd, self.write_ready)
        else:
            self.wbuf = None
            loop.add_reader(self.fd, self.read_ready)

    def read_ready(self) -> None:
        try:
            data = self.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.finish(exc)
            return
        if data:
            self.proto.data_received(data)
        else:
            self.finish(None)

    def write(self, data: bytes) -> None:
        if self.closing or self.closed:
            return
        if self.wbuf is not None:
            self.wbuf += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.closing = True
            self.loop.call_soon(self.finish, exc)
            return
        if sent < len(data):
            self.wbuf = bytearray(data[sent:])
            self.loop.add_writer(self.fd, self.write_ready)

    def write_ready(self) -> None:
        if self.connecting:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.finish(OSError(err, os.strerror(err)))
                return
            self.connecting = False
            self.loop.add_reader(self.fd, self.read_ready)
        if self.wbuf:
            try:
                sent = self.sock.send(self.wbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.finish(exc)
                return
            del self.wbuf[:sent]
        if not self.wbuf:
            self.wbuf = None
            self.loop.remove_writer(self.fd)
            if self.closing:
                self.finish(None)

    def close(self) -> None:
        if self.closing or self.closed:
            return
        self.closing = True
        if not self.wbuf:
            self.loop.call_soon(self.finish, None)

    def abort(self) -> None:
        if not self.closed:
            self.closing = True
            self.loop.call_soon(self.finish, None)

    def finish(self, exc) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.wbuf is not None:
            self.wbuf = None
            self.loop.remove_writer(self.fd)
        self.sock.close()
        self.proto.connection_lost(exc)


def connect_ready(fut: asyncio.Future, sock: socket.socket) -> None:
    """Writer callback of a non-blocking connect(): report its outcome."""
    if fut.done():
        return
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        fut.set_exception(OSError(err, os.strerror(err)))
    else:
        fut.set_result(None)


class Client(asyncio.Protocol):
    """One MQTT connection; small on purpose, a worker holds thousands."""

    __slots__ = ("w", "seq", "transport", "state", "buf", "waiter", "last_tx", "pid", "inflight", "kind")

    def __init__(self, worker: Worker, seq: int):
        self.w = worker
        self.seq = seq
        self.transport = None
        self.state = CONNECTING
        self.buf = None
        self.waiter = worker.loop.create_future()
        self.last_tx = 0.0
        self.pid = 0
        self.inflight = None
        self.kind = None

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data: bytes) -> None:
        if self.w.stopping:
            return  # DISCONNECT has been sent: nothing may follow it
        self.transport.write(data)
        self.last_tx = self.w.loop.time()

    def next_pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    def fail(self, kind: str) -> None:
        self.kind = kind
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data):
        if self.buf:
            self.buf += data
            data = self.buf
        end = len(data)
        pos = 0
        while end - pos >= 2:
            length = 0
            shift = 0
            i = pos + 1
            complete = False
            while i < end:
                byte = data[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    self.fail("frame_error")
                    return
            if not complete or i + length > end:
                break
            first = data[pos]
            body = bytes(data[i:i + length])
            pos = i + length
            if not self.handle(first, body):
                return
        self.buf = bytearray(data[pos:]) if pos < end else None

    def handle(self, first: int, body: bytes) -> bool:
        kind = first >> 4
        w = self.w
        try:
            if kind == 3:  # PUBLISH
                w.counters["recv"] += 1
                qos = (first >> 1) & 3
                if w.latency is not None:  # before the PUBACK: its write is not part of the delivery
                    w.took(body, qos)
                if qos:
                    at = 2 + int.from_bytes(body[0:2], "big")
                    pid = body[at:at + 2]
                    self.send((b"\x40\x02" if qos == 1 else b"\x50\x02") + pid)
            elif kind == 4:  # PUBACK
                pid = int.from_bytes(body[0:2], "big")
                if self.inflight is not None and pid in self.inflight:
                    self.inflight.discard(pid)
                    ok = len(body) < 3 or body[2] < 0x80
                    w.counters["pub_succ" if ok else "pub_fail"] += 1
            elif kind == 13:  # PINGRESP
                pass
            elif kind == 2:  # CONNACK
                if self.state != CONNECTING or len(body) < 2:
                    raise ValueError("unexpected CONNACK")
                if not self.waiter.done():
                    self.waiter.set_result(body[1])
            elif kind == 9:  # SUBACK
                at = skip_props(body, 2) if w.version == 5 else 2
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(body[at:])
            elif kind == 6:  # PUBREL (incoming QoS 2)
                self.send(b"\x70\x02" + body[0:2])
            elif kind == 14:  # DISCONNECT from an MQTT 5 server
                self.fail(f"disconnect_{body[0] if body else 0}")
                return False
            elif kind == 5:  # PUBREC: we never publish QoS 2; release anyway
                self.send(b"\x62\x02" + body[0:2])
            else:
                raise ValueError(f"unexpected packet type {kind}")
        except (ValueError, IndexError):
            self.fail("frame_error")
            return False
        return True

    def connection_lost(self, exc):
        state = self.state
        self.state = CLOSED
        self.buf = None
        if state == CLOSED:
            return  # the client coroutine closed it and has counted it
        if self.kind:
            kind = self.kind
        elif exc is not None:
            kind = error_kind(exc)
        else:  # the broker closed the connection: emqtt's {shutdown,tcp_closed}
            kind = "tcp_closed" if isinstance(self.transport, RawTransport) else "ssl_closed"
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(MqttError(kind))
        if state == CONNECTED:
            self.w.lost(self, kind)


class Worker:
    """One process: runs the clients i with i % workers == index."""

    def __init__(self, cfg: argparse.Namespace, index: int, out_fd: int, t0: float):
        self.cfg = cfg
        self.index = index
        self.out_fd = out_fd
        self.t0 = t0
        self.version = cfg.version
        self.indices = range(index, cfg.count, cfg.workers)
        self.share = len(self.indices)
        self.loop = None
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.errors = {}
        self.connected = 0
        self.peak = 0
        self.full_at = None
        self.connected_at_stop = None
        self.clients = set()
        self.connecting = collections.deque()
        self.tasks = set()
        self.stopping = False
        self.lines = []
        self.line_budget = max(0, cfg.max_errors_printed)
        self.payload = b"x" * cfg.size if cfg.command == "pub" and not cfg.latency else b""
        self.pad = b"x" * (cfg.size - STAMP_BYTES) if cfg.command == "pub" and cfg.latency else b""
        self.latency = LatencyHist() if cfg.command == "sub" and cfg.latency else None  # since the last report

    # --- accounting

    def line(self, text: str) -> None:
        if self.line_budget > 0:
            self.line_budget -= 1
            self.lines.append(text)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def connect_failed(self, seq: int, kind: str) -> None:
        self.counters["connect_fail"] += 1
        self.error(kind)
        self.line(connect_error_line(seq, kind))
        self.line(exit_line(seq, kind))

    def took(self, body: bytes, qos: int) -> None:
        """Record the delivery latency of a received PUBLISH (body after the fixed header)."""
        now_us = time.time_ns() // 1000
        at = 2 + int.from_bytes(body[0:2], "big") + (2 if qos else 0)
        if self.version == 5:
            at = skip_props(body, at)
        sent_us = stamp_of(body, at)
        if sent_us is not None:
            self.latency.add(now_us - sent_us)

    def lost(self, client: Client, kind: str) -> None:
        self.clients.discard(client)
        self.connected -= 1
        if not self.stopping:
            if client.inflight:  # QoS 1 messages that will never be acknowledged
                self.counters["pub_fail"] += len(client.inflight)
            self.error(kind)
            self.line(exit_line(client.seq, kind))

    def report(self, final: bool = False) -> None:
        message = {
            "w": self.index, "c": self.counters, "n": self.connected, "e": self.errors,
            "full_at": self.full_at, "hwm": vm_hwm(), "final": final,
            "end_n": self.connected_at_stop,
        }
        if self.lines:
            message["l"], self.lines = self.lines[:200], self.lines[200:]
        if self.latency is not None and self.latency.count:
            message["lat"], self.latency = self.latency.message(), LatencyHist()
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]

    # --- connections

    def target_for(self, i: int):
        cfg = self.cfg
        ifaddr = cfg.ifaddr_list[i % len(cfg.ifaddr_list)] if cfg.ifaddr_list else None
        host = cfg.host_list[i % len(cfg.host_list)]
        family = cfg.ifaddr_families[i % len(cfg.ifaddr_list)] if cfg.ifaddr_list else None
        return ifaddr, host, cfg.targets.get((host, family))

    def connect_packet(self, client_id: str, seq: int) -> bytes:
        cfg = self.cfg
        username = substitute(cfg.username, seq).encode() if cfg.username is not None else None
        password = cfg.password.encode() if cfg.password is not None else None
        return encode_connect(client_id.encode(), cfg.version, cfg.keepalive, cfg.clean, username, password)

    async def run_client(self, i: int) -> None:
        cfg = self.cfg
        loop = self.loop
        seq = cfg.startnumber + i + 1
        ifaddr, host, target = self.target_for(i)
        client_id = f"{cfg.prefix_list[i % len(cfg.prefix_list)]}_{seq}"
        proto = Client(self, seq)
        sock = None
        try:
            if target is None:
                raise MqttError("nxdomain")
            family, sockaddr = target
            sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            if ifaddr is not None:
                sock.bind((ifaddr, 0))  # EADDRINUSE here once the source ports run out
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(sockaddr)
            if err and err not in (errno.EINPROGRESS, errno.EAGAIN):
                raise OSError(err, os.strerror(err))
            packet = self.connect_packet(client_id, seq)
            if cfg.ssl_context is None:
                RawTransport(loop, sock, proto, bool(err))
                sock = None
                self.connecting.append((loop.time() + CONNECT_TIMEOUT, proto))
                proto.send(packet)
                code = await proto.waiter
            else:
                code = await self.connect_tls(proto, sock, bool(err), host, packet)
            if code != 0:
                raise MqttError(f"connack_{code}")
        except asyncio.CancelledError:
            proto.state = CLOSED
            if proto.transport is not None:
                proto.transport.abort()
            elif sock is not None:
                sock.close()
            raise
        except Exception as exc:  # every failure is counted by name, as emqtt-bench does
            proto.state = CLOSED
            if proto.transport is not None:
                proto.transport.abort()
            elif sock is not None:
                sock.close()
            self.connect_failed(seq, error_kind(exc))
            return
        proto.state = CONNECTED
        proto.waiter = None
        self.counters["connect_succ"] += 1
        self.connected += 1
        self.clients.add(proto)
        if self.connected > self.peak:
            self.peak = self.connected
            if self.peak == self.share and self.full_at is None:
                self.full_at = loop.time()
        if cfg.command == "sub":
            await self.subscribe(proto, seq, client_id)
        elif cfg.command == "pub":
            await self.publish_loop(proto, seq, client_id)

    async def connect_tls(self, proto: Client, sock: socket.socket, connecting: bool, host: str, packet: bytes) -> int:
        loop = self.loop
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if connecting:
                fut = loop.create_future()
                loop.add_writer(sock.fileno(), connect_ready, fut, sock)
                try:
                    await fut
                finally:
                    loop.remove_writer(sock.fileno())
            await loop.create_connection(lambda: proto, sock=sock, ssl=self.cfg.ssl_context, server_hostname=host)
            proto.send(packet)
            return await proto.waiter

    def sweep_timeouts(self) -> None:
        """Fail the plain-TCP clients still without CONNACK after CONNECT_TIMEOUT (one shared timer)."""
        now = self.loop.time()
        pending = self.connecting
        while pending and pending[0][0] <= now:
            proto = pending.popleft()[1]
            if proto.state == CONNECTING and proto.waiter is not None and not proto.waiter.done():
                proto.waiter.set_exception(TimeoutError())

    async def subscribe(self, proto: Client, seq: int, client_id: str) -> None:
        cfg = self.cfg
        proto.waiter = self.loop.create_future()
        proto.send(encode_subscribe(proto.next_pid(), substitute(cfg.topic, seq, client_id).encode(), cfg.qos, cfg.version))
        try:
            async with asyncio.timeout(SUBACK_TIMEOUT):
                codes = await proto.waiter
        except TimeoutError:
            self.counters["sub_fail"] += 1
            return
        except MqttError:
            return  # the connection was lost: counted there
        finally:
            proto.waiter = None
        self.counters["sub" if codes and codes[0] < 0x80 else "sub_fail"] += 1

    async def publish_loop(self, proto: Client, seq: int, client_id: str) -> None:
        cfg = self.cfg
        loop = self.loop
        counters = self.counters
        topic = substitute(cfg.topic, seq, client_id).encode()
        qos = cfg.qos
        interval = cfg.interval_of_msg / 1000.0
        limit = cfg.limit
        latency = cfg.latency
        if qos:
            proto.inflight = set()
        sent = 0
        due = loop.time()
        while proto.state == CONNECTED and (not limit or sent < limit):
            due += interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                due = loop.time()
                await asyncio.sleep(0)
            if proto.state != CONNECTED:
                break
            pid = proto.next_pid() if qos else 0
            payload = stamp_payload(time.time_ns() // 1000, self.pad) if latency else self.payload
            proto.send(encode_publish(topic, payload, qos, pid, cfg.version))
            sent += 1
            counters["pub"] += 1
            if qos:
                proto.inflight.add(pid)
            else:
                counters["pub_succ"] += 1

    def spawn(self, i: int) -> None:
        task = self.loop.create_task(self.run_client(i))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connect_loop(self) -> None:
        cfg = self.cfg
        loop = self.loop
        indices = self.indices
        total = len(indices)
        k = 0
        if not cfg.rate:
            while k < total:  # no pacing: 256 connects a millisecond
                for index in indices[k:k + 256]:
                    self.spawn(index)
                k += 256
                await asyncio.sleep(0.001)
            return
        period = cfg.workers / cfg.rate
        start = self.t0 + self.index / cfg.rate
        while k < total:
            now = loop.time()
            due = min(total, int((now - start) / period) + 1) if now >= start else 0
            while k < due:
                self.spawn(indices[k])
                k += 1
            if k < total:
                await asyncio.sleep(max(0.0, start + k * period - loop.time()))

    async def keepalive_loop(self) -> None:
        keepalive = self.cfg.keepalive
        if keepalive <= 0:
            return
        loop = self.loop
        period = min(1.0, keepalive / 2)
        while True:  # one sweep a period for all clients, instead of a timer per client
            await asyncio.sleep(period)
            limit = loop.time() - (keepalive - period)
            for proto in self.clients:
                if proto.last_tx <= limit:
                    proto.send(PINGREQ)

    async def report_loop(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            self.sweep_timeouts()
            self.report()

    async def run(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.call_at(self.t0 + self.cfg.duration, stop.set)
        helpers = [loop.create_task(self.report_loop()), loop.create_task(self.keepalive_loop())]
        connector = loop.create_task(self.connect_loop())
        await stop.wait()
        for signum in (signal.SIGTERM, signal.SIGINT):  # stopping already: more signals change nothing
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
        self.stopping = True
        self.connected_at_stop = self.connected
        connector.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(connector, *self.tasks, return_exceptions=True)
        for task in helpers:
            task.cancel()
        # DISCONNECT, then let the broker close first (it does on DISCONNECT): the
        # TIME_WAIT state stays on its side and this host's source ports are free
        # at once for the next run.  Connections still open after CLOSE_WAIT are aborted.
        for proto in list(self.clients):
            if proto.transport is not None and proto.state == CONNECTED:
                proto.transport.write(DISCONNECT)
        limit = loop.time() + CLOSE_WAIT
        while self.clients and loop.time() < limit:
            await asyncio.sleep(0.02)
        for proto in list(self.clients):
            proto.transport.abort()
        await asyncio.sleep(0)
        self.report(final=True)


def worker_main(cfg: argparse.Namespace, index: int, out_fd: int, t0: float, parent: int) -> None:
    """Body of a forked worker process; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:  # die with the parent: PR_SET_PDEATHSIG
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:
            os._exit(0)
        asyncio.run(Worker(cfg, index, out_fd, t0).run())
    except BaseException:  # report the crash; the parent sees a missing final report
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


# ---------------------------------------------------------------- parent side

class WorkerState:
    def __init__(self, index: int, pid: int, fd: int):
        self.index = index
        self.pid = pid
        self.fd = fd
        self.buf = b""
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.errors = {}
        self.connected = 0
        self.full_at = None
        self.end_n = None
        self.hwm = 0
        self.final = False
        self.eof = False
        self.status = None


class Run:
    def __init__(self, cfg: argparse.Namespace):
        self.cfg = cfg
        self.states = []
        self.stop_requested = False
        self.stopped_by = "duration"
        self.lines_left = max(0, cfg.max_errors_printed)
        self.peak = 0
        self.last_printed = dict.fromkeys(COUNTERS, 0)
        self.last_tick = None
        self.timeline = []
        self.latency = LatencyHist()  # the whole run
        self.tick_latency = LatencyHist()  # since the last tick
        self.entry_latency = LatencyHist()  # the last timeline entry's second

    def on_signal(self, signum, _frame) -> None:
        if not self.stop_requested:
            self.stop_requested = True
            self.stopped_by = signal.Signals(signum).name

    def out(self, text: str) -> None:
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            pass

    def totals(self) -> dict:
        counters = dict.fromkeys(COUNTERS, 0)
        errors = {}
        for state in self.states:
            for name in COUNTERS:
                counters[name] += state.counters.get(name, 0)
            for kind, n in state.errors.items():
                errors[kind] = errors.get(kind, 0) + n
        return {"counters": counters, "errors": dict(sorted(errors.items())),
                "connected": sum(s.end_n if s.final and s.end_n is not None else s.connected for s in self.states)}

    def absorb(self, state: WorkerState, data: bytes) -> None:
        state.buf += data
        *lines, state.buf = state.buf.split(b"\n")
        for raw in lines:
            if not raw:
                continue
            message = json.loads(raw)
            state.counters = message["c"]
            state.errors = message["e"]
            state.connected = message["n"]
            state.full_at = message["full_at"]
            state.hwm = max(state.hwm, message["hwm"])
            if message.get("end_n") is not None:
                state.end_n = message["end_n"]
            if message["final"]:
                state.final = True
            if "lat" in message:
                delta = LatencyHist.from_message(message["lat"])
                self.latency.merge(delta)
                self.tick_latency.merge(delta)
            for text in message.get("l", ()):
                if self.lines_left > 0:
                    self.lines_left -= 1
                    self.out(text)
        if not state.final:
            self.peak = max(self.peak, sum(s.connected for s in self.states if not s.final))

    def tick(self, now: float, final: bool = False) -> None:
        """Print the counters that changed (emqtt-bench style) and add a timeline entry.

        The final tick, at the end of the run, only completes the timeline: a
        rate over its fraction of a second would mean little."""
        elapsed = now - self.cfg.t0
        interval = now - self.last_tick if self.last_tick is not None else elapsed
        self.last_tick = now
        totals = self.totals()
        counters = totals["counters"]
        latency, self.tick_latency = self.tick_latency, LatencyHist()
        if latency.count and not final:  # emqtt-bench's whole milliseconds, rounded down
            self.out(format_latency_line(elapsed, latency.sum // latency.count // 1000))
        for name in COUNTERS:
            value = counters[name]
            if value != self.last_printed[name] and not final:
                rate = (value - self.last_printed[name]) / interval if interval > 0 else 0.0
                self.out(format_counter_line(elapsed, name, value, rate))
                self.last_printed[name] = value
        entry = {"t": int(elapsed), "connected": totals["connected"],
                 "connect_succ": counters["connect_succ"], "connect_fail": counters["connect_fail"],
                 "pub": counters["pub"], "recv": counters["recv"], "errors": sum(totals["errors"].values())}
        if self.timeline and self.timeline[-1]["t"] == entry["t"]:
            self.entry_latency.merge(latency)  # the same second again: keep what it had
            self.timeline[-1] = entry
        else:
            self.entry_latency = latency
            self.timeline.append(entry)
        entry["latency_p50_us"] = self.entry_latency.percentile(0.5)
        entry["latency_p99_us"] = self.entry_latency.percentile(0.99)

    def start_workers(self) -> None:
        cfg = self.cfg
        parent = os.getpid()
        for index in range(cfg.workers):
            read_fd, write_fd = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                for state in self.states:
                    os.close(state.fd)
                worker_main(cfg, index, write_fd, cfg.t0, parent)
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            self.states.append(WorkerState(index, pid, read_fd))

    def supervise(self) -> None:
        cfg = self.cfg
        selector = selectors.DefaultSelector()
        for state in self.states:
            selector.register(state.fd, selectors.EVENT_READ, state)
        next_tick = cfg.t0 + 1.0
        forwarded = False
        kill_at = cfg.t0 + cfg.duration + STOP_GRACE
        while any(not s.eof for s in self.states):
            now = time.monotonic()
            timeout = max(0.0, min(REPORT_INTERVAL, next_tick - now))
            for key, _events in selector.select(timeout):
                state = key.data
                try:
                    data = os.read(state.fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    self.absorb(state, data)
                else:
                    state.eof = True
                    selector.unregister(state.fd)
                    os.close(state.fd)
            now = time.monotonic()
            if self.stop_requested and not forwarded:
                forwarded = True
                kill_at = min(kill_at, now + STOP_GRACE)
                self.signal_workers(signal.SIGTERM)
            if now >= next_tick:
                self.tick(now)
                next_tick += max(1.0, math.floor(now - next_tick) + 1.0)
            if now >= kill_at:
                self.signal_workers(signal.SIGKILL)
                for state in self.states:
                    if not state.eof:
                        state.eof = True
                        selector.unregister(state.fd)
                        os.close(state.fd)
        selector.close()
        for state in self.states:
            try:
                _pid, status = os.waitpid(state.pid, 0)
                state.status = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                state.status = None

    def signal_workers(self, signum: int) -> None:
        for state in self.states:
            if not state.eof:
                try:
                    os.kill(state.pid, signum)
                except ProcessLookupError:
                    pass

    def result(self, end: float) -> dict:
        cfg = self.cfg
        totals = self.totals()
        counters = totals["counters"]
        elapsed = end - cfg.t0
        ramp = None
        if self.states and all(s.full_at is not None for s in self.states):
            ramp = round(max(s.full_at for s in self.states) - cfg.t0, 3)
        span = ramp if ramp else elapsed
        connected_at_end = sum(s.end_n if s.end_n is not None else s.connected for s in self.states)
        args = dict(vars(cfg.raw_args))
        if args.get("password") is not None:
            args["password"] = "********"
        result = {
            "tool": TOOL,
            "command": cfg.command,
            "args": args,
            "hosts": cfg.host_list,
            "ifaddrs": cfg.ifaddr_list,
            "clients": cfg.count,
            "started_at": cfg.started_at,
            "duration_s": round(elapsed, 3),
            "connected_peak": max(self.peak, connected_at_end),
            "connected_at_end": connected_at_end,
            "connect_succ": counters["connect_succ"],
            "connect_fail": counters["connect_fail"],
            "errors": totals["errors"],
            "ramp_seconds": ramp,
            "connect_rate_avg": round(counters["connect_succ"] / span, 2) if span > 0 else 0.0,
            "pub": counters["pub"],
            "pub_succ": counters["pub_succ"],
            "pub_fail": counters["pub_fail"],
            "recv": counters["recv"],
            "sub": counters["sub"],
            "sub_fail": counters["sub_fail"],
            "peak_rss_bytes": vm_hwm() + sum(s.hwm for s in self.states),
            "workers": cfg.workers,
            "timeline": self.timeline,
            "latency_us": self.latency.summary() if cfg.latency else None,
            "latency_hist": self.latency.bounds_json() if cfg.latency else None,
            "stopped_by": self.stopped_by,
            "worker_failures": [s.index for s in self.states if not s.final or s.status not in (0, None)],
        }
        return result

    def execute(self) -> int:
        cfg = self.cfg
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_signal)
        self.out(start_line(cfg.workers, len(cfg.ifaddr_list), cfg.worker_interval_ms))
        cfg.started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        cfg.t0 = time.monotonic()
        self.start_workers()
        self.supervise()
        end = time.monotonic()
        self.tick(end, final=True)
        result = self.result(end)
        for kind, n in result["errors"].items():
            self.out(f"error summary - {kind}: {n} clients")
        for index in result["worker_failures"]:
            self.out(f"worker {index} did not finish cleanly")
        text = json.dumps(result)
        if cfg.json_out == "-":
            self.out("RESULT " + text)
        elif cfg.json_out:
            with open(cfg.json_out, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        return 1 if result["worker_failures"] else 0


# ---------------------------------------------------------------- arguments

def parse_bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqtt_bench.py", add_help=False,
        description="MQTT load generator compatible with emqtt-bench (conn, pub, sub).",
        epilog="-h is the host, as in emqtt-bench: use --help for this text.")
    add = parser.add_argument
    add("--help", action="help", help="show this help and exit")
    add("command", choices=("conn", "pub", "sub"), help="conn: connect only; pub: connect and publish; sub: connect and subscribe")
    add("-h", "--host", default="localhost", help="broker host(s), comma-separated; client i uses hosts[i %% len] (localhost)")
    add("-p", "--port", type=int, default=1883, help="broker port (1883)")
    add("-V", "--version", type=int, choices=(3, 4, 5), default=4, help="MQTT version: 3 = 3.1, 4 = 3.1.1, 5 = 5.0 (4)")
    add("-c", "--count", type=int, required=True, help="number of clients")
    add("-n", "--startnumber", type=int, default=0, help="client sequence numbers start after this (0)")
    add("-R", "--connrate", type=float, default=0, help="connections per second, all workers together; 0 = use --interval (0)")
    add("-i", "--interval", type=float, default=10, help="ms between connects, all workers together (10)")
    add("--ifaddr", help="source address(es), comma-separated; client i binds addrs[i %% len] with port 0")
    add("-k", "--keepalive", type=int, default=300, help="keepalive in seconds (300)")
    add("-C", "--clean", type=parse_bool, default=True, help="clean session/start: true|false (true)")
    add("-u", "--username", help="user name; %%i = client sequence number")
    add("-P", "--password", help="password")
    add("--prefix", help="client id prefix (<ifaddr or hostname>_bench_<command>_<random>)")
    add("-S", "--ssl", action="store_true", help="use TLS")
    add("--cacertfile", help="CA certificates to verify the server with (no verification without)")
    add("--certfile", help="client certificate for TLS")
    add("--keyfile", help="client key for TLS")
    add("-t", "--topic", help="topic (pub, sub); %%i = client sequence number, %%c = client id")
    add("-q", "--qos", type=int, choices=(0, 1), default=0, help="QoS of publish or subscription (0)")
    add("-I", "--interval_of_msg", type=float, default=1000, help="ms between messages of one client (1000)")
    add("-s", "--size", type=int, default=256, help="payload bytes (256)")
    add("-L", "--limit", type=int, default=0, help="messages per client, 0 = unlimited (0)")
    add("--latency", action="store_true",
        help="pub: start every payload with its send time (8 bytes, so -s 8 or more); sub: measure delivery latency")
    add("--duration", type=float, required=True, help=f"seconds the run lasts, at most {MAX_DURATION}")
    add("--hold", action="store_true", help="hold connections until --duration ends (always done)")
    add("--workers", default="auto", help="worker processes: N or auto (auto)")
    add("--json", dest="json_out", metavar="FILE", help='write the result JSON to FILE; "-" prints it as "RESULT {...}"')
    add("--max-errors-printed", type=int, default=20, help="per-client error lines printed at most (20)")
    return parser


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    elif hard == resource.RLIM_INFINITY and soft != hard:
        for target in (1_048_576, 65_536):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
                break
            except (ValueError, OSError):
                continue
    return soft


def resolve(host: str, port: int, family):
    """(family, sockaddr) of a host for a source-address family, None when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, family or socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    for wanted in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == wanted:
                return info[0], info[4]
    return None


def configure(argv) -> argparse.Namespace:
    """Parse and check the arguments; exits 2 on a bad one."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = argparse.Namespace(**vars(args))
    cfg.raw_args = args

    def bad(message: str):
        parser.error(message)

    if not 1 <= args.count <= MAX_COUNT:
        bad(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if not 0 < args.duration <= MAX_DURATION:
        bad(f"--duration must be more than 0 and at most {MAX_DURATION} seconds, got {args.duration:g}")
    if not 1 <= args.port <= 65535:
        bad(f"--port must be between 1 and 65535, got {args.port}")
    if args.connrate < 0 or args.interval < 0 or args.interval_of_msg < 0:
        bad("--connrate, --interval and --interval_of_msg must not be negative")
    if not 0 <= args.keepalive <= 65535:
        bad("--keepalive must be between 0 and 65535")
    if args.startnumber < 0 or args.limit < 0 or args.max_errors_printed < 0:
        bad("--startnumber, --limit and --max-errors-printed must not be negative")
    if not 0 <= args.size <= MAX_PAYLOAD:
        bad(f"--size must be between 0 and {MAX_PAYLOAD}")
    if args.command == "pub" and args.latency and args.size < STAMP_BYTES:
        bad(f"--latency needs --size of at least {STAMP_BYTES} (the send time takes {STAMP_BYTES} bytes), "
            f"got {args.size}")
    if args.command in ("pub", "sub") and not args.topic:
        bad(f"{args.command} needs -t/--topic")
    if args.command == "pub" and args.interval_of_msg == 0 and args.limit == 0:
        bad("pub with --interval_of_msg 0 needs --limit")
    cfg.host_list = [h.strip() for h in args.host.split(",") if h.strip()]
    if not cfg.host_list:
        bad("-h/--host names no host")
    cfg.ifaddr_list = []
    cfg.ifaddr_families = []
    if args.ifaddr is not None:
        for text in (a.strip() for a in args.ifaddr.split(",")):
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                bad(f"--ifaddr: {text!r} is not an IP address")
            cfg.ifaddr_list.append(str(address))
            cfg.ifaddr_families.append(socket.AF_INET6 if address.version == 6 else socket.AF_INET)
    if args.json_out not in (None, "-"):
        directory = os.path.dirname(os.path.abspath(args.json_out))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            bad(f"--json: cannot write in {directory}")
    for name in ("cacertfile", "certfile", "keyfile"):
        path = getattr(args, name)
        if path is not None and not os.access(path, os.R_OK):
            bad(f"--{name}: cannot read {path}")
    if args.keyfile is not None and args.certfile is None:
        bad("--keyfile needs --certfile")
    cfg.ssl_context = None
    if args.ssl:
        try:
            if args.cacertfile:
                context = ssl.create_default_context(cafile=args.cacertfile)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if args.certfile:
                context.load_cert_chain(args.certfile, args.keyfile)
        except (ssl.SSLError, OSError) as exc:
            bad(f"TLS files: {exc}")
        cfg.ssl_context = context

    soft = raise_nofile()
    per_process = max(1, soft - FD_RESERVE)
    if args.workers == "auto":
        workers = max(1, len(cfg.ifaddr_list), math.ceil(args.count / per_process))
    else:
        try:
            workers = int(args.workers)
        except ValueError:
            bad(f"--workers must be a number or auto, got {args.workers!r}")
        if not 1 <= workers <= 1024:
            bad("--workers must be between 1 and 1024")
    cfg.workers = min(workers, args.count)
    cfg.per_process_limit = per_process
    if math.ceil(args.count / cfg.workers) > per_process:
        print(f"warning: {math.ceil(args.count / cfg.workers)} clients per worker exceed the open-file limit "
              f"of {soft}; expect emfile errors", file=sys.stderr)

    cfg.rate = args.connrate if args.connrate > 0 else (1000.0 / args.interval if args.interval > 0 else 0.0)
    cfg.worker_interval_ms = (1000.0 * cfg.workers / cfg.rate) if cfg.rate else 0
    random_part = random.randint(1, 0xFFFFFFFF)
    if args.prefix is not None:
        cfg.prefix_list = [args.prefix]
    else:
        sources = cfg.ifaddr_list or [socket.gethostname()]
        cfg.prefix_list = [f"{source}_bench_{args.command}_{random_part}" for source in sources]
    families = set(cfg.ifaddr_families) or {None}
    cfg.targets = {(host, family): resolve(host, args.port, family) for host in cfg.host_list for family in families}
    return cfg


def main(argv=None) -> int:
    """Exit status: 0 run completed, 2 bad arguments, 1 internal error."""
    try:
        cfg = configure(argv)
        return Run(cfg).execute()
    except SystemExit as exc:  # argparse: 2 for bad arguments, 0 for --help
        return exc.code if isinstance(exc.code, int) else 2
    except Exception:  # an internal error: say where, exit 1
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
