#!/usr/bin/env python
"""Write the end-to-end (Argonne vLLM) fidelity tables into docs/fidelity.md and the shipped
per-group errors into sim/serving/data/fidelity_groups.json.

Every figure is recomputed from ``../shared/data/argonne_llm_inference_bench`` by
:mod:`sim.fidelity_e2e`. Bounds (measured, rounded up to the next 5%) are written for the
default engine's groups; ``tests/test_fidelity_e2e.py`` recomputes the errors and holds
each group to them. ``--check`` exits 1 when the doc or the JSON is stale.

Usage: ``python scripts/fidelity_e2e_table.py [--data DIR] [--check]``
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sim import fidelity_e2e as fe  # noqa: E402

DOC = ROOT / "docs" / "fidelity.md"
GROUPS = ROOT / "sim" / "serving" / "data" / "fidelity_groups.json"
ENGINES = ("vllm-0.14", "eager-2024", "vidur")
DEFAULT = "vllm-0.14"


def _pct(x: float) -> str:
    return f"{x:+.0%}".replace("+0%", "0%")


def _up5(x: float) -> int:
    return int(math.ceil(x * 100 / 5 - 1e-9) * 5) or 5


def compute(data: Path | None) -> dict[str, pd.DataFrame]:
    out = {e: fe.argonne_errors(data, engine=e) for e in ENGINES}
    out["calibrated"] = fe.calibrated_holdout(data)
    return out


def tables(errs: dict[str, pd.DataFrame]) -> dict[str, str]:
    out: dict[str, str] = {}
    # Every row, the three engines side by side.
    base = errs[DEFAULT]
    lines = ["| model | GPU | TP | batch | tokens in = out | quantity | measured s | "
             + " | ".join(f"{e} s | {e} error" for e in ENGINES) + " |",
             "|---|---|--:|--:|--:|---|--:|" + "--:|--:|" * len(ENGINES)]
    order = base.sort_values(["model", "gpu", "tp", "quantity", "length", "batch"]).index
    for i in order:
        r = base.loc[i]
        cells = [f"{errs[e].loc[i, 'predicted_s']:.3g} | {_pct(errs[e].loc[i, 'error'])}"
                 for e in ENGINES]
        lines.append(f"| {r['model']} | {r['gpu']} | {r['tp']} | {r['batch']} | {r['length']} | "
                     f"{r['quantity']} | {r['measured_s']:.3g} | " + " | ".join(cells) + " |")
    out["rows"] = "\n".join(lines)
    # Per group: median and worst error per engine.
    sums = {e: fe.group_summary(errs[e]).set_index(["model", "gpu", "tp", "quantity"])
            for e in ENGINES}
    lines = ["| model | GPU | TP | quantity | points | "
             + " | ".join(f"{e} median | {e} worst abs" for e in ENGINES) + " |",
             "|---|---|--:|---|--:|" + "--:|--:|" * len(ENGINES)]
    for key, r in sums[DEFAULT].iterrows():
        cells = [f"{_pct(sums[e].loc[key, 'median'])} | {sums[e].loc[key, 'worst_abs']:.0%}"
                 for e in ENGINES]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {int(r['points'])} | "
                     + " | ".join(cells) + " |")
    out["groups"] = "\n".join(lines)
    lines = ["| engine | points | median error | median abs error | worst abs error |",
             "|---|--:|--:|--:|--:|"]
    for e in ENGINES:
        err = errs[e]["error"].to_numpy()
        lines.append(f"| {e} | {len(err)} | {_pct(float(np.median(err)))} | "
                     f"{np.median(np.abs(err)):.0%} | {np.max(np.abs(err)):.0%} |")
    out["overall"] = "\n".join(lines)
    bounds = []
    for key, r in sums[DEFAULT].iterrows():
        bounds.append(f"- e2e `{key[0]} {key[1]} TP{key[2]}` {key[3]}: median |error| ≤ "
                      f"{_up5(float(r['median_abs']))}%, worst ≤ {_up5(float(r['worst_abs']))}%")
    cal = fe.group_summary(errs["calibrated"])
    lines = ["| model | GPU | TP | held-out rows | median error | median abs | worst abs |",
             "|---|---|--:|--:|--:|--:|--:|"]
    for r in cal.itertuples():
        lines.append(f"| {r.model} | {r.gpu} | {r.tp} | {r.points} | {_pct(r.median)} | "
                     f"{r.median_abs:.0%} | {r.worst_abs:.0%} |")
        bounds.append(f"- calibrated `{r.model} {r.gpu} TP{r.tp}` latency: median |error| ≤ "
                      f"{_up5(float(r.median_abs))}%, worst ≤ {_up5(float(r.worst_abs))}%")
    err = errs["calibrated"]["error"].to_numpy()
    lines.append(f"| all | | | {len(err)} | {_pct(float(np.median(err)))} | "
                 f"{np.median(np.abs(err)):.0%} | {np.max(np.abs(err)):.0%} |")
    out["calibrated"] = "\n".join(lines)
    out["bounds"] = "\n".join(bounds)
    return out


def groups_json(errs: dict[str, pd.DataFrame]) -> str:
    doc: dict[str, Any] = {"source": "docs/fidelity.md (scripts/fidelity_e2e_table.py) against "
                           "Argonne LLM-Inference-Bench vLLM rows (BSD-3)",
                           "engines": {}, "overall": {}}
    for e in ENGINES:
        lat = errs[e][errs[e]["quantity"] == "latency"]
        s = fe.group_summary(lat)
        doc["engines"][e] = {
            f"{r.model}|{r.gpu}|{r.tp}": {"points": int(r.points), "median": round(r.median, 3),
                                          "median_abs": round(r.median_abs, 3),
                                          "worst_abs": round(r.worst_abs, 3)}
            for r in s.itertuples()}
        err = lat["error"].to_numpy()
        doc["overall"][e] = {"points": len(err),
                             "median_abs": round(float(np.median(np.abs(err))), 3),
                             "worst_abs": round(float(np.max(np.abs(err))), 3)}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def fill(text: str, name: str, body: str) -> str:
    pat = re.compile(rf"(<!-- BEGIN generated:{name} -->\n).*?(<!-- END generated:{name} -->)",
                     re.S)
    if not pat.search(text):
        raise SystemExit(f"docs/fidelity.md has no generated:{name} block")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    errs = compute(args.data)
    text = DOC.read_text(encoding="utf-8")
    new = text
    for name, body in tables(errs).items():
        new = fill(new, f"e2e-{name}", body)
    js = groups_json(errs)
    if args.check:
        stale = [p for p, want in ((DOC, new), (GROUPS, js))
                 if not p.is_file() or p.read_text(encoding="utf-8") != want]
        print("up to date" if not stale else "stale: " + ", ".join(map(str, stale)))
        return 1 if stale else 0
    DOC.write_text(new, encoding="utf-8")
    GROUPS.write_text(js, encoding="utf-8")
    print(f"wrote {DOC} and {GROUPS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
