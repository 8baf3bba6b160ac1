"""The benchmark's short mode, as a smoke test: every contender is started, driven by wrk and
reported. It asserts nothing about speed (that is what the full run and its ratios are for)."""

from __future__ import annotations

import json

from loadtest import bench

CONTENDERS = {"sync", "gthread", "gevent", "nginx→sync", "nginx→gthread", "nginx→gevent",
              "dev-single", "dev-threaded", "dev-processes", "waitress", "raw-wsgi-sync",
              "nginx-static"}


def test_the_short_benchmark_measures_every_contender_and_writes_its_ratios(tmp_path):
    assert bench.main(["--short", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {row["contender"] for row in data["rows"]} == CONTENDERS
    for row in data["rows"]:
        assert row["rps"] > 0 and row["errors"] == 0, row
        assert row["p50_ms"] is not None and row["server_cpu"] >= 0
    assert any(s.startswith("nginx hop on hello") for s in data["ratios"])
    assert "## Targets" in (tmp_path / "bench.md").read_text()


def test_wrk_output_is_parsed_with_units():
    sample = """
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.00ms
     99%    1.50s
  12345 requests in 1.00s, 1.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:  12345.67
"""
    parsed = bench.parse_wrk(sample)
    assert parsed == {"rps": 12345.67, "p50_ms": 0.81, "p99_ms": 1500.0, "requests": 12345,
                      "errors": 6}
