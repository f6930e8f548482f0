"""All-or-nothing result folders (sim.io.atomic_result_dir / write_run): a manifest of every
file, the previous result kept on failure or kill, foreign folders never replaced, and
scenario names that cannot act as paths."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sim.errors import ConfigError
from sim.io import atomic_result_dir, slugify, verify_manifest, write_run
from sim.metrics import build_result
from sim.metrics.example import example_record


def _result(seed: int):
    return build_result(example_record(n_requests=300, seed=seed), slo_metric="ttft",
                        slo_threshold_s=2.0, scenario_dict={"name": "demo"})


def test_manifest_lists_every_file_with_size_and_hash(tmp_path):
    """summary.json carries a manifest (files, bytes, SHA-256, seed, version) matching the folder."""
    out = write_run(_result(3), tmp_path / "run", report=False)
    summary = json.loads((out / "summary.json").read_text())
    man = summary["manifest"]
    assert man["complete"] is True and man["seed"] == summary["sim"]["seed"]
    assert man["simulator_version"]
    assert set(man["files"]) == {"requests.parquet", "workers.parquet", "decisions.csv",
                                 "timeline.csv", "queue.csv"}
    size = (out / "requests.parquet").stat().st_size
    assert man["files"]["requests.parquet"]["bytes"] == size
    assert verify_manifest(out) == []
    with (out / "queue.csv").open("a") as fh:  # a changed file is noticed
        fh.write("1,2,3\n")
    assert verify_manifest(out) == ["queue.csv: size or hash differs from the manifest"]
    assert not list(tmp_path.glob(".run.*"))  # no staging folder left behind


def test_failure_mid_write_keeps_previous_result(tmp_path):
    """A disk-full error half-way through leaves the previous result untouched and says so."""
    out = tmp_path / "run"
    write_run(_result(1), out, report=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    intact = "No space left on device; the previous result there is intact"
    with pytest.raises(ConfigError, match=intact), atomic_result_dir(out, seed=2) as stage:
        (stage / "summary.json").write_text("{}")
        (stage / "requests.parquet").write_bytes(b"trunc")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(stage / "workers.parquet"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert verify_manifest(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_interrupt_keeps_previous_result(tmp_path):
    """Ctrl-C while writing leaves the old folder and notes it on the exception."""
    out = tmp_path / "run"
    write_run(_result(1), out, report=False)
    with pytest.raises(KeyboardInterrupt) as exc, atomic_result_dir(out, seed=2) as stage:
        (stage / "summary.json").write_text("{}")
        raise KeyboardInterrupt
    assert "previous result there is intact" in exc.value.__notes__[0]
    assert verify_manifest(out) == []


def test_folder_with_foreign_files_is_not_replaced(tmp_path):
    """--out pointing at a folder of the user's own files is refused, not wiped."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds files a run did not write \(notes.txt\)"):
        write_run(_result(1), tmp_path, report=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_leftovers_of_killed_runs_are_cleaned(tmp_path):
    """A staging folder of a dead process is removed; a previous result stranded by a kill
    between the two renames of the fallback swap is put back."""
    out = tmp_path / "run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f".run.partial-{dead}").mkdir()
    (tmp_path / ".run.old-1").mkdir()
    (tmp_path / ".run.old-1" / "summary.json").write_text("{}")
    with atomic_result_dir(out, seed=0) as stage:
        # The stranded result was restored before this run began staging.
        assert (out / "summary.json").read_text() == "{}"
        (stage / "summary.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


_WRITER = textwrap.dedent("""
    import sys
    from sim.io import write_run
    from sim.metrics import build_result
    from sim.metrics.example import example_record
    results = [build_result(example_record(n_requests=2000, seed=s), slo_metric="ttft",
                            slo_threshold_s=2.0, scenario_dict={"name": "demo"}) for s in range(3)]
    print("ready", flush=True)
    i = 0
    while True:
        write_run(results[i % 3], sys.argv[1], report=True)
        i += 1
""")


@pytest.mark.slow
def test_sigkill_during_writing_leaves_old_or_new_never_a_mix(tmp_path):
    """A writer replacing the same folder over and over is SIGKILLed at several moments; each
    time the folder is one complete result (its manifest checks out, one seed throughout)."""
    out = tmp_path / "run"
    for delay in (0.05, 0.3, 0.7, 1.1, 1.6):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not (out / "summary.json").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert verify_manifest(out) == [], delay
        summary = json.loads((out / "summary.json").read_text())
        assert summary["manifest"]["seed"] == summary["sim"]["seed"]
        assert {p.name for p in out.iterdir()} >= {"report.md", "report.html", "cost.png"}
    assert not [p for p in tmp_path.iterdir() if p.name != "run" and "partial" not in p.name]


@pytest.mark.parametrize(
    ("name", "slug"),
    [("../../etc/passwd", "etc-passwd"), ("/abs/x y", "abs-x-y"), ("Chat 8B (v2)", "Chat-8B-v2"),
     ("a\x00b", "a-b"), ("..", "run"), ("", "run"), ("café", "cafe"), ("quickstart", "quickstart")],
)
def test_slugify_never_yields_a_path(name, slug):
    """Scenario names become one safe folder name: no separators, no leading dot, no NUL."""
    assert slugify(name) == slug
    assert Path("results", slugify(name)).parent == Path("results")
