"""The outputs of ``sim tune``: trials table, Pareto front (CSV and plot), confirmation table,
``best.json`` (a create body) and ``report.md`` comparing the winner with the starting config."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sim.tune.metrics import HOURS_PER_MONTH
from sim.tune.optimize import TuneSettings, pareto_trials


def trials_frame(study: Any) -> pd.DataFrame:
    """One row per trial: number, state, cost, latency, constraint figures, knobs, error."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name}
        vals = t.values or [math.nan, math.nan]
        row["objective_cost"], row["objective_latency"] = vals[0], vals[1]
        viol = t.user_attrs.get("violations")
        row["feasible"] = None if viol is None else all(v <= 0 for v in viol)
        row.update({f"param:{k}": v for k, v in t.params.items()})
        row["error"] = t.user_attrs.get("error")
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt_ci(ci: Mapping[str, Any] | None, scale: float = 1.0, unit: str = "") -> str:
    if not ci or ci.get("mean") is None:
        return "n/a"
    m, h = ci["mean"] * scale, ci.get("half_width")
    return f"{m:.4g}{unit}" + ("" if h is None else f" ± {h * scale:.2g}")


def write_outputs(
    scenario: Any, study: Any, settings: TuneSettings, confirmed: Mapping[str, Any], out: Path
) -> list[Path]:
    """Write every output of a tune into ``out``; the paths written."""
    from sim.api.export import create_body
    from sim.io import write_json
    from sim.scenario import resolved_dict
    from sim.tune.plots import plot_pareto

    written = []
    trials = trials_frame(study)
    trials.to_csv(out / "trials.csv", index=False)
    written.append(out / "trials.csv")
    front = pareto_trials(study)
    pf = pd.DataFrame([{"trial": t.number, settings.cost: t.values[0], settings.latency: t.values[1],
                        **t.user_attrs.get("overrides", {})} for t in front])
    pf.to_csv(out / "pareto.csv", index=False)
    written.append(out / "pareto.csv")
    done = trials[trials["state"] == "COMPLETE"]
    if len(done):
        means = pd.DataFrame({settings.cost: done["objective_cost"].astype(float),
                              settings.latency: done["objective_latency"].astype(float)})
        for c in settings.constraints:
            if c.figure not in means.columns:
                means[c.figure] = [
                    t.user_attrs.get(c.figure, math.nan)
                    for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
                ]
        written.append(plot_pareto(means, settings.latency, out / "pareto.png",
                                   settings.constraints, cost=settings.cost,
                                   title=f"{scenario.name}: {len(done)} trials "
                                   f"(mean of seeds {','.join(map(str, settings.seeds))})"))
    rows = confirmed["rows"]
    conf = pd.DataFrame([
        {"label": r["label"], "confident": r.get("confident"), "error": r.get("error"),
         **{f: (r.get(f) or {}).get("mean") for f in confirmed["figures"]},
         **{f"{f} ci95_half": (r.get(f) or {}).get("half_width") for f in confirmed["figures"]},
         "overrides": json.dumps(r["overrides"], default=str)}
        for r in rows
    ])
    conf.to_csv(out / "candidates.csv", index=False)
    written.append(out / "candidates.csv")
    winner = confirmed["winner"]
    base = resolved_dict(scenario)
    if winner is not None:
        body = create_body(base, winner["overrides"])
        (out / "best.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        written.append(out / "best.json")
    summary = {
        "scenario": scenario.name,
        "constraints": [str(c) for c in settings.constraints],
        "objectives": [settings.cost, settings.latency],
        "sampler": settings.sampler, "sampler_seed": settings.seed,
        "trials": int(len(trials)), "trial_seeds": list(settings.seeds),
        "confirm_seeds": list(settings.confirm_seeds),
        "winner": None if winner is None else {
            "label": winner["label"], "trial": winner["trial"],
            "overrides": winner["overrides"],
            **{f: winner.get(f) for f in confirmed["figures"]},
            **{f"diff:{f}": winner.get(f"diff:{f}") for f in confirmed["figures"]},
        },
        "starting_config": {f: rows[0].get(f) for f in confirmed["figures"]},
    }
    write_json(summary, out / "tune.json")
    written.append(out / "tune.json")
    (out / "report.md").write_text(_report(scenario, settings, confirmed, trials),
                                   encoding="utf-8")
    written.append(out / "report.md")
    return written


def _report(scenario: Any, settings: TuneSettings, confirmed: Mapping[str, Any],
            trials: pd.DataFrame) -> str:
    rows, winner, figs = confirmed["rows"], confirmed["winner"], confirmed["figures"]
    n_ok = int((trials["state"] == "COMPLETE").sum()) if len(trials) else 0
    n_feas = int(trials["feasible"].fillna(False).astype(bool).sum()) if len(trials) else 0
    lines = [
        f"# Tuning {scenario.name}", "",
        f"Objectives: minimise `{settings.cost}` and `{settings.latency}`; constraints: "
        + (", ".join(f"`{c}`" for c in settings.constraints) or "none") + ".",
        f"{len(trials)} trials ({settings.sampler}, sampler seed {settings.seed}), each on seeds "
        f"{','.join(map(str, settings.seeds))}; {n_ok} completed, {n_feas} met the constraints "
        "on their mean.",
        f"The {len(rows) - 1} best candidates and the starting config were re-run on seeds "
        f"{','.join(map(str, confirmed['seeds']))} (common random numbers); a candidate counts "
        "only if every constraint holds at the cautious end of its 95% interval.", "",
        "![Pareto front](pareto.png)", "",
        "| config | confident | " + " | ".join(figs) + " |",
        "|---|---|" + "---|" * len(figs),
    ]
    for r in rows:
        cells = [_fmt_ci(r.get(f)) for f in figs] if not r.get("error") else [r["error"]] + [""] * (len(figs) - 1)
        lines.append(f"| {r['label']} | {'yes' if r.get('confident') else 'no'} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    if winner is None:
        lines += ["**No configuration met the constraints with confidence**: relax them, widen "
                  "the search space or run more trials. No `best.json` was written.", ""]
        return "\n".join(lines)
    if winner["trial"] is None:
        lines += ["**The starting config is the cheapest that meets the constraints with "
                  "confidence**; `best.json` is its create body.", ""]
        return "\n".join(lines)
    d_cost = winner.get(f"diff:{settings.cost}")
    d_lat = winner.get(f"diff:{settings.latency}")
    lines += [
        f"**Winner: {winner['label']}** (`best.json`, a create body). Against the starting config, "
        f"paired on seeds {','.join(map(str, confirmed['seeds']))}:", "",
        f"- cost per hour: {_fmt_ci(d_cost, unit=' USD')} "
        f"(per month of {HOURS_PER_MONTH:g} h: {_fmt_ci(d_cost, HOURS_PER_MONTH, ' USD')})",
        f"- {settings.latency}: {_fmt_ci(d_lat, unit=' s')}",
        "", "Knobs changed:", "",
    ]
    lines += [f"- `{k}` = `{v}`" for k, v in winner["overrides"].items()]
    lines.append("")
    return "\n".join(lines)
