"""Load test capacity, emqtt-bench output, and the report (emqx_bench, emqx_bench_report, emqx_node_stats)."""

from __future__ import annotations

import json
import os

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_bench_capacity import emqx_bench_capacity
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_bench as b
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_bench_processes import emqx_bench_processes
from ansible_collections.mqttaction.emqx.plugins.modules import (
    emqx_bench_compare, emqx_bench_report, emqx_bench_run, emqx_node_stats)


def test_port_range_size_reads_the_sysctl_forms():
    assert b.port_range_size("32768\t60999\n") == 28232
    assert b.port_range_size("1024 65535") == 64512
    for bad in ("", "1024", "60999 32768", "0 10", "a b"):
        with pytest.raises(ValueError):
            b.port_range_size(bad)


def test_capacity_problem_is_the_seed_wall_with_the_numbers():
    message = b.capacity_problem(40000, 1, 28232, "bench-1")
    assert message.startswith("40,000 clients over 1 address with 28,232 ports on bench-1: not possible")
    assert "at least 2 in emqx_bench_source_addresses" in message and "emqx_bench_port_range" in message
    assert b.capacity_problem(40000, 2, 28232) == ""
    assert b.capacity_problem(28132, 1, 28232) == "" and b.capacity_problem(28133, 1, 28232) != ""
    assert "at least 3" in b.capacity_problem(80000, 2, 28232)


def test_capacity_filter():
    assert emqx_bench_capacity(30000, addresses=1, port_range="32768 60999").startswith("30,000 clients over 1 address")
    assert emqx_bench_capacity("30000", addresses="2", port_range="1024 65535") == ""
    with pytest.raises(AnsibleFilterError):
        emqx_bench_capacity(10, addresses=1, port_range="nonsense")


EMQTT_BENCH_OUTPUT = "\r\n".join([
    "Start with 2 workers, addrs pool size: 1 and req interval: 2 ms",
    "",
    "1s connect_succ total=500 rate=500.00/sec",
    "2s connect_succ total=1000 rate=500.00/sec",
    "client(1003): connect error - eaddrinuse",
    "client(1003): EXIT for {shutdown,eaddrinuse}",
    "3s connect_succ total=1200 rate=200.00/sec",
    "3s connect_fail total=1 rate=1.00/sec",
    "1m0s connect_succ total=1200 rate=0.00/sec",
])


def test_parse_emqtt_bench_output():
    result = b.parse_emqtt_bench(EMQTT_BENCH_OUTPUT, 1000)
    assert result["connect_succ"] == 1200 and result["connect_fail"] == 1
    assert result["errors"] == {"eaddrinuse": 1}
    assert result["ramp_seconds"] == 2
    assert [point["t"] for point in result["timeline"]] == [1, 2, 3, 60]


def generator(host, clients, timeline, **extra):
    result = {"clients": clients, "timeline": timeline, "connect_succ": timeline[-1]["connect_succ"],
              "connect_fail": 0, "errors": {}, "ramp_seconds": 2.0, "peak_rss_bytes": 50 * 1048576,
              "connected_peak": timeline[-1]["connected"], "connected_at_end": timeline[-1]["connected"],
              "started_at": "2026-11-26T07:00:00+00:00"}
    result.update(extra)
    return {"host": host, "result": result}


TIMELINE = [{"t": 0, "connected": 0, "connect_succ": 0, "connect_fail": 0},
            {"t": 1, "connected": 500, "connect_succ": 500, "connect_fail": 0},
            {"t": 2, "connected": 1000, "connect_succ": 1000, "connect_fail": 0}]


