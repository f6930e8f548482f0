"""Pydantic validation errors turned into one :class:`~sim.errors.ConfigError`, and the schema
walking that needs: which fields a model has, what a dotted path names, the nearest valid key.

Shared by the API bodies (:mod:`sim.api.schema`), the scenario and ``--set`` overrides.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, SecretStr, ValidationError

from sim.errors import ConfigError

#: What a secret (``hf_token``) shows as in errors, results and exports.
MASK = "**********"

Loc = tuple[str | int, ...]


def expand_types(types_: Sequence[Any]) -> list[Any]:
    """Flatten Annotated/Union/Optional wrappers into the concrete types they allow."""
    out: list[Any] = []
    stack = list(types_)
    while stack:
        tp = stack.pop(0)
        origin = typing.get_origin(tp)
        if origin is Annotated:
            stack.insert(0, typing.get_args(tp)[0])
        elif origin is Union or origin is types.UnionType:
            stack[0:0] = list(typing.get_args(tp))
        elif tp is type(None):
            continue
        else:
            out.append(tp)
    return out


def is_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic model class."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_matches(model: type[BaseModel], tag: str) -> bool:
    """Whether ``tag`` is the value of one of the model's Literal fields (a discriminator)."""
    for field in model.model_fields.values():
        for tp in expand_types([field.annotation]):
            if typing.get_origin(tp) is Literal and tag in typing.get_args(tp):
                return True
    return False


def walk_schema(model: type[BaseModel], loc: Loc) -> tuple[list[str | int], list[Any], bool]:
    """Follow ``loc`` through the model's types: (path without union tags, types at the end, tags dropped).

    The types at the end are ``[Any]`` when the path leaves the typed part of the schema
    (``dict[str, Any]`` values and the like).
    """
    path: list[str | int] = []
    current: list[Any] = [model]
    dropped = False
    for elem in loc:
        expanded = expand_types(current)
        if any(tp is Any for tp in expanded):
            path.append(elem)
            continue
        models = [tp for tp in expanded if is_model(tp)]
        owners = [m for m in models if isinstance(elem, str) and elem in m.model_fields]
        seqs = [
            tp
            for tp in expanded
            if typing.get_origin(tp) in (list, tuple, Sequence) or tp in (list, tuple)
        ]
        maps = [tp for tp in expanded if typing.get_origin(tp) in (dict, Mapping) or tp is dict]
        if owners:
            path.append(elem)
            current = [m.model_fields[str(elem)].annotation for m in owners]
        elif isinstance(elem, int) and seqs:
            path.append(elem)
            current = [typing.get_args(tp)[0] if typing.get_args(tp) else Any for tp in seqs]
        elif isinstance(elem, str) and maps:
            path.append(elem)
            current = [typing.get_args(tp)[1] if typing.get_args(tp) else Any for tp in maps]
        elif isinstance(elem, str) and any(_tag_matches(m, elem) for m in models):
            # A discriminated union names the chosen member in the location; it is not a key.
            current = [m for m in models if _tag_matches(m, elem)]
            dropped = True
        else:
            # A union branch label such as 'int' or 'function-after[...]'.
            dropped = True
    return path, current, dropped


def model_keys(types_: Sequence[Any]) -> list[str]:
    """The field names of the pydantic models among ``types_`` (in declaration order, no repeats)."""
    keys: list[str] = []
    for tp in expand_types(types_):
        if is_model(tp):
            keys.extend(k for k in tp.model_fields if k not in keys)
    return keys


def dotted(path: Sequence[str | int]) -> str:
    """A location as the dotted path users type in ``--set`` (list indexes as numbers)."""
    return ".".join(str(p) for p in path)


def _short(value: object, limit: int = 60) -> str:
    """A compact repr of a user value for error messages."""
    if isinstance(value, SecretStr):
        return MASK
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def nearest_key_hint(key: str, valid: Sequence[str]) -> str:
    """'; did you mean X?' for the closest valid key, else the list of valid keys."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if valid:
        return f"; valid keys: {', '.join(valid)}"
    return ""


def describe_errors(
    exc: ValidationError, model: type[BaseModel], prefix: Sequence[str | int] = ()
) -> list[tuple[str, str]]:
    """Each error of ``exc`` as (dotted field path, message), de-duplicated."""
    found: list[tuple[str, str, bool]] = []  # path, message, came from a union branch
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "extra_forbidden" and loc:
            path, parent_types, dropped = walk_schema(model, loc[:-1])
            key = str(loc[-1])
            full = [*prefix, *path, key]
            message = "unknown key" + nearest_key_hint(key, model_keys(parent_types))
        else:
            path, _, dropped = walk_schema(model, loc)
            full = [*prefix, *path]
            msg = str(err.get("msg", "invalid value"))
            for lead in ("Value error, ", "Assertion failed, "):
                if msg.startswith(lead):
                    msg = msg[len(lead) :]
            ctx = err.get("ctx") or {}
            if kind in ("union_tag_invalid", "union_tag_not_found") and "discriminator" in ctx:
                # Name the tag field itself (workload.kind), not the whole union.
                tag_field = str(ctx["discriminator"]).strip("'\"")
                full.append(tag_field)
                expected = [
                    t.strip().strip("'\"") for t in str(ctx.get("expected_tags", "")).split(",")
                ]
                expected = [t for t in expected if t]
                if kind == "union_tag_not_found":
                    message = f"missing (required; one of {', '.join(expected)})"
                else:
                    tag = str(ctx.get("tag", ""))
                    close = difflib.get_close_matches(tag, expected, n=1, cutoff=0.6)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    message = (
                        f"unknown {tag_field} {tag!r}{hint} (expected one of {', '.join(expected)})"
                    )
            elif kind == "missing":
                message = "missing (required)"
            elif "input" in err and not isinstance(err["input"], dict | list | tuple):
                secret = bool(full) and full[-1] == "hf_token"
                given = MASK if secret else _short(err["input"])
                # Our own messages already quote the value; pydantic's say only what was expected.
                quoted = kind == "value_error" and ("got " in msg or given in msg)
                message = msg if quoted else f"{msg} (got {given})"
            else:
                message = msg
        found.append((dotted(full), message, dropped))
    # A union tries each branch; keep the branch that got furthest into the value.
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for where, message, dropped in found:
        deeper = any(other != where and other.startswith(where + ".") for other, _, _ in found)
        if (dropped and deeper) or where in seen:
            continue
        seen.add(where)
        kept.append((where, message))
    return kept


def config_error_from_validation(
    exc: ValidationError,
    *,
    model: type[BaseModel],
    source: str | None = None,
    prefix: Sequence[str | int] = (),
    source_for: Mapping[str, str] | None = None,
) -> ConfigError:
    """One :class:`ConfigError` naming the source, the first bad field (dotted) and every problem.

    ``source_for`` maps dotted paths (e.g. those set by ``--set``) to the source to blame
    instead of ``source`` when the first bad field lies at or under that path.
    """
    problems = describe_errors(exc, model, prefix)
    if not problems:
        return ConfigError(str(exc), source=source)
    first_path, first_msg = problems[0]
    blame = source
    for path, src in (source_for or {}).items():
        if first_path == path or first_path.startswith(path + "."):
            blame = src
    rest = [f"{p}: {m}" if p else m for p, m in problems[1:]]
    message = first_msg if not rest else first_msg + "; also " + "; ".join(rest)
    return ConfigError(message, source=blame, field=first_path or None)
