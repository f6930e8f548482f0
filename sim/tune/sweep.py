"""A sweep: every point of a knob space under the same seeds, into one Parquet table.

Each (point, seed) is one simulation (:func:`sim.executor.run_sim_task`) through a
:class:`~sim.executor.Runner`. Finished runs are appended to a journal
(``OUT/points.jsonl``, one JSON line each, flushed as it lands), so a sweep killed at any
moment (``kill -9`` included) resumes where it stopped: re-running skips the (point, seed)
pairs already in the journal and never runs one twice. A half-written last line (the kill
landed mid-write) is dropped and that run repeated. A failing point records its error and
never stops the sweep. ``OUT/sweep.parquet`` (one row per point and seed: knobs, seed, every
summary figure, ``error``) is rewritten from the journal at the end, atomically.

Only the summary crosses back from a worker (no per-request tables, plots or Parquet per run).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import ConfigError
from sim.executor import Outcome, Runner, SimTask, run_sim_task
from sim.tune.metrics import flatten
from sim.tune.space import GPU_NUM_PATH, GPU_PATH, WORKER_SHAPE, Space, check_knobs, overrides_for

JOURNAL = "points.jsonl"
TABLE = "sweep.parquet"
PLAN = "sweep.json"
#: The base scenario next to the table (``sim export SWEEP --row N`` reads it).
SCENARIO = "scenario.json"


@dataclass(frozen=True)
class Run:
    """One planned simulation: point index, its knob values, the overrides that make it, a seed."""

    point: int
    knobs: Mapping[str, Any]
    overrides: Mapping[str, Any]
    seed: int

    @property
    def key(self) -> str:
        """A stable id of (overrides, seed): the journal's dedup key."""
        raw = json.dumps([sorted(self.overrides.items()), self.seed], default=str)
        return hashlib.blake2s(raw.encode(), digest_size=12).hexdigest()