def test_summarize_adds_generators_and_peaks_per_node():
    samples = [{"t": 1, "node": "emqx@a", "connections": 400, "cpu_percent": 30.0, "memory_bytes": 100},
               {"t": 2, "node": "emqx@a", "connections": 1000, "cpu_percent": 50.0, "memory_bytes": 300},
               {"t": 2, "node": "emqx@b", "connections": 1000, "cpu_percent": None, "memory_bytes": 200}]
    summary = b.summarize([generator("g1", 1000, TIMELINE), generator("g2", 1000, TIMELINE)], samples)
    assert summary["clients"] == 2000 and summary["connected_peak"] == 2000 and summary["reached_target"]
    assert summary["connect_rate"] == 1000.0
    assert summary["nodes"]["emqx@a"] == {
        "connections_peak": 1000, "cpu_percent_peak": 50.0, "memory_bytes_peak": 300, "cpu_percent_avg": 40.0}
    assert summary["broker_samples"][-1]["nodes"]["emqx@b"]["connections"] == 1000
    markdown = b.markdown(summary, "Run", "bench")
    assert "| clients held at the peak | 2,000 |" in markdown
    assert "| emqx@a: connections, CPU peak (avg), memory peak | 1,000, 50 % (40 %), 0 MiB |" in markdown
    charts = b.charts(summary, "Run <1>")
    assert sorted(charts) == ["connections.svg", "cpu.svg", "memory.svg"]  # no messages: no rates, no latency
    svg = charts["connections.svg"]
    assert svg.startswith("<svg") and "Run &lt;1&gt;" in svg and svg.count("<polyline") == 3


def test_summarize_a_run_that_hit_the_wall():
    wall = [{"t": 0, "connected": 0, "connect_succ": 0, "connect_fail": 0},
            {"t": 1, "connected": 200, "connect_succ": 200, "connect_fail": 100}]
    summary = b.summarize([generator("g1", 300, wall, ramp_seconds=None, errors={"eaddrinuse": 100},
                                     connect_fail=100)], [])
    assert not summary["reached_target"] and summary["ramp_seconds"] is None and summary["connect_rate"] is None
    assert summary["errors"] == {"eaddrinuse": 100}
    assert "| time to ramp | target not reached |" in b.markdown(summary, "Wall", "bench")
    assert "eaddrinuse: 100" in b.charts(summary, "Wall")["connections.svg"]


def test_report_module_writes_three_files(tmp_path, run_module):
    samples = [{"time": 1795676401.2, "node": "emqx@a", "connections": 500, "cpu_percent": 10.0, "memory_bytes": 1}]
    failed, result = run_module(emqx_bench_report.main, {
        "dest": str(tmp_path / "run"), "title": "Lab", "generators": [generator("g1", 1000, TIMELINE)],
        "samples": samples})
    assert not failed and result["changed"] and sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "connections.svg", "cpu.svg", "memory.svg", "report.json", "report.md"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["samples"][0]["t"] == 1 and report["summary"]["nodes"]["emqx@a"]["connections_peak"] == 500
    assert "timeline" not in result["summary"]

    failed, result = run_module(emqx_bench_report.main, {
        "dest": str(tmp_path / "check"), "generators": [{"host": "g", "emqtt_bench_output": EMQTT_BENCH_OUTPUT,
                                                         "clients": 1000}]}, check_mode=True)
    assert not failed and not (tmp_path / "check").exists() and result["summary"]["connect_succ"] == 1200

    failed, result = run_module(emqx_bench_report.main, {"dest": str(tmp_path / "x"), "generators": [{"host": "g"}]})
    assert failed and "neither a result nor emqtt_bench_output" in result["msg"]


