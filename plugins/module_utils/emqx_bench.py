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


def _number(value, default=0):
    return value if isinstance(value, (int, float)) else default


def summarize(generators, samples):
    """One summary of a run from the generators' results and the brokers' samples.

    generators: [{"host": ..., "result": <mqtt_bench.py or parsed emqtt-bench result>}]
    samples: [{"t": seconds since the run started, "node": ..., "connections": ..., "cpu_percent": ...,
               "memory_bytes": ...}]
    """
    results = [entry["result"] for entry in generators]
    timeline = {}
    for result in results:
        for point in result.get("timeline", []):
            slot = timeline.setdefault(int(point["t"]), {"connected": 0, "connect_succ": 0, "connect_fail": 0})
            for key in slot:
                slot[key] += _number(point.get(key))
    errors = {}
    for result in results:
        for kind, count in (result.get("errors") or {}).items():
            errors[kind] = errors.get(kind, 0) + count
    clients = sum(_number(result.get("clients")) for result in results)
    ramps = [result.get("ramp_seconds") for result in results]
    ramp = max(ramps) if ramps and all(isinstance(value, (int, float)) for value in ramps) else None
    connect_succ = sum(_number(result.get("connect_succ")) for result in results)
    nodes = {}
    for sample in samples:
        node = nodes.setdefault(sample["node"], {"connections_peak": 0, "cpu_percent_peak": 0.0,
                                                 "memory_bytes_peak": 0})
        node["connections_peak"] = max(node["connections_peak"], _number(sample.get("connections")))
        node["cpu_percent_peak"] = max(node["cpu_percent_peak"], _number(sample.get("cpu_percent"), 0.0))
        node["memory_bytes_peak"] = max(node["memory_bytes_peak"], _number(sample.get("memory_bytes")))
    by_time = {}
    for sample in samples:
        by_time.setdefault(int(sample["t"]), {})[sample["node"]] = _number(sample.get("connections"))
    return {
        "clients": clients,
        "connected_peak": max([point["connected"] for point in timeline.values()] or
                              [sum(_number(result.get("connected_peak")) for result in results)]),
        "connected_at_end": sum(_number(result.get("connected_at_end")) for result in results),
        "connect_succ": connect_succ,
        "connect_fail": sum(_number(result.get("connect_fail")) for result in results),
        "ramp_seconds": ramp,
        "connect_rate": round(connect_succ / ramp, 1) if ramp else None,
        "errors": dict(sorted(errors.items())),
        "generator_peak_rss_bytes": sum(_number(result.get("peak_rss_bytes")) for result in results),
        "reached_target": clients > 0 and max([point["connected"] for point in timeline.values()] or [0]) >= clients,
        "timeline": [dict(point, t=t) for t, point in sorted(timeline.items())],
        "nodes": dict(sorted(nodes.items())),
        "broker_connections": [{"t": t, "nodes": per_node} for t, per_node in sorted(by_time.items())],
    }


def _mib(value):
    return "%.0f MiB" % (value / 1048576.0)


def markdown(summary, title, command_line):
    """A short report for people."""
    lines = ["# %s" % title, "", "```", command_line, "```", "",
             "| measure | value |", "| --- | --- |",
             "| clients asked for | %s |" % format(summary["clients"], ","),
             "| clients held at the peak | %s |" % format(summary["connected_peak"], ","),
             "| reached the target | %s |" % ("yes" if summary["reached_target"] else "no"),
             "| time to ramp | %s |" % ("%.1f s" % summary["ramp_seconds"] if summary["ramp_seconds"] is not None
                                        else "target not reached"),
             "| connect rate | %s |" % ("%s/s" % summary["connect_rate"] if summary["connect_rate"] else "-"),
             "| failed connects | %s |" % format(summary["connect_fail"], ","),
             "| errors | %s |" % (", ".join("%s %s" % (kind, count) for kind, count in summary["errors"].items())
                                  or "none"),
             "| generator peak memory | %s |" % _mib(summary["generator_peak_rss_bytes"]), ""]
    if summary["nodes"]:
        lines += ["| node | connections at the peak | CPU peak | memory peak |", "| --- | --- | --- | --- |"]
        for node, figures in summary["nodes"].items():
            lines.append("| %s | %s | %.0f %% | %s |" % (
                node, format(figures["connections_peak"], ","), figures["cpu_percent_peak"],
                _mib(figures["memory_bytes_peak"])))
        lines.append("")
    lines += ["![connections over time](connections.svg)", ""]
    return "\n".join(lines)


