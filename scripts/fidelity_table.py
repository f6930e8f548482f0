#!/usr/bin/env python
"""Regenerate the tables of docs/fidelity.md from the public measurements (sim.fidelity).

Each table sits between ``<!-- BEGIN generated:NAME -->`` and ``<!-- END generated:NAME -->``
in the doc and is replaced in place; the prose and the documented error bounds around them
are hand-written and left alone (tests/test_fidelity.py checks the bounds against the data).

Usage: ``python scripts/fidelity_table.py [--data DIR] [--doc FILE] [--check]``
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `sim` importable
    sys.path.insert(0, str(ROOT))

from sim import fidelity  # noqa: E402

DOC = ROOT / "docs" / "fidelity.md"


def _records(df: pd.DataFrame) -> list[Any]:
    """Rows as attribute-access records (plain Python values, loosely typed like the frame)."""
    return [SimpleNamespace(**{str(k): v for k, v in r.items()}) for r in df.to_dict("records")]


def _pct(x: float) -> str:
    return "0%" if abs(x) < 0.005 else f"{x:+.0%}"


def in_sample_table(df: pd.DataFrame) -> str:
    """One row per built-in entry: error of prefill per prompt length and of TPOT per batch."""
    pre = sorted(df.loc[df["quantity"] == "prefill", "size"].unique())
    dec = sorted(df.loc[df["quantity"] == "tpot", "size"].unique())
    head = (["model", "GPU", "GPUs"] + [f"prefill {p}" for p in pre]
            + [f"TPOT b={b}" for b in dec])
    lines = ["| " + " | ".join(head) + " |", "|---|---|--:|" + "--:|" * (len(pre) + len(dec))]
    for (model, gpu, n), g in df.groupby(["model", "gpu", "gpus"], sort=False):
        err = {(r.quantity, r.size): r.error for r in _records(g)}
        cells = [str(model), str(gpu), str(n)]
        cells += [_pct(err[("prefill", p)]) if ("prefill", p) in err else "–" for p in pre]
        cells += [_pct(err[("tpot", b)]) if ("tpot", b) in err else "–" for b in dec]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_table(df: pd.DataFrame) -> str:
    """Every out-of-sample point: predicted and measured GPU time and the relative error."""
    lines = ["| check | GPUs | quantity | size | context | predicted ms | measured ms | error |",
             "|---|--:|---|--:|--:|--:|--:|--:|"]
    for r in _records(df):
        size = f"p={r.size}" if r.quantity == "prefill" else f"b={r.size}"
        lines.append(f"| {r.check} | {r.gpus} | {r.quantity} | {size} | {r.context} | "
                     f"{r.predicted_ms:.2f} | {r.measured_ms:.2f} | {_pct(r.error)} |")
    return "\n".join(lines)


def summary_table(df: pd.DataFrame) -> str:
    """Per check and quantity: points, RMS, mean and largest absolute relative error."""
    s = fidelity.error_summary(df)
    lines = ["| check | quantity | points | RMS error | mean error | max abs error |",
             "|---|---|--:|--:|--:|--:|"]
    for r in _records(s):
        lines.append(f"| {r.check} | {r.quantity} | {r.points} | {r.rms:.1%} | "
                     f"{r.mean:+.1%} | {r.max_abs:.1%} |")
    return "\n".join(lines)


def by_size_table(df: pd.DataFrame) -> str:
    """In-sample error by prompt length / batch size across all entries: mean and max abs."""
    lines = ["| quantity | size | entries | mean error | max abs error |", "|---|--:|--:|--:|--:|"]
    for (q, size), g in df.groupby(["quantity", "size"], sort=True):
        lines.append(f"| {q} | {size} | {len(g)} | {g['error'].mean():+.1%} | "
                     f"{g['error'].abs().max():.1%} |")
    return "\n".join(lines)


def physics_table(data: Path) -> str:
    """Bandwidth implied by LLMServingSim's A6000 decode-attention times at 1024 context."""
    lines = ["| batch | implied KV read GB/s (A6000 peak: 768) |", "|--:|--:|"]
    for b in fidelity.BATCHES:
        lines.append(f"| {b} | {fidelity.implied_kv_bandwidth_gbps(data, b, 1024):,.0f} |")
    return "\n".join(lines)


def elementwise_table(data: Path) -> str:
    """The 8B/H100 decode gap next to the elementwise-kernel time of each source."""
    df = fidelity.elementwise_gap(data)
    lines = ["| batch | gap: measured − predicted ms | LLMServingSim norms+RoPE+act ms | "
             "Vidur norms+RoPE+act+add ms | difference of the two ms |", "|--:|--:|--:|--:|--:|"]
    for r in _records(df):
        lines.append(f"| {r.batch} | {r.gap_ms:.2f} | {r.lss_elementwise_ms:.2f} | "
                     f"{r.vidur_elementwise_ms:.2f} | "
                     f"{r.lss_elementwise_ms - r.vidur_elementwise_ms:.2f} |")
    return "\n".join(lines)