def test_node_stats_reads_cgroup_v1_and_v2_and_falls_back_to_proc(tmp_path, monkeypatch):
    files = {
        "/proc/7/cgroup": "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
        str(tmp_path / "cpuacct/docker/abc/cpuacct.usage"): "2500000000\n",
        str(tmp_path / "memory/docker/abc/memory.usage_in_bytes"): "1000\n",
        str(tmp_path / "memory/docker/abc/memory.stat"): "cache 5\ntotal_inactive_file 200\n",
        "/proc/8/cgroup": "0::/system.slice/docker-xyz.scope\n",
        str(tmp_path / "system.slice/docker-xyz.scope/cpu.stat"): "usage_usec 1500000\nuser_usec 1\n",
        str(tmp_path / "system.slice/docker-xyz.scope/memory.current"): "4096\n",
        str(tmp_path / "system.slice/docker-xyz.scope/memory.stat"): "inactive_file 96\n",
        "/proc/9/cgroup": "",
        "/proc/9/status": "Name:\tbeam.smp\nVmRSS:\t  2048 kB\n",
        "/proc/9/stat": "9 (beam.smp) S " + " ".join(["0"] * 10) + " 300 200 0 0",
    }
    monkeypatch.setattr(emqx_node_stats, "CGROUP", str(tmp_path))
    monkeypatch.setattr(emqx_node_stats, "read", files.get)
    monkeypatch.setattr(emqx_node_stats.os, "sysconf", lambda name: 100)
    v1, v2, proc = emqx_node_stats.Usage(7), emqx_node_stats.Usage(8), emqx_node_stats.Usage(9)
    assert v1.cpu_seconds() == 2.5 and v1.memory_bytes() == 800
    assert v2.cpu_seconds() == 1.5 and v2.memory_bytes() == 4000
    assert proc.cpu_seconds() == 5.0 and proc.memory_bytes() == 2048 * 1024


SPEC = dict(tool="emqtt_bench", command="sub", host="g1", clients=30000, start=100, rate=1500, publishers=300,
            probe=10, addresses=["10.0.0.1", "10.0.0.2"], targets=["a", "b", "c"], port=1883, keepalive=300,
            topic="bench/%i", probe_topic="mqttaction-probe/%i", qos=1, message_interval=1000, payload_size=64,
            username="", password="", nofile=16384, duration=110, emqtt_bench="/opt/eb/bin/emqtt_bench",
            builtin="/opt/mqtt_bench.py", python="python3")


def test_emqtt_bench_processes_stay_within_the_open_file_limit_and_publish_after_the_ramp():
    processes = emqx_bench_processes(SPEC)
    assert [(p["name"], p["role"], p["clients"]) for p in processes] == [
        ("sub-1", "sub", 15000), ("sub-2", "sub", 15000), ("pub-1", "pub", 300),
        ("probe-sub", "probe-sub", 10), ("probe-pub", "probe-pub", 10)]
    sub1, sub2, pub, probe_sub, probe_pub = processes
    # Each emqtt-bench process holds at most nofile - 256 clients; numbers and rate split between them.
    assert sub1["argv"][:2] == ["/opt/eb/bin/emqtt_bench", "sub"]
    assert sub1["argv"][sub1["argv"].index("-n") + 1] == "100" and sub2["argv"][sub2["argv"].index("-n") + 1] == "15100"
    assert sub1["argv"][sub1["argv"].index("-R") + 1] == "750"
    assert sub1["argv"][sub1["argv"].index("--ifaddr") + 1] == "10.0.0.1,10.0.0.2"
    assert sub1["argv"][-2:] == ["--payload-hdrs", "ts"] and sub1["ok_codes"] == [124]
    assert sub1["delay"] == 0 and sub1["stop_after"] == 110
    # Publisher N is on subscriber N's topic through the next node, from after the ramp until 5 s early:
    # 30,000 at 1,500/s asked is 20 s, twice that for what emqtt-bench really connects, + 5 s.
    assert pub["argv"][pub["argv"].index("-n") + 1] == "100" and pub["argv"][pub["argv"].index("-h") + 1] == "b,c,a"
    assert pub["delay"] == 45 and pub["seconds"] == 60 and "-I" in pub["argv"]
    # A known count, so that what was published is exact: 300 publishers, one message a second, for 60 - 10 s.
    assert pub["argv"][-2:] == ["-L", "15000"] and pub["limit"] == 15000 and pub["ok_codes"] == [0, 124]
    assert pub["stop_after"] == 64
    # Built-in probes measure each message's latency beside emqtt-bench.
    assert probe_sub["argv"][:3] == ["python3", "/opt/mqtt_bench.py", "sub"] and "--latency" in probe_sub["argv"]
    assert probe_pub["argv"][probe_pub["argv"].index("-t") + 1] == "mqttaction-probe/%i"
    assert probe_pub["delay"] == 0 and probe_pub["ok_codes"] == [0] and probe_pub["stop_after"] == 105 + 30
    assert probe_pub["argv"][probe_pub["argv"].index("--duration") + 1] == "105"
    assert "-u" not in sub1["argv"]


