# -*- coding: utf-8 -*-
# Copyright (c) mqttaction.emqx contributors
# Apache License 2.0 (see LICENSE)

"""Load tests of an EMQX cluster: what a load generator can hold, and the report of a run.

The client-side limit the seed's load test ran into (``client(4): EXIT for
{shutdown,eaddrinuse}``): a generator that binds every socket to a source
address before connecting (emqtt-bench with ``--ifaddr``, the collection's
mqtt_bench.py the same way) takes an ephemeral port per socket at bind time, so
one address holds at most as many connections as
``net.ipv4.ip_local_port_range`` has ports (28,232 by Linux's default
32768-60999), whatever the destinations.  :func:`capacity_problem` says so
before a run instead of half-way through it.

The report joins what the generators measured (their result JSON) with what the
brokers showed meanwhile (samples of connections per node from the management
API and CPU and memory of each node's container).
"""

from __future__ import annotations

import math

# Ports a generator host needs for itself (ssh, the API sampler, DNS...) out of each range.
RESERVED_PORTS = 100


def port_range_size(text):
    """The number of ports of a ``net.ipv4.ip_local_port_range`` value ("32768 60999" or "32768\\t60999")."""
    parts = str(text).split()
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValueError("not a port range: %r (expected two numbers, like '32768 60999')" % (text,))
    low, high = int(parts[0]), int(parts[1])
    if not 1 <= low <= high <= 65535:
        raise ValueError("not a port range: %r" % (text,))
    return high - low + 1


def clients_per_address(clients, addresses):
    """The most clients any one source address carries when clients are spread round-robin."""
    return int(math.ceil(float(clients) / max(1, addresses)))


def capacity_problem(clients, addresses, ports, host="this host"):
    """Why ``clients`` connections cannot be made from ``addresses`` source addresses with
    ``ports`` ephemeral ports each; empty when they can."""
    usable = ports - RESERVED_PORTS
    per_address = clients_per_address(clients, addresses)
    if per_address <= usable:
        return ""
    needed = int(math.ceil(float(clients) / max(1, usable)))
    return ("%s clients over %d address%s with %s ports on %s: not possible (each address holds at most about "
            "%s connections, one ephemeral port each, taken at bind time); add addresses (at least %d in "
            "emqx_bench_source_addresses) or widen the range (emqx_bench_port_range, for example '1024 65535')"
            % (format(clients, ","), addresses, "" if addresses == 1 else "es", format(ports, ","), host,
               format(usable, ","), needed))


# File descriptors an emqtt-bench process keeps for itself (the Erlang VM's own
# files, pipes and its port to the terminal) out of its open-file limit.
EMQTT_BENCH_FD_RESERVE = 256
# emqtt-bench connects well below the rate -R asks for: -R 1000 gave 666/s against an idle broker, -R 1500
# 740-970/s against three nodes sharing two cores with it. Publishers wait for twice the time asked for.
EMQTT_BENCH_RATE_SHORTFALL = 2
# Publishers stop this long before the subscribers, so that what is in flight
# arrives and counts as received, not dropped.
PUBLISH_STOP_EARLY = 5
# A process that has to end by itself (mqtt_bench.py) gets this long past its
# duration before it is stopped; emqtt-bench runs until stopped.
STOP_GRACE = 30


