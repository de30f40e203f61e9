"""Load test capacity, emqtt-bench output, and the report (emqx_bench, emqx_bench_report, emqx_node_stats)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mqttaction.emqx.plugins.filter.emqx_bench_capacity import emqx_bench_capacity
from ansible_collections.mqttaction.emqx.plugins.module_utils import emqx_bench as b
from ansible_collections.mqttaction.emqx.plugins.modules import emqx_bench_report, emqx_node_stats


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
    assert summary["nodes"]["emqx@a"] == {"connections_peak": 1000, "cpu_percent_peak": 50.0, "memory_bytes_peak": 300}
    assert summary["broker_connections"][-1] == {"t": 2, "nodes": {"emqx@a": 1000, "emqx@b": 1000}}
    markdown = b.markdown(summary, "Run", "bench")
    assert "| clients held at the peak | 2,000 |" in markdown and "| emqx@a | 1,000 | 50 % |" in markdown
    svg = b.svg(summary, "Run <1>")
    assert svg.startswith("<svg") and "Run &lt;1&gt;" in svg and svg.count("<polyline") == 4


def test_summarize_a_run_that_hit_the_wall():
    wall = [{"t": 0, "connected": 0, "connect_succ": 0, "connect_fail": 0},
            {"t": 1, "connected": 200, "connect_succ": 200, "connect_fail": 100}]
    summary = b.summarize([generator("g1", 300, wall, ramp_seconds=None, errors={"eaddrinuse": 100},
                                     connect_fail=100)], [])
    assert not summary["reached_target"] and summary["ramp_seconds"] is None and summary["connect_rate"] is None
    assert summary["errors"] == {"eaddrinuse": 100}
    assert "| time to ramp | target not reached |" in b.markdown(summary, "Wall", "bench")
    assert "eaddrinuse: 100" in b.svg(summary, "Wall")


def test_report_module_writes_three_files(tmp_path, run_module):
    samples = [{"time": 1795676401.2, "node": "emqx@a", "connections": 500, "cpu_percent": 10.0, "memory_bytes": 1}]
    failed, result = run_module(emqx_bench_report.main, {
        "dest": str(tmp_path / "run"), "title": "Lab", "generators": [generator("g1", 1000, TIMELINE)],
        "samples": samples})
    assert not failed and result["changed"] and sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "connections.svg", "report.json", "report.md"]
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