def plan_runs(space: Space, base: Mapping[str, Any], seeds: Sequence[int]) -> list[Run]:
    """Every (point, seed) of the sweep, point-major."""
    dims = (*space.grid, *space.ranges)
    runs: list[Run] = []
    for i, point in enumerate(space.points()):
        ov = overrides_for(point, base, dims)
        # The table holds what was simulated: the overrides (so `sim export` of a row gives
        # exactly the simulated body), plus the shape label when the point has one.
        knobs = {**({WORKER_SHAPE: point[WORKER_SHAPE]} if WORKER_SHAPE in point else {}), **ov}
        runs.extend(Run(i, knobs, ov, int(s)) for s in seeds)
    return runs


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The complete records of a journal; a torn last line (killed mid-write) is cut off the file."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end < len(raw):  # the last write did not finish: drop it, it will run again
        with open(path, "r+b") as f:
            f.truncate(end)
    records = []
    for n, line in enumerate(raw[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise ConfigError(f"line {n} is not JSON: the journal is damaged (remove it to "
                              "start over)", source=str(path)) from None
    return records


def _plan_id(base: Mapping[str, Any], runs: Sequence[Run]) -> str:
    deployment_free = {k: v for k, v in base.items() if k != "name"}
    raw = json.dumps([deployment_free, [r.key for r in runs]], sort_keys=True, default=str)
    return hashlib.blake2s(raw.encode(), digest_size=12).hexdigest()


def _check_plan(out: Path, plan_id: str, n_runs: int) -> None:
    """Refuse to resume into a folder holding a different sweep (its points would mix)."""
    p = out / PLAN
    if not (out / JOURNAL).exists():
        return
    if p.exists():
        try:
            old = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("plan_id") == plan_id:
            return
    raise ConfigError(
        "holds the journal of a different sweep (other scenario, grid or seeds); resuming "
        "would mix them: choose another --out or remove the folder",
        source=str(out),
    )


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def table_from_records(records: Sequence[Mapping[str, Any]], knob_names: Sequence[str]) -> pd.DataFrame:
    """One row per record: ``point``, ``seed``, the knobs, ``error``, then every summary figure."""
    rows = []
    for r in records:
        row: dict[str, Any] = {"point": r["point"], "seed": r["seed"]}
        row.update({k: r["knobs"].get(k) for k in knob_names})
        row["error"] = r.get("error")
        row.update(r.get("figures") or {})
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["point", "seed", *knob_names, "error"])
    return df.sort_values(["point", "seed"], kind="stable").reset_index(drop=True)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the table and how many runs it ran, skipped and lost."""

    table: pd.DataFrame
    ran: int
    skipped: int
    failed: int
    out: Path


def run_sweep(
    scenario: Any,
    space: Space,
    seeds: Sequence[int],
    out: str | Path,
    *,
    runner: Runner | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep of ``space`` on ``scenario`` under ``seeds`` into folder ``out``.

    ``progress(done, total)`` is called as runs finish (``done`` counts resumed runs too).
    Writes ``points.jsonl`` (journal), ``sweep.json`` (the plan), ``scenario.json`` (the
    resolved base scenario) and ``sweep.parquet``. Returns the table in (point, seed) order.
    Raises :class:`~sim.errors.ConfigError` if ``out`` holds a different sweep.
    """
    from sim.io import write_json
    from sim.tune.metrics import pinned_base

    out = Path(out)
    base = pinned_base(scenario)
    check_knobs((*space.grid, *space.ranges), base, source=space.source)
    runs = plan_runs(space, base, seeds)
    plan_id = _plan_id(base, runs)
    out.mkdir(parents=True, exist_ok=True)
    _check_plan(out, plan_id, len(runs))
    journal = out / JOURNAL
    done = {r["key"]: r for r in read_journal(journal)}
    write_json({"plan_id": plan_id, "runs": len(runs), "knobs": space.columns,
                "seeds": list(seeds)}, out / PLAN)
    if not (out / SCENARIO).exists():
        write_json(base, out / SCENARIO)
    todo = [r for r in runs if r.key not in done]
    skipped = len(runs) - len(todo)
    tasks = [
        SimTask(base, r.seed, tuple(r.overrides.items()), str(scenario.base_dir),
                source=scenario.source or "<sweep>")
        for r in todo
    ]
    failed = 0
    finished = skipped
    if progress is not None:
        progress(finished, len(runs))
    with open(journal, "a", encoding="utf-8") as jf:

        def record(i: int, outcome: Outcome[Any]) -> None:
            nonlocal failed, finished
            r = todo[i]
            rec = {"key": r.key, "point": r.point, "seed": r.seed,
                   "knobs": dict(r.knobs), "overrides": dict(r.overrides),
                   "error": outcome.error,
                   "figures": flatten(outcome.value) if outcome.value is not None else None}
            # One write per line, flushed: a kill leaves whole lines plus at most one torn one.
            jf.write(json.dumps(rec, default=str) + "\n")
            jf.flush()
            done[r.key] = rec
            failed += not outcome.ok
            finished += 1
            if progress is not None:
                progress(finished, len(runs))

        if tasks:
            if runner is None:
                with Runner() as own:
                    own.map(run_sim_task, tasks, on_result=record)
            else:
                runner.map(run_sim_task, tasks, on_result=record)
    records = [done[r.key] for r in runs if r.key in done]
    table = table_from_records(records, space.columns)
    _write_atomic(out / TABLE, lambda p: table.to_parquet(p, index=True))
    return SweepResult(table, len(todo), skipped, failed, out)


def point_means(table: pd.DataFrame, knob_names: Sequence[str]) -> pd.DataFrame:
    """Per point: the knobs, the number of seeds, failed seeds, and the mean of every figure."""
    if table.empty:
        return table
    figures = [c for c in table.columns
               if c not in ("point", "seed", "error", *knob_names)]
    ok = table[table["error"].isna()]
    means = ok.groupby("point")[figures].mean(numeric_only=True)
    first = table.groupby("point")[list(knob_names)].first()
    counts = table.groupby("point").agg(seeds=("seed", "size"),
                                        failed=("error", lambda e: int(e.notna().sum())))
    return first.join(counts).join(means).reset_index()


def write_sweep_report(
    result: SweepResult,
    space: Space,
    *,
    constraints: Sequence[Any] = (),
    latency: str = "ttft_s.p95",
    title: str = "sweep",
    top: int = 10,
) -> list[Path]:
    """``sweep.md`` (best feasible points, failures), ``pareto.png`` and one heatmap per knob pair."""
    from sim.tune.metrics import COST
    from sim.tune.plots import feasible_mask, markdown_table, plot_heatmaps, plot_pareto

    out = result.out
    knobs = space.columns
    means = point_means(result.table, knobs)
    written: list[Path] = []
    lines = [f"# {title}", "",
             f"{len(means)} points x {result.table['seed'].nunique() if len(result.table) else 0} "
             f"seeds = {len(result.table)} runs ({result.ran} run now, {result.skipped} resumed, "
             f"{int(result.table['error'].notna().sum()) if len(result.table) else 0} failed).",
             ""]
    if constraints:
        lines.append("Constraints (on the mean over seeds): "
                     + ", ".join(f"`{c}`" for c in constraints) + ".")
        lines.append("")
    have = not means.empty and COST in means.columns and latency in means.columns
    if have:
        feas = feasible_mask(means, constraints)
        best = means[feas].sort_values(COST).head(top)
        cols = ["point", *knobs, COST, latency, "slo.attainment", "requests.failed"]
        cols += [c.figure for c in constraints if c.figure not in cols]
        lines += [f"## Cheapest points meeting the constraints ({int(feas.sum())} of {len(means)})",
                  ""]
        lines.append(markdown_table(best, cols) if len(best) else "None.")
        lines.append("")
        written.append(plot_pareto(means, latency, out / "pareto.png", constraints,
                                   title=f"{title}: cost vs {latency}"))
        lines += ["![cost vs latency](pareto.png)", ""]
        # A shape's GPU and count columns repeat its label: one heatmap axis for it is enough.
        axes = [k for k in knobs if WORKER_SHAPE not in knobs or k not in (GPU_PATH, GPU_NUM_PATH)]
        if len(axes) >= 2:
            maps = plot_heatmaps(means, axes, out)
            written += maps
            lines += ["## Mean cost per hour by pair of knobs", ""]
            lines += [f"![{p.stem}]({p.name})" for p in maps]
            lines.append("")
    errors = result.table[result.table["error"].notna()] if len(result.table) else result.table
    if len(errors):
        lines += ["## Failed runs", "", markdown_table(errors.head(20), ["point", "seed", "error"]),
                  ""]
    (out / "sweep.md").write_text("\n".join(lines), encoding="utf-8")
    written.append(out / "sweep.md")
    return written
