"""File input and output: read YAML/JSON configs, write a run's results to a directory.

The engine and metrics never touch files; this module (and :mod:`sim.report`) does
(DESIGN §2). Secrets are masked again here before anything is written (defence in depth).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sim.errors import ConfigError
from sim.metrics.result import mask_secrets, to_jsonable

if TYPE_CHECKING:
    from sim.metrics.result import Result

__all__ = ["read_yaml_or_json", "result_json", "write_json", "write_result"]


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that rejects duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(
    loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml_or_json(path: str | Path) -> dict[str, Any]:
    """Read a mapping from a ``.json`` file, or from YAML for any other extension.

    Missing files, syntax errors (with their line), duplicate keys and non-mapping documents
    raise :class:`~sim.errors.ConfigError` naming the file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML or JSON file", source=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file ({exc})", source=str(p)) from None

    data: Any
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", source=f"{p}:{exc.lineno}"
            ) from None
    else:
        try:
            data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
            problem = exc.problem or "syntax error"
            context = f" {exc.context}" if exc.context else ""
            col = f" (column {mark.column + 1})" if mark is not None else ""
            raise ConfigError(f"invalid YAML: {problem}{context}{col}", source=where) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", source=str(p)) from None
    if data is None:
        raise ConfigError("file is empty, expected a mapping of settings", source=str(p))
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping at the top level, got {type(data).__name__}", source=str(p)
        )
    return data


def _finite(obj: Any) -> Any:
    # json.dumps writes NaN/Infinity, which is not JSON; every non-finite float becomes null.
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def result_json(summary: dict[str, Any]) -> str:
    """The summary as strict JSON text (indent 2, key order kept, NaN as null, secrets masked)."""
    clean = _finite(to_jsonable(mask_secrets(summary)))
    return json.dumps(clean, indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_json(obj: dict[str, Any], path: str | Path) -> Path:
    """Write a dict as strict JSON (NaN as null, secrets masked) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(result_json(obj), encoding="utf-8")
    return p


def write_result(result: Result, out_dir: str | Path) -> dict[str, Path]:
    """Write summary.json, requests/workers parquet, decisions/timeline/queue CSV; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / "summary.json",
        "requests": out / "requests.parquet",
        "workers": out / "workers.parquet",
        "decisions": out / "decisions.csv",
        "timeline": out / "timeline.csv",
        "queue": out / "queue.csv",
    }
    write_json(result.summary, paths["summary"])
    if result.summary.get("sim", {}).get("results") == "summary":
        del paths["requests"]  # sim.results: summary keeps no per-request table
    else:
        result.requests.to_parquet(paths["requests"], engine="pyarrow", index=False)
    result.workers.to_parquet(paths["workers"], engine="pyarrow", index=False)
    result.decisions.to_csv(paths["decisions"], index=False)
    result.timeline.to_csv(paths["timeline"], index=False)
    result.queue.to_csv(paths["queue"], index=False)
    return paths
