"""Where an exported create body comes from: a run, a sweep point, a tune result or a scenario.

:func:`load_source` reads any of them into one validated :class:`~sim.api.schema.CreateBody`
(``hf_token`` already the ``${HF_TOKEN}`` placeholder, see :mod:`sim.api.export`):

- a run folder (``sim run --out DIR``): the resolved scenario in ``DIR/summary.json`` (of
  the lowest ``seed-N/`` for a ``--seeds`` run);
- a tune result folder: ``DIR/best.json`` (a create body);
- a sweep folder or its ``sweep.parquet`` (one row per point and seed): the overrides that made
  the chosen point, read from the sweep's journal ``points.jsonl`` (exactly what was simulated:
  worker-shape knobs expanded, fractions resolved), set on the sweep's base scenario
  (``scenario.json`` beside the table, or ``scenario``). Without a journal the table's
  ``deployment.*`` columns are taken as literal values, with a warning;
- a scenario file, a ``summary.json``, or a create-body file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.api.export import (
    TOKEN_ENV,
    apply_scenario_overrides,
    deployment_body,
    with_placeholder,
)
from sim.api.schema import CreateBody
from sim.errors import ConfigError

__all__ = ["Exported", "load_source"]

#: Files of a sweep folder (written by ``sim sweep``).
SWEEP_TABLE = "sweep.parquet"
SWEEP_JOURNAL = "points.jsonl"
SWEEP_SCENARIOS = ("scenario.json", "scenario.yaml", "scenario.yml")


@dataclass(frozen=True)
class Exported:
    """A create body loaded from a source, with what was learned on the way.

    ``body`` is validated (``hf_token`` already the placeholder); ``source`` is the file the
    body's settings came from; ``origin`` says what kind of source it was (``run folder``,
    ``sweep point 3``, ...); ``warnings`` are the scenario's own warnings and notes about knobs
    the API does not carry.
    """

    body: CreateBody
    source: str
    origin: str
    warnings: tuple[str, ...] = field(default=())


def _read(path: Path, source: str) -> dict[str, Any]:
    from sim.io import read_yaml_or_json

    try:
        return read_yaml_or_json(path)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=exc.source or source, field=exc.field) from None


def _scenario_checks(data: Mapping[str, Any], source: str, base_dir: Path) -> list[str]:
    """Validate a whole scenario (model fits the GPU shape, ...); its warnings."""
    from sim.scenario import scenario_from_dict, validate_scenario

    scenario = scenario_from_dict(data, source=source, base_dir=base_dir)
    return validate_scenario(scenario, source=source)


def _label(value: Any) -> Any:
    """An index or point number as typed on the command line ("3") or given in Python (3)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _journal_overrides(journal: Path, point: Any) -> dict[str, Any] | None:
    """The overrides of ``point`` in a sweep journal (all seeds share them); None if absent."""
    with open(journal, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the torn last line of a killed sweep
            if isinstance(record, dict) and record.get("point") == point:
                overrides = record.get("overrides")
                if isinstance(overrides, dict):
                    return overrides
    return None


def _sweep_point(
    table: Path, row: Any, point: Any, scenario: str | Path | None
) -> tuple[dict[str, Any], dict[str, Any], Path, str, str, list[str]]:
    """(base data, overrides, base dir, base source, origin, warnings) of one sweep point."""
    import pandas as pd

    where = str(table)
    try:
        frame = pd.read_parquet(table)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ConfigError(f"cannot read the sweep table ({exc})", source=where) from None
    if (row is None) == (point is None):
        raise ConfigError(
            "a sweep holds many points: choose one with --point N (the sweep's point number) "
            "or --row INDEX (a row of the table)",
            source=where,
        )
    warnings: list[str] = []
    if row is not None:
        label = _label(row)
        if label not in frame.index:
            raise ConfigError(
                f"no row {row!r} (the table has {len(frame)} rows, "
                f"index {frame.index.min()}..{frame.index.max()})",
                source=where, field="--row",
            )
        rows = frame.loc[[label]]
        origin = f"sweep row {row}"
    else:
        if "point" not in frame.columns:
            raise ConfigError("the table has no 'point' column: choose a row with --row",
                              source=where, field="--point")
        label = _label(point)
        rows = frame[frame["point"] == label]
        if rows.empty:
            points = sorted(frame["point"].unique().tolist())
            shown = f"{points[0]}..{points[-1]}" if points else "none"
            raise ConfigError(f"no point {point!r} (points: {shown})", source=where, field="--point")
        origin = f"sweep point {point}"
    errors = (
        [e for e in rows["error"].tolist() if isinstance(e, str) and e]
        if "error" in frame.columns else []
    )
    if errors and len(errors) == len(rows):
        raise ConfigError(
            f"{origin} failed in the sweep ({errors[0]}): nothing was measured to export",
            source=where,
        )
    if errors:
        warnings.append(f"{origin} failed on {len(errors)} of {len(rows)} seeds ({errors[0]})")

    folder = table.parent
    the_point = rows["point"].iloc[0] if "point" in rows.columns else None
    overrides: dict[str, Any] | None = None
    if the_point is not None and (folder / SWEEP_JOURNAL).is_file():
        the_point = the_point.item() if hasattr(the_point, "item") else the_point
        overrides = _journal_overrides(folder / SWEEP_JOURNAL, the_point)
    if overrides is None:
        record = rows.iloc[0]
        overrides = {}
        for column in frame.columns:
            value = record[column]
            if not str(column).startswith("deployment.") or value is None:
                continue
            if isinstance(value, float) and value != value:
                continue  # a knob not sampled at this point
            overrides[str(column)] = value.item() if hasattr(value, "item") else value
        warnings.append(
            f"no {SWEEP_JOURNAL} with this point beside the table: its deployment.* columns are "
            "taken as literal values (knobs that are shapes or fractions would be wrong)"
        )

    if scenario is None:
        found = [folder / n for n in SWEEP_SCENARIOS if (folder / n).is_file()]
        if not found:
            raise ConfigError(
                "the sweep's base scenario was not found next to the table "
                f"({' or '.join(SWEEP_SCENARIOS)}): pass it with --scenario FILE",
                source=where,
            )
        scenario = found[0]
    base = Path(scenario)
    return _read(base, str(base)), overrides, base.parent, str(base), origin, warnings


def _folder(
    p: Path, row: Any, point: Any
) -> tuple[dict[str, Any], str, str] | Path:
    """(scenario data, origin, source) of a run or tune folder; or the sweep table of a sweep folder."""
    tables = sorted(p.glob("*.parquet"))
    if (p / "summary.json").is_file():
        summary = _read(p / "summary.json", str(p / "summary.json"))
        data = summary.get("scenario") or {}
        if not isinstance(data, dict) or "deployment" not in data:
            raise ConfigError(
                "summary.json holds no resolved scenario (key 'scenario.deployment')",
                source=str(p / "summary.json"),
            )
        return data, "run folder", str(p / "summary.json")
    if (p / "replications.json").is_file():
        # ``sim run --seeds`` replaces the run's summary.json by seed-N/ folders; every seed
        # simulated the same deployment, so the lowest seed's resolved scenario holds it.
        seeds = sorted(
            (int(d.name[5:]), d / "summary.json")
            for d in p.glob("seed-*")
            if d.name[5:].isdigit() and (d / "summary.json").is_file()
        )
        if seeds:
            return _folder(seeds[0][1].parent, row, point)
    if (p / "best.json").is_file():
        return {"deployment": _read(p / "best.json", str(p / "best.json"))}, "tune result", str(
            p / "best.json"
        )
    if (p / "tune.json").is_file():
        raise ConfigError(
            "this tune result has no best.json: no config met the constraints (see report.md)",
            source=str(p),
        )
    if (p / SWEEP_TABLE).is_file():
        return p / SWEEP_TABLE
    if len(tables) == 1 and (row is not None or point is not None):
        return tables[0]
    hint = (
        f"; it holds {len(tables)} tables: name one"
        if len(tables) > 1
        else ("; name the table to export a sweep point" if tables else "")
    )
    raise ConfigError(
        f"expected a run folder (summary.json), a tune result (best.json) or a sweep folder "
        f"({SWEEP_TABLE}){hint}",
        source=str(p),
    )


def load_source(
    path: str | Path,
    *,
    row: Any = None,
    point: Any = None,
    scenario: str | Path | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    override_source: str = "--set",
    token_env: str = TOKEN_ENV,
    check: bool = True,
) -> Exported:
    """The create body held by ``path`` (see the module docstring), after ``overrides``.

    ``overrides`` are dotted ``path=VALUE`` strings or a mapping, in scenario terms as
    ``--set`` takes them (errors blame ``override_source``). A sweep point is chosen by
    ``point`` (the sweep's point number) or ``row`` (an index of the table); a point that
    failed on every seed is an error. With ``check`` (default), a scenario is validated whole
    (the worker shape must hold the model, ...) and its warnings returned. Raises
    :class:`~sim.errors.ConfigError` naming the file and field on any bad input.
    """
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise ConfigError(
            "not found (expected a run or tune folder, a sweep, a scenario or a create body)",
            source=source,
        )
    warnings: list[str] = []
    knobs: dict[str, Any] = {}
    base_dir = p.parent
    found = _folder(p, row, point) if p.is_dir() else p
    if isinstance(found, tuple):
        data, origin, base_source = found
    elif found.suffix.lower() == ".parquet":
        data, knobs, base_dir, base_source, origin, notes = _sweep_point(found, row, point, scenario)
        warnings.extend(notes)
    else:
        base_source = source
        raw = _read(found, source)
        if "deployment" in raw:
            data, origin = raw, "scenario"
        elif isinstance(raw.get("scenario"), Mapping) and "deployment" in raw["scenario"]:
            data, origin = dict(raw["scenario"]), "run summary"
        elif "model" in raw:
            data, origin = {"deployment": raw}, "create body"
        else:
            raise ConfigError(
                "expected a scenario (with 'deployment'), a run summary or a create body "
                "(with 'model')",
                source=source,
            )
    if (row is not None or point is not None) and not origin.startswith("sweep"):
        raise ConfigError("--row and --point apply to a sweep only", source=source)

    if knobs:
        # The sweep's knobs belong to the sweep: their errors blame its table.
        data, _ = apply_scenario_overrides(data, knobs, str(found))
    merged, paths = apply_scenario_overrides(data, overrides, override_source)
    body = deployment_body(merged, paths, source=base_source, override_source=override_source)

    if check and "workload" in merged:
        warnings.extend(_scenario_checks(merged, base_source, base_dir))
    outside = [k for k in [*knobs, *paths] if not k.startswith("deployment.") and k != "deployment"]
    if outside:
        warnings.append(
            "not part of the API body (simulator settings only): " + ", ".join(outside)
        )
    if merged.get("updates"):
        warnings.append(
            "the scenario schedules updates: the export is the create body at t = 0 "
            "(export each update with --current)"
        )
    return Exported(
        body=with_placeholder(body, token_env),
        source=base_source,
        origin=origin,
        warnings=tuple(warnings),
    )
