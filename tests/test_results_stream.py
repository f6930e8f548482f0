"""sim.results: stream — the per-request table is written while the run goes, one Parquet row
group per batch of resolved requests, with full mode's rows and types."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

import sim.engine.requests as engine_requests
from sim import load_scenario, simulate
from sim.cli import main
from sim.io import verify_manifest

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "spot_llama2_70b_gcp_a100.yaml"  # preemption: retries, failures
SHORT = "sim.horizon_s=1800"


def test_streamed_table_is_full_modes_table_in_resolution_order(tmp_path, monkeypatch):
    """Sorted by request_id, the streamed rows equal full mode's table, column for column and
    type for type; small batches give one row group each; summary figures are summary mode's."""
    monkeypatch.setattr(engine_requests, "FLUSH", 500)
    full = simulate(load_scenario(SCENARIO, overrides=[SHORT]))
    path = tmp_path / "requests.parquet"
    streamed = simulate(load_scenario(SCENARIO, overrides=[SHORT, "sim.results=stream"]),
                        requests_path=path)
    summary = simulate(load_scenario(SCENARIO, overrides=[SHORT, "sim.results=summary"]))
    table = pd.read_parquet(path)
    assert len(table) == len(full.requests) > 1000
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(table) // 500)
    assert not table["request_id"].is_monotonic_increasing  # resolution order, not arrival
    ordered = table.sort_values("request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(ordered, full.requests)
    assert streamed.summary["sim"]["results"] == "stream" and streamed.requests.empty
    for key in ("requests", "slo", "cost", "ttft_s", "latency_e2e_s"):
        assert streamed.summary[key] == summary.summary[key], key


def test_stream_without_a_file_runs_as_summary_and_says_so():
    """The Python API without requests_path: no table kept, and a warning, not silence."""
    res = simulate(load_scenario(SCENARIO, overrides=[SHORT, "sim.results=stream"]))
    assert res.summary["sim"]["results"] == "summary"
    assert any("no file to stream to" in w for w in res.summary["warnings"])


def test_sim_run_streams_into_its_result_folder(tmp_path, capsys, monkeypatch):
    """sim run writes requests.parquet through the staging folder: the manifest lists it, and
    an interrupted run leaves the previous result in place."""
    out = tmp_path / "run"
    args = ["run", str(SCENARIO), "--set", SHORT, "--set", "sim.results=stream",
            "--out", str(out), "-q", "--no-report"]
    assert main(args) == 0
    assert verify_manifest(out) == []
    summary = json.loads((out / "summary.json").read_text())
    assert "requests.parquet" in summary["manifest"]["files"]
    assert len(pd.read_parquet(out / "requests.parquet")) == summary["requests"]["arrived"]
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # A run that fails half-way through streaming leaves the previous result as it was.
    before = (out / "summary.json").read_bytes()
    from sim.metrics.stream import RequestTableWriter

    def fail(self, req, request_id):
        raise OSError(28, "No space left on device", str(self.path))

    monkeypatch.setattr(engine_requests, "FLUSH", 500)
    monkeypatch.setattr(RequestTableWriter, "add", fail)
    assert main(args) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "summary.json").read_bytes() == before and verify_manifest(out) == []
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