def test_builtin_processes_and_conn_without_publishers():
    builtin = emqx_bench_processes(dict(SPEC, tool="builtin", username="u%i", password="p"))
    assert [p["name"] for p in builtin] == ["sub-1", "pub-1"]  # one process forks its own workers; no probe
    assert builtin[0]["argv"][-5:] == ["--latency", "--duration", "110", "--json", "-"]
    assert builtin[0]["argv"][builtin[0]["argv"].index("-u") + 1] == "u%i"
    conn = emqx_bench_processes(dict(SPEC, command="conn", clients=1000))
    assert [p["name"] for p in conn] == ["conn-1"] and "-t" not in conn[0]["argv"] and "--payload-hdrs" not in conn[0]["argv"]
    with pytest.raises(AnsibleFilterError):
        emqx_bench_processes({"tool": "builtin"})


SUB_OUTPUT = "\n".join([
    "Start with 2 workers, addrs pool size: 1 and req interval: 20 ms ",
    "1s sub total=20 rate=19.88/sec",
    "1s connect_succ total=20 rate=19.86/sec",
    "3s publish_latency avg=2ms",
    "3s recv total=192 rate=63.87/sec",
    "4s publish_latency avg=4ms",
    "4s recv total=392 rate=200.00/sec",
    "client(7): EXIT for {shutdown,tcp_closed}",
])
PUB_OUTPUT = "\n".join(["1s pub total=190 rate=188.87/sec", "1s connect_succ total=20 rate=19.88/sec",
                        "2s pub total=390 rate=200.00/sec", "3s pub total=392 rate=2.00/sec"])


def test_parse_emqtt_bench_sub_and_pub_with_latency_and_lost_clients():
    sub = b.parse_emqtt_bench(SUB_OUTPUT, 20)
    assert sub["sub"] == 20 and sub["recv"] == 392 and sub["latency_avg_ms"] == [[3, 2.0], [4, 4.0]]
    assert sub["errors"] == {"tcp_closed": 1} and sub["connected_at_end"] == 19
    assert b.latest_counters(SUB_OUTPUT) == {"t": 4, "sub": 20, "connect_succ": 20, "recv": 392, "latency_avg_ms": 4.0}
    pub = b.parse_emqtt_bench(PUB_OUTPUT, 20)
    assert pub["pub"] == 392 and [p["pub"] for p in pub["timeline"]] == [190, 390, 392]
    complete = b.parse_emqtt_bench(PUB_OUTPUT.replace("3s pub total=392 rate=2.00/sec", "publish complete"), 20, 400)
    assert complete["pub"] == 400 and complete["timeline"][-1] == dict(complete["timeline"][-1], t=3, pub=400)
    summary = b.summarize([{"host": "g", "role": "sub", "offset": 0, "result": sub},
                           {"host": "g", "role": "pub", "offset": 1, "result": pub}], [])
    assert summary["subscribers"] == 20 and summary["publishers"] == 20 and summary["subscribed_peak"] == 20
    assert summary["messages"]["published"] == 392 and summary["messages"]["dropped"] == 0
    # Counters are carried forward between the seconds a process printed them, and shifted by its offset.
    assert [p["published"] for p in summary["timeline"]] == [0, 0, 190, 390, 392]
    assert summary["timeline"][3]["out_rate"] == 192 - 0 and summary["timeline"][4]["out_rate"] == 200
    assert summary["latency"] == {"emqtt_bench_avg_ms": 3.02}  # weighted by the messages of each second
    assert sorted(b.charts(summary, "t")) == ["connections.svg", "latency.svg", "messages.svg"]