def _number(value, default=0):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _split(total, parts):
    """``total`` in ``parts`` nearly equal shares, the larger first."""
    parts = max(1, parts)
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def plan_processes(spec):
    """The load generator processes of one host, from its share of the load.

    spec: tool (emqtt_bench or builtin), command (conn, sub, pub), host, clients, start (the sequence number
    before this host's first client), rate (connects per second here), publishers (with command sub: this
    host's publishers, publishing on the subscribers' topics so publisher N reaches subscriber N), probe
    (pairs of built-in latency clients beside emqtt-bench), addresses, targets, port, keepalive, topic,
    probe_topic, qos, message_interval, payload_size, username, password, nofile, duration, emqtt_bench (the
    executable), builtin (mqtt_bench.py's path), python.

    Returns one dict per process: name, role (conn, sub, pub, probe-sub, probe-pub), tool, clients, delay
    (seconds after the start), seconds (how long it runs), stop_after (seconds after the delay at which it
    is stopped), ok_codes (exit codes of a normal end) and argv.
    """
    tool, command = spec["tool"], spec["command"]
    duration = int(spec["duration"])
    clients = int(spec["clients"])
    rate = max(1, int(spec["rate"]))
    publishers = int(spec.get("publishers") or 0) if command == "sub" else 0
    probe = int(spec.get("probe") or 0) if tool == "emqtt_bench" and publishers else 0
    # Publishers wait until the subscribers are in, and stop early.
    ramp = float(clients) / rate * (EMQTT_BENCH_RATE_SHORTFALL if tool == "emqtt_bench" else 1)
    pub_delay = min(int(math.ceil(ramp)) + 5, duration // 2) if publishers or probe else 0
    pub_seconds = max(1, duration - pub_delay - PUBLISH_STOP_EARLY)
    targets = [str(target) for target in spec["targets"]]
    # Publishers connect to the next target of their subscriber's, so messages cross nodes.
    pub_targets = targets[1:] + targets[:1]
    latency = bool(publishers)
    processes = []

    def common(role, hosts, count, start, connect_rate):
        argv = ["-h", ",".join(hosts), "-p", str(spec["port"]), "-c", str(count), "-n", str(start),
                "-R", str(max(1, int(connect_rate))), "-k", str(spec["keepalive"]),
                "--prefix", "mqttaction-%s-%s" % (spec["host"], role)]
        if spec.get("addresses"):
            argv += ["--ifaddr", ",".join(spec["addresses"])]
        if spec.get("username"):
            argv += ["-u", spec["username"], "-P", spec.get("password") or ""]
        return argv

    def messages(role, topic):
        argv = ["-t", topic, "-q", str(spec["qos"])]
        if role.endswith("pub"):
            argv += ["-I", str(spec["message_interval"]), "-s", str(max(16, int(spec["payload_size"])))]
        return argv

    def builtin(command, role, hosts, count, connect_rate, topic, with_latency, seconds):
        return ([spec.get("python") or "python3", spec["builtin"], command]
                + common(role, hosts, count, int(spec["start"]), connect_rate)
                + (messages(role, topic) if topic else []) + (["--latency"] if with_latency else [])
                + ["--duration", str(seconds), "--json", "-"])

    def add(name, role, tool_name, count, argv, delay=0, seconds=duration, **planned):
        if tool_name == "emqtt_bench":
            stop_after, ok_codes = seconds, [124]  # timeout's code: it stopped emqtt-bench, as planned
        else:
            stop_after, ok_codes = seconds + STOP_GRACE, [0]
        process = {"name": name, "role": role, "tool": tool_name, "clients": count, "delay": delay,
                   "seconds": seconds, "stop_after": stop_after, "ok_codes": ok_codes, "argv": argv}
        process.update(planned)
        processes.append(process)

    if tool == "emqtt_bench":
        per_process = max(1, int(spec["nofile"]) - EMQTT_BENCH_FD_RESERVE)
        shares = _split(clients, int(math.ceil(float(clients) / per_process)))
        start = int(spec["start"])
        for index, count in enumerate(shares):
            argv = [spec["emqtt_bench"], command] + common(command, targets, count, start, rate * count / clients)
            if command in ("sub", "pub"):
                argv += messages(command, spec["topic"])
            if latency:
                argv += ["--payload-hdrs", "ts"]  # the subscribers print each second's average latency
            add("%s-%d" % (command, index + 1), command, "emqtt_bench", count, argv)
            start += count
        if publishers:
            # A known count (-L, all publishers together): emqtt-bench says "publish complete" and ends by itself,
            # so what was published is exact (its counter line of the last second is never printed).
            # Room for 10 s of delay (a busy broker slows publishing): it completes before it is stopped.
            limit = publishers * int(max(1, pub_seconds - 10) * 1000 // max(1, int(spec["message_interval"])))
            argv = ([spec["emqtt_bench"], "pub"] + common("pub", pub_targets, publishers, int(spec["start"]), rate)
                    + messages("pub", spec["topic"]) + ["--payload-hdrs", "ts", "-L", str(limit)])
            add("pub-1", "pub", "emqtt_bench", publishers, argv, pub_delay, pub_seconds,
                limit=limit, ok_codes=[0, 124], stop_after=pub_seconds + PUBLISH_STOP_EARLY - 1)
    else:
        topic = spec["topic"] if command in ("sub", "pub") else None
        add("%s-1" % command, command, "builtin", clients,
            builtin(command, command, targets, clients, rate, topic, latency, duration))
        if publishers:
            add("pub-1", "pub", "builtin", publishers,
                builtin("pub", "pub", pub_targets, publishers, rate, spec["topic"], True, pub_seconds),
                pub_delay, pub_seconds)
    if probe:
        topic = spec.get("probe_topic") or "mqttaction-probe/%i"
        add("probe-sub", "probe-sub", "builtin", probe,
            builtin("sub", "probe-sub", targets, probe, 50, topic, True, duration))
        # From the start, before the load makes connecting slow (its CONNACK timeout is 10 s): the probes
        # measure the latency during the ramp too.
        probe_seconds = max(1, duration - PUBLISH_STOP_EARLY)
        add("probe-pub", "probe-pub", "builtin", probe,
            builtin("pub", "probe-pub", pub_targets, probe, 50, topic, True, probe_seconds), 0, probe_seconds)
    return processes


def _seconds(elapsed):
    """emqtt-bench's fmt_tdiff ("1h2m3s", "5s") in seconds."""
    total, number = 0, ""
    for char in elapsed:
        if char.isdigit():
            number += char
        elif char in "dhms" and number:
            total += int(number) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            raise ValueError("not an emqtt-bench elapsed time: %r" % elapsed)
    return total


def _counter_line(line):
    """(seconds, name, value) of an emqtt-bench style line: ``1m5s recv total=1200 rate=20.00/sec``
    or ``7s publish_latency avg=3ms``; None for any other line."""
    parts = line.split()
    try:
        if len(parts) == 4 and parts[2].startswith("total=") and parts[3].startswith("rate="):
            return _seconds(parts[0]), parts[1], int(parts[2][len("total="):])
        if len(parts) == 3 and parts[1] == "publish_latency" and parts[2].startswith("avg="):
            return _seconds(parts[0]), "latency_avg_ms", float(parts[2][len("avg="):].rstrip("ms"))
    except ValueError:
        return None
    return None


def latest_counters(text):
    """The newest value of each counter an emqtt-bench style output printed (progress of a running load)."""
    latest = {"t": 0}
    for raw in text.replace("\r", "\n").splitlines():
        parsed = _counter_line(raw.strip())
        if parsed:
            latest["t"] = max(latest["t"], parsed[0])
            latest[parsed[1]] = parsed[2]
    return latest


def parse_emqtt_bench(text, clients, limit=None):
    """A result like mqtt_bench.py's from what emqtt-bench printed: its counter lines (cumulative, printed
    when they change), its per-second ``publish_latency`` average, and its per-client error lines
    (``client(N): connect error - eaddrinuse`` and ``client(N): EXIT for {shutdown,eaddrinuse}``).
    ``limit``: the ``-L`` of a pub run, which it printed "publish complete" for when it got there."""
    totals, timeline, errors, exits = {}, {}, {}, {}
    for raw in text.replace("\r", "\n").splitlines():
        line = raw.strip()
        if line == "publish complete" and limit:
            line = "%ds pub total=%d rate=0/sec" % (max(timeline or [0]) + 1, limit)
        parsed = _counter_line(line)
        if parsed:
            t, name, value = parsed
            point = timeline.setdefault(t, {"t": t})
            if name == "latency_avg_ms":
                point["latency_avg_ms"] = value
            else:
                totals[name] = value
        elif line.startswith("client(") and " connect error - " in line:
            kind = line.split(" connect error - ", 1)[1].strip()
            errors[kind] = errors.get(kind, 0) + 1
        elif line.startswith("client(") and " EXIT for " in line:
            reason = line.split(" EXIT for ", 1)[1].strip()
            if reason.startswith("{shutdown,") and reason.endswith("}"):
                reason = reason[len("{shutdown,"):-1]
            exits[reason] = exits.get(reason, 0) + 1
        else:
            continue
        if parsed:
            point.update({"connected": totals.get("connect_succ", 0), "connect_succ": totals.get("connect_succ", 0),
                          "connect_fail": totals.get("connect_fail", 0), "sub": totals.get("sub", 0),
                          "pub": totals.get("pub", 0), "recv": totals.get("recv", 0)})
    # A connect error ends its client too (one EXIT each); other exits were connections lost later.
    for kind, count in errors.items():
        if kind in exits:
            exits[kind] = max(0, exits[kind] - count)
    lost = dict((kind, count) for kind, count in exits.items() if count)
    points = [timeline[t] for t in sorted(timeline) if "connected" in timeline[t]]
    ramp = next((point["t"] for point in points if point["connect_succ"] >= clients), None)
    all_errors = dict(errors)
    for kind, count in lost.items():
        all_errors[kind] = all_errors.get(kind, 0) + count
    return {"tool": "emqtt-bench", "clients": clients, "timeline": points, "errors": all_errors,
            "connect_succ": totals.get("connect_succ", 0), "connect_fail": totals.get("connect_fail", 0),
            "connected_peak": max([point["connected"] for point in points] or [0]),
            "connected_at_end": max(0, totals.get("connect_succ", 0) - sum(lost.values())),
            "ramp_seconds": ramp, "peak_rss_bytes": None, "sub": totals.get("sub", 0),
            "pub": totals.get("pub", 0), "pub_succ": totals.get("pub", 0), "recv": totals.get("recv", 0),
            "latency_us": None, "latency_hist": None,
            "latency_avg_ms": [[point["t"], point["latency_avg_ms"]] for point in timeline.values()
                               if "latency_avg_ms" in point]}


def percentiles(hist):
    """count, p50, p90, p99, p999 and max in ms of a latency histogram ({upper bound in µs: count})."""
    buckets = sorted((float(bound), int(count)) for bound, count in (hist or {}).items() if int(count) > 0)
    total = sum(count for _bound, count in buckets)
    if not total:
        return None
    figures = {"count": total}
    for name, share in (("p50_ms", 0.50), ("p90_ms", 0.90), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        rank, seen = share * total, 0
        for bound, count in buckets:
            seen += count
            if seen >= rank:
                figures[name] = round(bound / 1000.0, 2)
                break
    figures["max_ms"] = round(buckets[-1][0] / 1000.0, 2)
    return figures


def _dense(points, offset, end, keys):
    """Cumulative counters per second from ``offset`` to ``end``, the last value carried forward."""
    series, last, index = {}, dict.fromkeys(keys, 0), 0
    points = sorted(points, key=lambda point: point["t"])
    for t in range(0, end + 1):
        while index < len(points) and int(points[index]["t"]) + offset <= t:
            for key in keys:
                last[key] = _number(points[index].get(key), last[key])
            index += 1
        series[t] = dict(last)
    return series


BROKER_COUNTERS = ("messages_received", "messages_sent", "delivery_dropped", "no_subscribers")


def broker_messages(samples):
    """What the nodes counted over the run (the last sample less the first, summed over the nodes), or None
    when the samples have no message counters."""
    first, last = {}, {}
    for sample in sorted(samples, key=lambda entry: entry["t"]):
        if all(isinstance(sample.get(key), (int, float)) for key in BROKER_COUNTERS):
            first.setdefault(sample["node"], sample)
            last[sample["node"]] = sample
    if not last:
        return None
    return dict((key, int(sum(last[node][key] - first[node][key] for node in last))) for key in BROKER_COUNTERS)


def summarize(generators, samples):
    """One summary of a run from the generators' processes and the brokers' samples.

    generators: [{"host", "role" (conn, sub, pub, probe-sub, probe-pub), "offset" (seconds after the start
    the process started), "seconds" (how long it ran, when known), "result": mqtt_bench.py's result or
    parse_emqtt_bench's}]
    samples: [{"t": seconds since the run started, "node", "connections", "cpu_percent", "memory_bytes"}]
    """
    keys = ("connected", "connect_succ", "connect_fail", "sub", "pub", "recv")
    end = 0
    for entry in generators:
        for point in entry["result"].get("timeline", []):
            end = max(end, int(point["t"]) + int(entry.get("offset") or 0))
        # A process that printed its last counter early still held its clients until it ended.
        if isinstance(entry.get("seconds"), int):
            end = max(end, int(entry.get("offset") or 0) + entry["seconds"])
    load = [entry for entry in generators if not str(entry.get("role", "")).startswith("probe")]
    main = [entry for entry in load if entry.get("role", "conn") != "pub"] or load
    timeline = dict((t, dict.fromkeys(keys + ("subscribed", "published", "received"), 0)) for t in range(end + 1))
    for entry in generators:
        result, role = entry["result"], entry.get("role", "conn")
        dense = _dense(result.get("timeline", []), int(entry.get("offset") or 0), end, keys)
        for t, values in dense.items():
            slot = timeline[t]
            for key in ("connected", "connect_succ", "connect_fail"):
                slot[key] += values[key]
            if role == "sub":
                slot["subscribed"] += values["sub"] or values["connected"]
                slot["received"] += values["recv"]
            elif role == "pub":
                slot["published"] += values["pub"]
    latency_points = {}
    for entry in generators:
        offset = int(entry.get("offset") or 0)
        for point in entry["result"].get("timeline", []):
            if point.get("latency_p99_us") is not None:
                slot = latency_points.setdefault(int(point["t"]) + offset, {})
                slot["p50_ms"] = max(slot.get("p50_ms", 0), point.get("latency_p50_us", 0) / 1000.0)
                slot["p99_ms"] = max(slot.get("p99_ms", 0), point["latency_p99_us"] / 1000.0)
        for t, value in entry["result"].get("latency_avg_ms") or []:
            latency_points.setdefault(int(t) + offset, {})["avg_ms"] = value
    points = []
    previous = None
    for t in range(end + 1):
        point = dict(timeline[t], t=t)
        point["in_rate"] = max(0, point["published"] - previous["published"]) if previous else 0
        point["out_rate"] = max(0, point["received"] - previous["received"]) if previous else 0
        point.update(latency_points.get(t, {}))
        points.append(point)
        previous = point
    errors = {}
    for entry in generators:
        for kind, count in (entry["result"].get("errors") or {}).items():
            errors[kind] = errors.get(kind, 0) + count
    clients = sum(_number(entry["result"].get("clients")) for entry in main)
    asked = sum(_number(entry["result"].get("clients")) for entry in generators)
    subscribers = sum(_number(entry["result"].get("clients")) for entry in load if entry.get("role") == "sub")
    connected_peak = max([point["connected"] for point in points] or
                         [sum(_number(entry["result"].get("connected_peak")) for entry in generators)])
    ramps = [entry["result"].get("ramp_seconds") for entry in main]
    ramp = max(ramps) if ramps and all(isinstance(value, (int, float)) for value in ramps) else None
    connect_succ = sum(_number(entry["result"].get("connect_succ")) for entry in main)
    # The full load: every subscriber subscribed (sub), every client connected (conn, pub).
    full = set(point["t"] for point in points
               if (point["subscribed"] >= subscribers if subscribers else point["connected"] >= asked))
    held = run = 0
    for point in points:
        run = run + 1 if point["t"] in full else 0
        held = max(held, run - 1)
    published = sum(_number(entry["result"].get("pub_succ", entry["result"].get("pub")))
                    for entry in load if entry.get("role") == "pub")
    received = sum(_number(entry["result"].get("recv")) for entry in load if entry.get("role") == "sub")
    active = [point for point in points if point["in_rate"] or point["out_rate"]] or points[:1]
    broker = broker_messages(samples)
    messages = None
    if published or received:
        messages = {"published": published, "received": received,
                    # The broker's count when it was sampled: messages it had a subscriber for and could
                    # not deliver (queue or inflight full, too large, expired). Else what the generators miss.
                    "dropped": broker["delivery_dropped"] if broker else max(0, published - received),
                    "not_received": max(0, published - received),
                    "in_rate_avg": round(sum(p["in_rate"] for p in active) / float(len(active)), 1),
                    "out_rate_avg": round(sum(p["out_rate"] for p in active) / float(len(active)), 1),
                    "in_rate_peak": max(p["in_rate"] for p in active),
                    "out_rate_peak": max(p["out_rate"] for p in active)}
        if broker:
            messages["broker"] = broker
    hist, probe_sent, probe_recv, source = {}, 0, 0, None
    for entry in generators:
        result, role = entry["result"], entry.get("role", "")
        for bound, count in (result.get("latency_hist") or {}).items():
            hist[str(bound)] = hist.get(str(bound), 0) + int(count)
            source = "probe" if role.startswith("probe") else "subscribers"
        if role == "probe-pub":
            probe_sent += _number(result.get("pub_succ", result.get("pub")))
        elif role == "probe-sub":
            probe_recv += _number(result.get("recv"))
    latency = percentiles(hist)
    if latency is not None:
        latency["measured_by"] = source
        if source == "probe":
            latency.update({"probe_published": probe_sent, "probe_received": probe_recv,
                            "probe_dropped": max(0, probe_sent - probe_recv)})
    averages = [(point["avg_ms"], point["out_rate"]) for point in points if "avg_ms" in point and point["out_rate"]]
    if averages:
        latency = dict(latency or {}, emqtt_bench_avg_ms=round(
            sum(value * weight for value, weight in averages) / float(sum(weight for _value, weight in averages)), 2))
    nodes, by_time = {}, {}
    for sample in samples:
        node = nodes.setdefault(sample["node"], {"connections_peak": 0, "cpu_percent_peak": 0.0,
                                                 "memory_bytes_peak": 0, "_cpu": []})
        node["connections_peak"] = max(node["connections_peak"], _number(sample.get("connections")))
        node["cpu_percent_peak"] = max(node["cpu_percent_peak"], _number(sample.get("cpu_percent"), 0.0))
        node["memory_bytes_peak"] = max(node["memory_bytes_peak"], _number(sample.get("memory_bytes")))
        if isinstance(sample.get("cpu_percent"), (int, float)):
            node["_cpu"].append(sample["cpu_percent"])
        by_time.setdefault(int(sample["t"]), {})[sample["node"]] = {
            "connections": _number(sample.get("connections")), "cpu_percent": sample.get("cpu_percent"),
            "memory_bytes": sample.get("memory_bytes"), "messages_received": sample.get("messages_received"),
            "messages_sent": sample.get("messages_sent")}
    for node in nodes.values():
        cpu = node.pop("_cpu")
        node["cpu_percent_avg"] = round(sum(cpu) / len(cpu), 1) if cpu else None
    return {
        "clients": asked,
        "subscribers": subscribers,
        "publishers": sum(_number(entry["result"].get("clients")) for entry in load if entry.get("role") == "pub"),
        "connected_peak": connected_peak,
        "subscribed_peak": max([point["subscribed"] for point in points] or [0]),
        "connected_at_end": sum(_number(entry["result"].get("connected_at_end")) for entry in generators),
        "connect_succ": connect_succ,
        "connect_fail": sum(_number(entry["result"].get("connect_fail")) for entry in generators),
        "ramp_seconds": ramp,
        "connect_rate": round(connect_succ / ramp, 1) if ramp else None,
        "full_load_held_seconds": held,
        "errors": dict(sorted(errors.items())),
        "messages": messages,
        "latency": latency,
        "generator_peak_rss_bytes": sum(_number(entry["result"].get("peak_rss_bytes")) for entry in generators),
        "reached_target": clients > 0 and connected_peak >= asked,
        "timeline": points,
        "nodes": dict(sorted(nodes.items())),
        "broker_samples": [{"t": t, "nodes": per_node} for t, per_node in sorted(by_time.items())],
    }


def _mib(value):
    return "%.0f MiB" % (value / 1048576.0)


def _figure(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return "%s%s" % (format(round(value, 2), ","), unit)
    return "%s%s" % (format(int(value), ","), unit)


def _rows(summary):
    """(measure, value) rows of the summary, shared by the report and the comparison."""
    messages, latency = summary.get("messages") or {}, summary.get("latency") or {}
    rows = [("clients asked for", _figure(summary["clients"])),
            ("clients held at the peak", _figure(summary["connected_peak"])),
            ("reached the target", "yes" if summary["reached_target"] else "no"),
            ("time to ramp", "%.1f s" % summary["ramp_seconds"] if summary["ramp_seconds"] is not None
             else "target not reached"),
            ("connect rate", "%s/s" % _figure(summary["connect_rate"]) if summary["connect_rate"] else "-"),
            ("full load held", "%d s" % summary.get("full_load_held_seconds", 0)),
            ("failed connects", _figure(summary["connect_fail"])),
            ("errors", ", ".join("%s %s" % (kind, _figure(count)) for kind, count in summary["errors"].items())
             or "none")]
    if summary.get("subscribers"):
        rows.append(("subscribers (subscribed at the peak)", "%s (%s)" % (
            _figure(summary["subscribers"]), _figure(summary.get("subscribed_peak")))))
    if messages:
        rows += [("messages published / received",
                  "%s / %s" % (_figure(messages["published"]), _figure(messages["received"]))),
                 ("messages dropped", _figure(messages["dropped"])),
                 ("published but not received by the generators", _figure(messages.get("not_received"))),
                 ("messages in / out per second (average)",
                  "%s / %s" % (_figure(messages["in_rate_avg"]), _figure(messages["out_rate_avg"]))),
                 ("messages in / out per second (peak)",
                  "%s / %s" % (_figure(messages["in_rate_peak"]), _figure(messages["out_rate_peak"])))]
    if messages.get("broker"):
        rows.append(("broker: messages in / out / undeliverable / without subscriber ($SYS included)",
                     " / ".join(_figure(messages["broker"][key]) for key in BROKER_COUNTERS)))
    if latency.get("count"):
        rows.append(("delivery latency p50 / p90 / p99 / p99.9 / max", "%s (%s messages, %s)" % (
            " / ".join(_figure(latency.get(key), " ms") for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")),
            _figure(latency["count"]), latency["measured_by"])))
    if latency.get("emqtt_bench_avg_ms") is not None:
        rows.append(("delivery latency, emqtt-bench's average", _figure(latency["emqtt_bench_avg_ms"], " ms")))
    rows.append(("generator peak memory", _mib(summary["generator_peak_rss_bytes"])
                 if summary["generator_peak_rss_bytes"] else "-"))
    for node, figures in summary["nodes"].items():
        rows.append(("%s: connections, CPU peak (avg), memory peak" % node, "%s, %.0f %% (%s), %s" % (
            _figure(figures["connections_peak"]), figures["cpu_percent_peak"],
            "-" if figures.get("cpu_percent_avg") is None else "%.0f %%" % figures["cpu_percent_avg"],
            _mib(figures["memory_bytes_peak"]))))
    return rows


CHARTS = ("connections.svg", "messages.svg", "latency.svg", "cpu.svg", "memory.svg")


def markdown(summary, title, command_line):
    """A short report for people."""
    lines = ["# %s" % title, "", "```", command_line, "```", "", "| measure | value |", "| --- | --- |"]
    lines += ["| %s | %s |" % row for row in _rows(summary)]
    lines += [""] + ["![%s](%s)" % (name[:-4], name) for name in charts(summary, title)] + [""]
    return "\n".join(lines)


def compare(reports):
    """The summaries of several runs side by side: [(label, report.json's content)] → Markdown."""
    table = [dict(_rows(report["summary"])) for _label, report in reports]
    measures = []
    for rows in table:
        measures += [measure for measure in rows if measure not in measures]
    lines = ["| measure | %s |" % " | ".join(label for label, _report in reports),
             "| --- |%s" % (" --- |" * len(reports)),
             "| title | %s |" % " | ".join(report.get("title", "") for _label, report in reports)]
    lines += ["| %s | %s |" % (measure, " | ".join(rows.get(measure, "-") for rows in table)) for measure in measures]
    lines += ["", "Commands:", ""] + ["- %s: `%s`" % (label, report.get("command_line", "")) for label, report in reports]
    return "\n".join(lines) + "\n"


def _escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def line_chart(title, y_label, series, footer=""):
    """An SVG line chart: series is [(label, [(t, value)...]), ...], t in seconds."""
    width, height, left, right, top, bottom = 800, 420, 80, 230, 40, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    drawn = [point for _label, points in series for point in points]
    t_max = max([1] + [point[0] for point in drawn])
    y_max = max([1e-9] + [point[1] for point in drawn])
    magnitude = 10 ** math.floor(math.log10(y_max)) if y_max >= 1 else 1
    y_max = magnitude * math.ceil(y_max / magnitude) if y_max >= 1 else 1

    def x(t):
        return left + plot_w * t / float(t_max)

    def y(value):
        return top + plot_h * (1 - value / float(y_max))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">'
           % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15">%s</text>' % (left, _escape(title)),
           '<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>'
           % (top + plot_h // 2, top + plot_h // 2, _escape(y_label)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top + plot_h, left + plot_w, top + plot_h),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, top + plot_h)]
    for step in range(5):
        value = y_max * step / 4.0
        label = format(int(value), ",") if y_max >= 8 else "%.2g" % value
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y(value) + 4, label))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y(value), left + plot_w, y(value)))
        seconds = t_max * step / 4.0
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%ds</text>' % (x(seconds), top + plot_h + 18, seconds))
    for index, (label, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        if points:
            path = " ".join("%.1f,%.1f" % (x(t), y(value)) for t, value in sorted(points))
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (colour, path))
        legend_y = top + 14 + 18 * index
        out.append('<rect x="%d" y="%d" width="12" height="4" fill="%s"/>' % (left + plot_w + 12, legend_y - 4, colour))
        out.append('<text x="%d" y="%d">%s</text>' % (left + plot_w + 30, legend_y, _escape(label)))
    if footer:
        out.append('<text x="%d" y="%d">%s</text>' % (left, height - 10, _escape(footer)))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def charts(summary, title):
    """The report's plots, by file name: connections (generators, subscriptions, each node), message rates,
    delivery latency, and each node's CPU and memory."""
    timeline, samples = summary["timeline"], summary.get("broker_samples", [])
    errors = ", ".join("%s: %s" % (kind, format(count, ",")) for kind, count in summary["errors"].items()) or "none"
    connections = [("generators: connected", [(p["t"], p["connected"]) for p in timeline])]
    if summary.get("subscribers"):
        connections.append(("generators: subscribed", [(p["t"], p["subscribed"]) for p in timeline]))
    for node in summary["nodes"]:
        connections.append(("%s" % node, [(s["t"], s["nodes"][node]["connections"]) for s in samples
                                          if node in s["nodes"]]))
    result = {"connections.svg": line_chart("%s: connections" % title, "connections", connections,
                                            "errors by kind: %s" % errors)}
    if summary.get("messages"):
        rates = [("published (generators)", [(p["t"], p["in_rate"]) for p in timeline]),
                 ("received (generators)", [(p["t"], p["out_rate"]) for p in timeline])]
        for key, label in (("messages_received", "in (broker)"), ("messages_sent", "out (broker)")):
            series, before = [], {}
            for entry in samples:
                total = 0
                for node, figures in entry["nodes"].items():
                    if isinstance(figures.get(key), (int, float)):
                        if node in before:
                            total += max(0, figures[key] - before[node])
                        before[node] = figures[key]
                series.append((entry["t"], total))
            if before:
                rates.append((label, series[1:]))
        result["messages.svg"] = line_chart("%s: messages per second" % title, "messages/s", rates,
                                            "dropped: %s" % format(summary["messages"]["dropped"], ","))
    latency_series = [(name, [(p["t"], p[key]) for p in timeline if key in p]) for name, key in (
        ("p50 of the second", "p50_ms"), ("p99 of the second", "p99_ms"), ("emqtt-bench average", "avg_ms"))]
    latency_series = [entry for entry in latency_series if entry[1]]
    if latency_series:
        result["latency.svg"] = line_chart("%s: delivery latency" % title, "ms", latency_series)
    if samples:
        result["cpu.svg"] = line_chart("%s: CPU per node" % title, "% of one core", [
            (node, [(s["t"], s["nodes"][node]["cpu_percent"]) for s in samples
                    if node in s["nodes"] and isinstance(s["nodes"][node]["cpu_percent"], (int, float))])
            for node in summary["nodes"]])
        result["memory.svg"] = line_chart("%s: memory per node" % title, "MiB", [
            (node, [(s["t"], s["nodes"][node]["memory_bytes"] / 1048576.0) for s in samples
                    if node in s["nodes"] and isinstance(s["nodes"][node]["memory_bytes"], (int, float))])
            for node in summary["nodes"]])
    return result
