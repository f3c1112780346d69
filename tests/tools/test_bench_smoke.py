"""`make bench` runs end to end on tiny counts and writes well-formed results.

A smoke test only: the figures themselves are never asserted (timing belongs to the benchmark).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from captcha_bench import bench


@pytest.mark.slow
def test_bench_runs_and_writes_well_formed_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "bench.json"
    bench.main(["--spawns", "1", "--warm", "3", "--work-dir", str(tmp_path / "work"), "--json", str(results)])

    figures = json.loads(results.read_text(encoding="utf-8"))
    for name in ("project", "naive", "naive_delivers"):
        for key in (
            "cold_first_answer_ms",
            "cold_import_ms",
            "cold_first_call_ms",
            "warm_p50_ms",
            "warm_p95_ms",
        ):
            value = figures[name][key]
            assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, key, value)
        # The code's own time is the wall time less the outbound calls: positive and smaller.
        assert 0 < figures[name]["warm_own_p50_ms"] < figures[name]["warm_p50_ms"]
        assert figures[name]["import_time"]["total_ms"] > 0
        assert figures[name]["import_time"]["by_package_ms"]
    # Counted, not timed: the project's two rounds (a loaded machine may start a concurrent call
    # after its twin ended, hence the median); the naive handlers' secret read, put_item (and PutEvents).
    assert figures["project"]["aws_rounds_p50"] == 2
    assert figures["naive"]["aws_rounds_max"] == 2 and figures["naive_delivers"]["aws_rounds_max"] == 3
    assert set(figures["ratios"]) == {
        f"{key}_vs_{baseline}"
        for key in ("cold_first_answer", "warm_p50", "warm_p95")
        for baseline in ("naive", "naive_delivers")
    }
    assert figures["layer"]["unzipped_mb"] > 0
    assert figures["floor_p50_ms"] > 0
    assert set(figures["floor_parts_p50_ms"]) == {"provider", "put_item", "update_item", "put_events"}
    assert len(figures["goals"]) == 5
    printed = capsys.readouterr().out
    assert "cold: spawn to first answer" in printed and str(results) in printed
    assert "sequential AWS round trips (max)" in printed
