"""``--set dotted.path=VALUE`` overrides: parsed as YAML, checked against a schema, applied.

The schema is a pydantic model (the :class:`~sim.scenario.Scenario`); a path that names no
setting is an error suggesting the nearest key, so a typo never passes silently.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from sim.errors import ConfigError
from sim.schema_errors import expand_types, is_model, model_keys

#: Where override errors point by default (the Python API); the CLI passes "--set".
OVERRIDES_SOURCE = "overrides"


def _parse_override(text: str, source: str = OVERRIDES_SOURCE) -> tuple[str, Any]:
    """Split ``dotted.path=VALUE`` and parse VALUE as a YAML scalar or flow collection."""
    if not isinstance(text, str):
        raise ConfigError(f"expected dotted.path=VALUE, got {text!r}", source=source)
    if "=" not in text:
        raise ConfigError(f"expected dotted.path=VALUE, got {text!r}", source=source)
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path:
        raise ConfigError(f"empty path in {text!r}", source=source)
    from sim.io import loads_yaml  # the strict reading files get: duplicate keys, depth

    try:
        value = loads_yaml(raw, source) if raw.strip() else None
    except ConfigError as exc:
        problem = exc.detail.removeprefix("invalid YAML: ")
        raise ConfigError(
            f"cannot parse {raw!r:.80} as YAML ({problem})", source=source, field=path
        ) from None
    return path, value


def override_items(
    overrides: Sequence[str] | Mapping[str, Any], source: str = OVERRIDES_SOURCE
) -> list[tuple[str, Any]]:
    """Overrides as (dotted path, value) pairs; strings are parsed, mapping values are taken as is."""
    if isinstance(overrides, Mapping):
        return [(str(k), v) for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    return [_parse_override(item, source) for item in overrides]


def _check_override_path(
    schema: type[BaseModel],
    parts: list[str],
    data: Mapping[str, Any],
    source: str = OVERRIDES_SOURCE,
) -> list[list[Any]]:
    """Raise if ``parts`` names no setting of ``schema`` (suggesting the nearest one).

    Returns the schema types of each prefix of the path (``types[d]`` for ``parts[: d + 1]``).
    """
    current: list[Any] = [schema]
    node: Any = data
    found: list[list[Any]] = []
    for depth, part in enumerate(parts):
        elem: str | int = int(part) if part.isdigit() else part
        path, types_, _ = _override_step(current, elem, node)
        if path is None:
            keys = _keys_for(current, node)
            prefix = ".".join(parts[:depth])
            close = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
            if close:
                hint = f"; did you mean {'.'.join(filter(None, [prefix, close[0]]))!r}?"
            elif keys:
                hint = f"; valid keys here: {', '.join(keys)}"
            else:
                hint = f"; {prefix or 'the scenario'} has no sub-settings"
            raise ConfigError(f"no such setting{hint}", source=source, field=".".join(parts))
        current = types_
        found.append(types_)
        node = (
            node.get(part)
            if isinstance(node, Mapping)
            else (
                node[elem]
                if isinstance(node, list) and isinstance(elem, int) and elem < len(node)
                else None
            )
        )
    return found


def _is_list_only(types_: list[Any]) -> bool:
    """Whether a setting's schema types are sequences only (so ``path.N`` indexes a list)."""
    expanded = [tp for tp in expand_types(types_) if tp is not type(None)]
    return bool(expanded) and all(
        typing.get_origin(tp) in (list, tuple) for tp in expanded
    )


def _keys_for(types_: list[Any], node: Any) -> list[str]:
    """Valid keys at a level: the fields of the model the data selects (by ``kind``), else of all."""
    models = _expand_models(types_)
    if isinstance(node, Mapping) and len(models) > 1:
        for tag_field in ("kind", "dist"):
            tag = node.get(tag_field)
            chosen = [
                m
                for m in models
                if _literal_values(m, tag_field) and tag in _literal_values(m, tag_field)
            ]
            if chosen:
                return model_keys(chosen)
    return model_keys(models)


def _expand_models(types_: list[Any]) -> list[type[BaseModel]]:
    """The pydantic models among ``types_`` after unwrapping Annotated and unions."""
    return [tp for tp in expand_types(types_) if is_model(tp)]


def _literal_values(model: type[BaseModel], field: str) -> tuple[Any, ...]:
    """The allowed values of a Literal field (empty when the field is not a Literal)."""
    info = model.model_fields.get(field)
    if info is None:
        return ()
    args = typing.get_args(info.annotation)
    return args if typing.get_origin(info.annotation) is Literal else ()


def _override_step(
    types_: list[Any], elem: str | int, node: Any
) -> tuple[str | int | None, list[Any], bool]:
    """One step of an override path: (the element if valid else None, the types below it, free)."""
    expanded = expand_types(types_)
    if any(tp is Any for tp in expanded):
        return elem, [Any], True
    models = [tp for tp in expanded if is_model(tp)]
    if isinstance(elem, str):
        owners = [m for m in models if elem in m.model_fields]
        if owners:
            return elem, [m.model_fields[elem].annotation for m in owners], False
    if isinstance(elem, int):
        seqs = [tp for tp in expanded if typing.get_origin(tp) in (list, tuple)]
        if seqs:
            return elem, [typing.get_args(tp)[0] for tp in seqs], False
    maps = [tp for tp in expanded if typing.get_origin(tp) in (dict, Mapping)]
    if maps:
        return elem, [typing.get_args(tp)[1] for tp in maps], False
    return None, [], False


def apply_overrides(
    schema: type[BaseModel],
    data: Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any],
    *,
    source: str = OVERRIDES_SOURCE,
) -> dict[str, Any]:
    """A copy of ``data`` with each ``dotted.path=VALUE`` override set (VALUE parsed as YAML).

    Paths are checked against ``schema`` (the Scenario model), so a typo is an error naming the nearest
    valid key; missing intermediate sections are created; list items are addressed by index
    (``updates.0.at_s=60``). ``source`` is what errors blame: ``--set`` on the command line,
    ``overrides`` (the default) from Python.
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for path, value in override_items(overrides, source):
        parts = path.split(".")
        if any(not p for p in parts):
            raise ConfigError(f"malformed path {path!r}", source=source, field=path)
        types_at = _check_override_path(schema, parts, out, source)
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            here = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = int(part) if part.isdigit() else -1
                if not 0 <= index < len(node):
                    raise ConfigError(
                        f"no item {part} in {here.rsplit('.', 1)[0]} (it has {len(node)})",
                        source=source,
                        field=path,
                    )
                if not isinstance(node[index], dict):
                    node[index] = {}
                node = node[index]
            elif isinstance(node, dict):
                child = node.get(part)
                if child is None and _is_list_only(types_at[depth]):
                    # A missing list cannot be indexed: do not invent a mapping {"0": ...}.
                    raise ConfigError(
                        f"no item {parts[depth + 1]} in {here}: the scenario has no {here} "
                        f"(set the whole list, e.g. {here}=[...])",
                        source=source,
                        field=path,
                    )
                if child is None:
                    child = node[part] = {}
                elif not isinstance(child, dict | list):
                    raise ConfigError(
                        f"cannot set a sub-setting: {here} is {child!r}, not a mapping",
                        source=source,
                        field=path,
                    )
                node = child
        last = parts[-1]
        if isinstance(node, list):
            index = int(last) if last.isdigit() else -1
            if not 0 <= index < len(node):
                raise ConfigError(
                    f"no item {last} (the list has {len(node)})", source=source, field=path
                )
            node[index] = value
        else:
            node[last] = value
    return out


# --- loading --------------------------------------------------------------------------------------