def _escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(summary, title):
    """Connections over time (generators, and each broker node), connect rate, and errors by kind."""
    width, height, left, right, top, bottom = 760, 420, 70, 190, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    timeline = summary["timeline"]
    series = [("generators: connected", [(point["t"], point["connected"]) for point in timeline], "#1f77b4")]
    colours = ["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for index, node in enumerate(summary["nodes"]):
        points = [(entry["t"], entry["nodes"].get(node, 0)) for entry in summary["broker_connections"]]
        series.append(("%s: connections" % node, points, colours[index % len(colours)]))
    rates = []
    for before, after in zip(timeline, timeline[1:]):
        span = max(1, after["t"] - before["t"])
        rates.append((after["t"], max(0, after["connect_succ"] - before["connect_succ"]) / float(span)))
    points_drawn = [point for entry in series for point in entry[1]] + rates
    t_max = max([1] + [point[0] for point in points_drawn])
    y_max = max([1] + [point[1] for point in points_drawn])
    y_max = 10 ** int(math.floor(math.log10(y_max))) * math.ceil(y_max / 10 ** int(math.floor(math.log10(y_max))))

    def x(t):
        return left + plot_w * t / float(t_max)

    def y(value):
        return top + plot_h * (1 - value / float(y_max))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">'
           % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15">%s</text>' % (left, _escape(title)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top + plot_h, left + plot_w, top + plot_h),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, top + plot_h)]
    for step in range(5):
        value = y_max * step / 4.0
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y(value) + 4, format(int(value), ",")))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y(value), left + plot_w, y(value)))
        seconds = t_max * step / 4.0
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%ds</text>' % (x(seconds), top + plot_h + 18, seconds))
    drawn = series + [("connect rate (/s)", rates, "#d62728")]
    for index, (label, points, colour) in enumerate(drawn):
        if points:
            path = " ".join("%.1f,%.1f" % (x(t), y(value)) for t, value in points)
            dash = ' stroke-dasharray="4 3"' if label.startswith("connect rate") else ""
            out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>' % (colour, dash, path))
        legend_y = top + 14 + 18 * index
        out.append('<rect x="%d" y="%d" width="12" height="4" fill="%s"/>' % (left + plot_w + 12, legend_y - 4, colour))
        out.append('<text x="%d" y="%d">%s</text>' % (left + plot_w + 30, legend_y, _escape(label)))
    errors = ", ".join("%s: %s" % (kind, format(count, ",")) for kind, count in summary["errors"].items()) or "none"
    out.append('<text x="%d" y="%d">errors by kind: %s</text>' % (left, height - 10, _escape(errors)))
    out.append("</svg>")
    return "\n".join(out) + "\n"


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


def parse_emqtt_bench(text, clients):
    """A result like mqtt_bench.py's from what emqtt-bench printed (its counter and error lines)."""
    totals, timeline, errors = {}, {}, {}
    for raw in text.replace("\r", "\n").splitlines():
        line = raw.strip()
        parts = line.split()
        if len(parts) == 4 and parts[2].startswith("total=") and parts[3].startswith("rate="):
            try:
                t = _seconds(parts[0])
                totals[parts[1]] = int(parts[2][len("total="):])
            except ValueError:
                continue
            timeline[t] = {"t": t, "connected": totals.get("connect_succ", 0),
                           "connect_succ": totals.get("connect_succ", 0), "connect_fail": totals.get("connect_fail", 0)}
        elif line.startswith("client(") and " connect error - " in line:
            kind = line.split(" connect error - ", 1)[1].strip()
            errors[kind] = errors.get(kind, 0) + 1
    points = [timeline[t] for t in sorted(timeline)]
    ramp = next((point["t"] for point in points if point["connect_succ"] >= clients), None)
    return {"tool": "emqtt-bench", "clients": clients, "timeline": points, "errors": errors,
            "connect_succ": totals.get("connect_succ", 0), "connect_fail": totals.get("connect_fail", 0),
            "connected_peak": max([point["connected"] for point in points] or [0]),
            "connected_at_end": points[-1]["connected"] if points else 0,
            "ramp_seconds": ramp, "peak_rss_bytes": None}