#: Profile perturbations of the impact table: label -> coefficient multipliers.
IMPACT = {
    "TPOT x0.85 (decode coefficients -15%)": {"decode": 0.85},
    "TPOT x1.15 (decode coefficients +15%)": {"decode": 1.15},
    "prefill x1.3 (prefill coefficients +30%)": {"prefill": 1.3},
}
IMPACT_SCENARIO = ROOT / "scenarios" / "quickstart.yaml"
IMPACT_SEEDS = (1, 2, 3)


def impact_table(workdir: Path) -> str:
    """Quickstart's cost and latency when the profile errs by the figures above (paired seeds)."""
    import yaml

    from sim.scenario import load_scenario
    from sim.sensitivity import sensitivity
    from sim.serving.profiles import COEFFICIENTS, get_profile

    scenario = load_scenario(IMPACT_SCENARIO)
    dep = scenario.deployment
    iwc = dep.initial_worker_config
    base = get_profile(dep.model, iwc.initial_workers_gpu, iwc.initial_workers_gpu_num,
                       engine=scenario.serving.engine)
    paths: dict[str, str] = {}
    for label, factors in IMPACT.items():
        coefs = {k: float(getattr(base, k)) for k in COEFFICIENTS}
        for k in coefs:
            group = "decode" if k.startswith("decode") else "prefill" if k.startswith(
                "prefill") else None
            coefs[k] *= factors.get(group or "", 1.0)
        path = workdir / f"impact-{len(paths)}.yaml"
        path.write_text(yaml.safe_dump({**coefs, "source": label}), encoding="utf-8")
        paths[str(path)] = label
    df = sensitivity(scenario, seeds=IMPACT_SEEDS, switches={"serving.profile": list(paths)})
    lines = ["| profile | cost $/h | Δ cost | E2E p95 s | Δ E2E p95 | TTFT p95 s | Δ TTFT p95 | "
             "SLO attainment | Δ SLO |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in _records(df):
        name = "shipped (baseline)" if r.switch == "baseline" else paths[r.value]

        def delta(stem: str, scale: float = 1.0, digits: int = 2, unit: str = "",
                  row: Any = r) -> str:
            d, lo, hi = (getattr(row, f"{stem}_diff{x}") * scale for x in ("", "_lo", "_hi"))
            if row.switch == "baseline":
                return "–"
            return f"{d:+.{digits}f} ± {(hi - lo) / 2:.{digits}f}{unit}"

        lines.append(f"| {name} | {r.cost_per_hour_usd:.2f} | {delta('cost_per_hour_usd')} | "
                     f"{r.e2e_p95_s:.1f} | {delta('e2e_p95_s', digits=1)} | {r.ttft_p95_s:.1f} | "
                     f"{delta('ttft_p95_s', digits=1)} | {r.slo_attainment:.1%} | "
                     f"{delta('slo_attainment', 100, 1, ' pp')} |")
    return "\n".join(lines)


def render(data: Path, *, simulate: bool = True) -> dict[str, str]:
    """Every generated block of the doc, by name (``simulate=False`` skips the impact runs)."""
    import tempfile

    ins = fidelity.in_sample(data)
    oos = fidelity.out_of_sample(data)
    blocks: dict[str, Callable[[], str]] = {
        "in-sample": lambda: in_sample_table(ins),
        "in-sample-by-size": lambda: by_size_table(ins),
        "summary": lambda: summary_table(pd.concat([ins, oos], ignore_index=True)),
        "out-of-sample": lambda: detail_table(oos),
        "h100-elementwise": lambda: elementwise_table(data),
        "a6000-physics": lambda: physics_table(data),
    }
    out = {name: make() for name, make in blocks.items()}
    if simulate:
        with tempfile.TemporaryDirectory() as tmp:
            out["impact"] = impact_table(Path(tmp))
    return out


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    """A re.sub callback that keeps a block's markers and puts ``body`` between them."""

    def repl(m: re.Match[str]) -> str:
        return f"{m.group(1)}{body}\n{m.group(2)}"

    return repl


def rewrite(text: str, blocks: dict[str, str]) -> str:
    """The doc text with each generated block replaced; error if a block's markers are missing."""
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- BEGIN generated:{re.escape(name)} -->\n).*?"
                             rf"(<!-- END generated:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"docs/fidelity.md has no generated:{name} block")
        text = pattern.sub(_replacer(body), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or, with --check, verify) the generated tables of docs/fidelity.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=fidelity.DEFAULT_DATA, help="shared data folder")
    ap.add_argument("--doc", type=Path, default=DOC, help="the markdown file to update")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the doc's tables differ from the data")
    args = ap.parse_args(argv)
    old = args.doc.read_text(encoding="utf-8")
    new = rewrite(old, render(args.data))
    if args.check:
        print("docs/fidelity.md tables are current" if new == old
              else f"{args.doc} tables differ from the data: rerun scripts/fidelity_table.py")
        return 0 if new == old else 1
    args.doc.write_text(new, encoding="utf-8")
    print(f"updated {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