def test_latency_percentiles_from_the_probes_histograms():
    hist = {"1000": 50, "2000": 40, "5000": 9, "20000": 1}
    assert b.percentiles(hist) == {"count": 100, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 5.0, "p999_ms": 20.0,
                                   "max_ms": 20.0}
    assert b.percentiles({}) is None
    probe = {"clients": 1, "timeline": [{"t": 0, "connected": 1, "latency_p50_us": 900, "latency_p99_us": 4000}],
             "latency_hist": hist, "recv": 100}
    summary = b.summarize([{"host": "g", "role": "probe-sub", "result": probe},
                           {"host": "g", "role": "probe-pub", "result": {"clients": 1, "pub_succ": 101, "timeline": []}}], [])
    assert summary["latency"]["measured_by"] == "probe" and summary["latency"]["probe_dropped"] == 1
    assert summary["timeline"][0]["p99_ms"] == 4.0


def test_full_load_held_is_the_longest_stretch_at_the_target():
    timeline = [{"t": t, "connected": 10 if 2 <= t <= 7 or t == 9 else 5, "connect_succ": 10, "connect_fail": 0}
                for t in range(11)]
    summary = b.summarize([generator("g1", 10, timeline)], [])
    assert summary["full_load_held_seconds"] == 5
    # emqtt-bench prints nothing once every client is in: how long the process ran says how long it held them.
    quiet = [{"t": 1, "connected": 5, "connect_succ": 5}, {"t": 3, "connected": 10, "connect_succ": 10}]
    summary = b.summarize([dict(generator("g1", 10, quiet), offset=2, seconds=70)], [])
    assert summary["full_load_held_seconds"] == 72 - 5 and summary["timeline"][-1]["t"] == 72


