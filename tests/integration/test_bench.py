"""The benchmark's short mode, as a smoke test: every contender is started, driven by wrk and
reported. It asserts nothing about speed (that is what the full run and its ratios are for)."""

from __future__ import annotations

import json

from gunicorn_conf import SETUPS
from harness import bench

CONTENDERS = {
    *SETUPS,
    *(f"nginx→{s}" for s in SETUPS),
    *(f"{s} {variant}" for s in SETUPS for variant in bench.VARIANTS),
    *(f"docker nginx→{s}" for s in SETUPS),
    *(f"docker nginx→{s} by address" for s in SETUPS),
    "dev-single",
    "dev-threaded",
    "dev-processes",
    "waitress",
    "raw-wsgi-sync",
    "nginx-static",
    *(f"nginx→{peer}" for peer in ("uwsgi-as-shipped", "uwsgi-tuned", "granian")),
    "nginx→gthread 4 threads",
}


def test_the_short_benchmark_measures_every_contender_and_writes_its_ratios(tmp_path):
    assert bench.main(["--short", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {row["contender"] for row in data["rows"]} == CONTENDERS
    for row in data["rows"]:
        assert row["rps"] > 0 and row["errors"] == 0, row
        # Every server did work for its requests (CPU is counted in 10 ms ticks; a run is 1 s).
        assert row["p50_ms"] is not None and row["server_cpu"] > 0
    # Every target is checked and stated, met or not (speed is not asserted here).
    targets = [check["target"] for check in data["checks"]]
    for family in (
        "I/O-bound sync",
        "I/O-bound gthread",
        "I/O-bound gevent",
        "db-bound sync",
        "db-bound gthread",
        "db-bound gevent",
        "nginx hop",
        "CPU-bound",
        "hello: the best setup",
        "hello tail",
        "Locust",
        "Who served",
        "gevent p99 next to gthread's",
        "CPU-bound tail",
        "observability tax",
        "per-request cost",
        "noise floor",
        "Docker tax",
        "idle cost",
        "uWSGI as commonly shipped",
        "the peers via nginx",
    ):
        assert any(family in target for target in targets), family
    # ...and judged from measured rows: the short run measures every row a target needs.
    assert not [c["sentence"] for c in data["checks"] if "missing data" in c["measured"]]
    # The variant ratios come from rounds run back to back with the shipped app.
    for setup in SETUPS:
        names = {setup, *(f"{setup} {variant}" for variant in bench.VARIANTS)}
        assert [set(rates) for rates in data["paired"][setup]] == [names], setup
        # ...the Docker tax and the nginx hop from rounds of native nginx next to the compose
        # stack's and to the setup direct.
        docker = {f"nginx→{setup}", f"docker nginx→{setup} by address", setup}
        assert [set(rates) for rates in data["paired"][f"nginx→{setup}"]] == [docker], setup
    # ...and hello against uWSGI from rounds of it next to the three setups via nginx.
    uwsgi = {"nginx→uwsgi-as-shipped", *(f"nginx→{setup}" for setup in SETUPS)}
    assert [set(rates) for rates in data["paired"]["nginx→uwsgi-as-shipped"]] == [uwsgi]
    # ...and CPU-bound against uWSGI and gthread's CPU-bound tail from rounds of the same,
    # with gthread at a few threads a worker, their rates, p99 and errors.
    cpu = {*uwsgi, "nginx→gthread 4 threads"}
    for table in ("paired", "paired_p99", "paired_errors"):
        assert [set(r) for r in data[table]["nginx→uwsgi-as-shipped cpu"]] == [cpu], table
    for words in (
        "Docker tax, sync",
        "nginx hop on hello, gevent",
        "hello, 16 connections: our",
        "cpu, 16 connections: our",
        "CPU-bound tail",
    ):
        check = next(c for c in data["checks"] if c["target"].startswith(words))
        assert "median of 1 round" in check["measured"], check
    tax = next(c for c in data["checks"] if c["target"].startswith("observability tax, sync"))
    assert "median of 1 round back to back" in tax["measured"]
    # One Locust process was measured against nginx's own answer and against a setup.
    for run in data["locust"].values():
        assert run["requests"] > 0 and run["failures"] == 0, run
    text = (tmp_path / "bench.md").read_text()
    assert "## Targets" in text and "## Locust" in text
    # --render judges the saved figures again and writes the same verdicts.
    assert bench.main(["--render", str(tmp_path / "bench.json")]) == 0
    again = json.loads((tmp_path / "bench.json").read_text())
    assert again["checks"] == data["checks"] and again["rows"] == data["rows"]
    # A partial run (--only) judges only the targets it names, and bench.md says so.
    saved = json.loads((tmp_path / "bench.json").read_text())
    saved["meta"]["only"] = ["db-bound"]
    (tmp_path / "bench.json").write_text(json.dumps(saved))
    assert bench.main(["--render", str(tmp_path / "bench.json")]) == 0
    partial = json.loads((tmp_path / "bench.json").read_text())
    assert sorted(c["target"].split(" via")[0] for c in partial["checks"]) == sorted(
        f"db-bound {setup}" for setup in SETUPS
    )
    assert "A partial run: only the targets whose wording contains “db-bound”" in (
        (tmp_path / "bench.md").read_text()
    )