def test_compare_puts_runs_side_by_side(tmp_path, run_module):
    for name, clients in (("one", 1000), ("two", 2000)):
        timeline = [dict(point, connected=point["connected"] * clients // 1000) for point in TIMELINE]
        summary = b.summarize([generator("g1", clients, timeline)], [])
        (tmp_path / name).mkdir()
        report = {"title": name, "command_line": "bench " + name, "summary": summary}
        (tmp_path / name / "report.json").write_text(json.dumps(report))
    failed, result = run_module(emqx_bench_compare.main, {
        "reports": [str(tmp_path / "one"), str(tmp_path / "two" / "report.json")], "dest": str(tmp_path / "c.md")})
    assert not failed and result["changed"]
    assert "| measure | one | two |" in result["markdown"] and "| clients held at the peak | 1,000 | 2,000 |" in result["markdown"]
    assert (tmp_path / "c.md").read_text() == result["markdown"]
    failed, result = run_module(emqx_bench_compare.main, {"reports": [str(tmp_path / "one")]})
    assert failed and "two runs or more" in result["msg"]
    failed, result = run_module(emqx_bench_compare.main, {"reports": [str(tmp_path / "one"), str(tmp_path)]})
    assert failed and "is not the report.json of a load test" in result["msg"]


FAKE_SYSTEMD_RUN = r'''#!/usr/bin/env python3
# Runs the service's command at once, in the foreground, with its output where systemd would put it.
import os, subprocess, sys
args, log, cwd = sys.argv[1:], None, None
while args and args[0].startswith("-"):
    arg = args.pop(0)
    if arg == "--unit":
        args.pop(0)
    elif arg.startswith("--property=StandardOutput=file:"):
        log = arg.split("file:", 1)[1]
    elif arg.startswith("--property=WorkingDirectory="):
        cwd = arg.split("=", 2)[2]
with open(log, "w") as out:
    subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
'''


def test_run_module_starts_waits_and_parses_each_process(tmp_path, monkeypatch, run_module):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemd-run").write_text(FAKE_SYSTEMD_RUN)
    (bin_dir / "systemctl").write_text("#!/bin/sh\n[ \"$1\" = is-active ] && shift && for u; do echo inactive; done\nexit 3\n")
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    result_json = json.dumps({"clients": 2, "connect_succ": 2, "timeline": []})
    processes = [
        {"name": "sub-1", "role": "sub", "tool": "emqtt_bench", "clients": 5, "delay": 0, "seconds": 1,
         "stop_after": 1, "ok_codes": [124], "argv": ["sh", "-c", "; ".join([
             "echo '1s connect_succ total=5 rate=5.00/sec'", "echo '1s sub total=5 rate=5.00/sec'",
             "echo 'client(6): connect error - eaddrinuse'", "echo 'client(6): EXIT for {shutdown,eaddrinuse}'",
             "echo 'client(2): EXIT for {shutdown,tcp_closed}'", "sleep 10"])]},
        {"name": "probe-pub", "role": "probe-pub", "tool": "builtin", "clients": 2, "delay": 1, "seconds": 1,
         "stop_after": 5, "ok_codes": [0], "argv": ["sh", "-c", "echo 'RESULT %s'" % result_json]}]
    args = {"processes": processes, "run_dir": str(tmp_path / "run"), "nofile": 4096}
    failed, result = run_module(emqx_bench_run.main, dict(args, state="started"))
    assert not failed and not result["changed"] and result["started_at"] > 0
    failed, result = run_module(emqx_bench_run.main, dict(args, state="progress", wait=0))
    assert not failed and result["progress"]["connected"] == 5 and result["progress"]["subscribed"] == 5
    # One client failed to connect (an error line and an EXIT line), one lost its connection later.
    assert result["progress"]["line"].endswith("5 connected, 5 subscribed, 0 published, 0 received, 2 errors; "
                                               "0 of 2 processes running")
    failed, result = run_module(emqx_bench_run.main, dict(args, state="finished", timeout=5))
    assert not failed
    assert [(r["name"], r["rc"], r["offset"]) for r in result["results"]] == [("sub-1", 124, 0), ("probe-pub", 0, 1)]
    assert [r["seconds"] for r in result["results"]] in ([1, 1], [1, 2], [2, 2])  # the fake runs them one by one
    assert result["results"][0]["result"]["sub"] == 5 and result["results"][1]["result"]["connect_succ"] == 2
    assert result["results"][0]["result"]["errors"] == {"eaddrinuse": 1, "tcp_closed": 1}
    # A process that ends otherwise than planned fails the task, with the end of its output.
    broken = [dict(processes[1], argv=["sh", "-c", "echo boom; exit 3"])]
    run_module(emqx_bench_run.main, dict(args, processes=broken, state="started"))
    failed, result = run_module(emqx_bench_run.main, dict(args, processes=broken, state="finished", timeout=5))
    assert failed and "probe-pub (exit code 3" in result["msg"] and "boom" in result["msg"]
    failed, result = run_module(emqx_bench_run.main, dict(args, processes=[{"name": "x"}], state="started"))
    assert failed and "lacks role" in result["msg"]


def test_drops_are_the_brokers_count_when_it_was_sampled():
    sub = b.parse_emqtt_bench(SUB_OUTPUT, 20)
    pub = b.parse_emqtt_bench(PUB_OUTPUT.replace("3s pub total=392", "3s pub total=400"), 20)
    samples = [dict({"t": t, "node": node, "connections": 10, "cpu_percent": 1.0, "memory_bytes": 1},
                    messages_received=base + t * 100, messages_sent=base + t * 100, delivery_dropped=2 if t else 0,
                    no_subscribers=t) for t in (0, 4) for node, base in (("a", 1000), ("b", 50))]
    summary = b.summarize([{"host": "g", "role": "sub", "result": sub}, {"host": "g", "role": "pub", "result": pub}],
                          samples)
    messages = summary["messages"]
    assert messages["broker"] == {"messages_received": 800, "messages_sent": 800, "delivery_dropped": 4,
                                  "no_subscribers": 8}
    assert messages["dropped"] == 4 and messages["not_received"] == 8
    assert "| broker: messages in / out / undeliverable / without subscriber ($SYS included) | 800 / 800 / 4 / 8 |" in \
        b.markdown(summary, "t", "c")
    assert b.charts(summary, "t")["messages.svg"].count("<polyline") == 4
    assert b.broker_messages([{"t": 0, "node": "a"}]) is None
