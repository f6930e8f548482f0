"""Export a simulated or tuned configuration as the exact ScaleGenAI API request.

Three outputs, each validated by :mod:`sim.api.schema` before it is returned or written:

- the create body of ``POST /sg_inf/create`` (:func:`create_body`, :func:`create_request`);
- the update body of ``PUT /sg_inf/{id}`` against the deployment as it runs now
  (:func:`update_request`): only the fields that change, and ``imidiate_scale_down: true``
  (the vendor's spelling) when the new ``min_workers`` floor is lower than the current one;
- a ``curl`` line that sends either (:func:`curl_command`).

Where the create body comes from (a run folder, a sweep point, a tune result, a scenario) is
:mod:`sim.api.sources`.

``hf_token`` is never written: a body whose deployment has a token gets the placeholder
``${HF_TOKEN}`` (the variable name is configurable) and :mod:`sim.api.client` substitutes the
environment variable's value when it sends the request; the curl line splices ``"$HF_TOKEN"``
in the shell. Results and scenarios hold only the masked token anyway (DESIGN §4).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from sim.api.schema import (
    AutoscalingConfig,
    CreateBody,
    InitialWorkerConfig,
    apply_update,
    parse_create,
    parse_update,
)
from sim.errors import ConfigError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "TOKEN_ENV",
    "UpdatePlan",
    "create_body",
    "apply_scenario_overrides",
    "create_request",
    "deployment_body",
    "curl_command",
    "expand_placeholders",
    "placeholder",
    "update_request",
    "with_placeholder",
    "write_body",
]

#: Environment variable that holds the HuggingFace token the exported body refers to.
TOKEN_ENV = "HF_TOKEN"
#: Environment variable with the API's base URL (the vendor page names no host).
BASE_URL_ENV = "SCALEGEN_API_URL"
#: Environment variable with the API key.
API_KEY_ENV = "SCALEGEN_API_KEY"

#: What override and source errors blame when called from Python.
OVERRIDES_SOURCE = "overrides"

# The fields PUT /sg_inf/{id} can change; everything else needs a new deployment.
_UPDATABLE: tuple[tuple[str, type[BaseModel]], ...] = (
    ("initial_worker_config", InitialWorkerConfig),
    ("autoscaling_config", AutoscalingConfig),
)
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def placeholder(env: str = TOKEN_ENV) -> str:
    """The text written in place of a secret: ``${NAME}`` of the environment variable holding it."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError(
            f"expected an environment variable name (letters, digits, _), got {env!r}",
            source="--token-env",
        )
    return "${" + env + "}"


# --- create body ---------------------------------------------------------------------------------


def _split_path(item: str) -> tuple[str, str]:
    """``(dotted path, the rest including '=')`` of a ``path=VALUE`` override."""
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"expected dotted.path=VALUE, got {item!r}", source=OVERRIDES_SOURCE)
    path, eq, rest = item.partition("=")
    return path.strip(), eq + rest


def _scenario_path(path: str, top: set[str]) -> str:
    """A dotted path in scenario terms: body-relative paths (``autoscaling_config.x``) get ``deployment.``."""
    head = path.split(".", 1)[0]
    if head in top or head not in CreateBody.model_fields:
        return path
    return "deployment." + path


def _scenario_overrides(
    overrides: Sequence[str] | Mapping[str, Any],
) -> Sequence[str] | dict[str, Any]:
    """Overrides with every path in scenario terms (see :func:`create_body`)."""
    from sim.scenario import Scenario

    top = set(Scenario.model_fields)
    if isinstance(overrides, Mapping):
        return {_scenario_path(str(k), top): v for k, v in overrides.items()}
    if isinstance(overrides, str):
        overrides = [overrides]
    out = []
    for item in overrides:
        path, rest = _split_path(item)
        out.append(_scenario_path(path, top) + rest)
    return out


def _scenario_data(scenario: Any) -> dict[str, Any]:
    """A scenario-shaped mapping (``{"deployment": ..., ...}``) from any accepted input."""
    from sim.scenario import Scenario

    if isinstance(scenario, Scenario):
        return scenario.model_dump(mode="json")
    if isinstance(scenario, CreateBody):
        return {"deployment": scenario.model_dump(mode="json")}
    if isinstance(scenario, Mapping):
        if "deployment" in scenario:
            return dict(scenario)
        if "model" in scenario:
            return {"deployment": dict(scenario)}
        raise ConfigError(
            "expected a scenario (with 'deployment') or a create body (with 'model')",
            source=OVERRIDES_SOURCE,
        )
    raise TypeError(
        f"create_body() takes a Scenario, a CreateBody or a mapping, not {type(scenario).__name__}"
    )


def _override_paths(items: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """The dotted paths of overrides (strings ``path=VALUE`` or a mapping)."""
    if isinstance(items, Mapping):
        return [str(k) for k in items]
    return [_split_path(i)[0] for i in items]


def apply_scenario_overrides(
    data: Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any], override_source: str
) -> tuple[dict[str, Any], list[str]]:
    """(scenario-shaped ``data`` after ``overrides``, the overridden paths in scenario terms)."""
    from sim.scenario import apply_overrides

    items = _scenario_overrides(overrides)
    if not items:
        return dict(data), []
    return apply_overrides(data, items, source=override_source), _override_paths(items)


def deployment_body(
    data: Mapping[str, Any], paths: Sequence[str], *, source: str, override_source: str
) -> CreateBody:
    """The ``deployment`` of scenario-shaped ``data`` validated as a create body.

    Errors name the field in scenario terms and blame ``override_source`` when one of
    ``paths`` set it.
    """
    deployment = data.get("deployment")
    if not isinstance(deployment, Mapping):
        raise ConfigError("missing (required)", source=source, field="deployment")
    try:
        return parse_create(dict(deployment), source=source)
    except ConfigError as exc:
        field_ = f"deployment.{exc.field}" if exc.field else "deployment"
        blame = exc.source
        parent = field_.rsplit(".", 1)[0]
        # The override set this field, a section above it, or a sibling (a cross-field check).
        if any(
            field_ == p or field_.startswith(p + ".") or p.rsplit(".", 1)[0] == parent
            for p in paths
        ):
            blame = override_source
        raise ConfigError(exc.detail, source=blame, field=field_) from None


def with_placeholder(body: CreateBody, token_env: str) -> CreateBody:
    """The body with any ``hf_token`` replaced by the ``${TOKEN_ENV}`` placeholder."""
    if body.hf_token is None or body.hf_token.get_secret_value() == "":
        return body
    if _PLACEHOLDER.match(body.hf_token.get_secret_value()):
        return body  # already a placeholder (e.g. a best.json being re-exported)
    return body.model_copy(update={"hf_token": SecretStr(placeholder(token_env))})


def create_request(body: CreateBody, *, token_env: str = TOKEN_ENV) -> dict[str, Any]:
    """The exact ``POST /sg_inf/create`` body as a JSON-able dict, re-validated by the schema.

    Every documented field is written with its value (defaults included); unset optional
    fields are left out; ``hf_token``, if any, is the placeholder ``${token_env}``.
    Raises :class:`~sim.errors.ConfigError` if the dict does not validate back to the same body
    (it always should: this guards the export against a schema change).
    """
    safe = with_placeholder(body, token_env)
    request = safe.to_request(mask_token=False)
    again = parse_create(request, source="export")
    if again.to_request(mask_token=False) != request:
        raise ConfigError("the exported body does not round-trip through the schema", source="export")
    return request


def create_body(
    scenario: Any,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    token_env: str = TOKEN_ENV,
) -> dict[str, Any]:
    """The create body (JSON-able dict) of ``scenario`` after dotted ``overrides``, validated.

    ``scenario`` is a :class:`~sim.scenario.Scenario`, a :class:`~sim.api.schema.CreateBody`,
    or a mapping (a scenario with ``deployment``, or a bare create body). ``overrides`` are
    ``["deployment.autoscaling_config.time_window_sec=120", ...]`` strings (values parsed as
    YAML) or a ``{dotted.path: value}`` mapping, in scenario terms as ``--set`` takes them;
    paths that start with a create-body field (``autoscaling_config.time_window_sec``) are read
    under ``deployment``. Paths outside ``deployment`` are checked but change nothing here
    (the API has no such field). ``hf_token`` becomes the placeholder ``${token_env}``.

    Raises :class:`~sim.errors.ConfigError` naming the field for an unknown path or a value
    the schema rejects (blaming ``overrides`` when an override caused it).
    """
    data = _scenario_data(scenario)
    source = getattr(scenario, "source", None) or "scenario"
    merged, paths = apply_scenario_overrides(data, overrides, OVERRIDES_SOURCE)
    body = deployment_body(merged, paths, source=str(source), override_source=OVERRIDES_SOURCE)
    return create_request(body, token_env=token_env)


# --- update body ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdatePlan:
    """An update body and what it changes.

    ``body`` is the exact ``PUT /sg_inf/{id}`` JSON-able dict; ``changes`` lists
    ``(dotted field, current, new)`` for every field it sets; ``not_updatable`` the fields that
    differ but that the update endpoint cannot change (a new deployment would be needed).
    """

    body: dict[str, Any]
    changes: tuple[tuple[str, Any, Any], ...]
    not_updatable: tuple[tuple[str, Any, Any], ...]

    @property
    def warnings(self) -> list[str]:
        """One line per difference the update cannot carry, and one if nothing changes."""
        lines = [
            f"{name} differs (current {json.dumps(cur)}, new {json.dumps(new)}) but PUT /sg_inf/{{id}} cannot "
            "change it: delete and re-create the deployment to apply it"
            for name, cur, new in self.not_updatable
        ]
        if not self.changes:
            lines.append("nothing to update: the worker and autoscaling configs are unchanged")
        return lines


def _comparable(body: CreateBody) -> dict[str, Any]:
    """A create body as plain data for comparison; ``hf_token`` only by presence."""
    data = body.model_dump(mode="json")
    data["hf_token"] = body.hf_token is not None
    return data


def update_request(new: CreateBody, current: CreateBody, *, partial: bool = False) -> UpdatePlan:
    """The ``PUT /sg_inf/{id}`` body that turns the ``current`` deployment into ``new``.

    Only the worker- and autoscaling-config fields that differ are written (field by field);
    ``imidiate_scale_down`` is true exactly when the new ``min_workers`` is below the current
    one, so the surplus is drained at once rather than by the scale-down timer (DESIGN §4).
    The body is validated by the schema and checked to reproduce ``new``'s configs when
    applied to ``current`` (:func:`~sim.api.schema.apply_update`).

    Other fields (model, spot, clouds, caps, ...) cannot be changed by an update: if any
    differ, :class:`~sim.errors.ConfigError` names the first unless ``partial`` is true, in
    which case they are listed in :attr:`UpdatePlan.not_updatable`.
    """
    body: dict[str, Any] = {}
    changes: list[tuple[str, Any, Any]] = []
    for name, _ in _UPDATABLE:
        cur = getattr(current, name).model_dump(mode="json")
        nxt = getattr(new, name).model_dump(mode="json")
        diff = {k: v for k, v in nxt.items() if cur.get(k) != v}
        if diff:
            body[name] = diff
            changes.extend((f"{name}.{k}", cur.get(k), v) for k, v in diff.items())
    body["imidiate_scale_down"] = (
        new.initial_worker_config.min_workers < current.initial_worker_config.min_workers
    )

    cur_all, new_all = _comparable(current), _comparable(new)
    fixed = [
        (k, cur_all.get(k), new_all.get(k))
        for k in CreateBody.model_fields
        if k not in dict(_UPDATABLE) and cur_all.get(k) != new_all.get(k)
    ]
    if fixed and not partial:
        name, cur_v, new_v = fixed[0]
        more = f" (and {', '.join(f[0] for f in fixed[1:])})" if len(fixed) > 1 else ""
        raise ConfigError(
            f"differs from the current deployment (current {json.dumps(cur_v)}, new "
            f"{json.dumps(new_v)}){more}, "
            "but PUT /sg_inf/{id} cannot change it: delete and re-create the deployment, or "
            "export the update anyway with --partial",
            source="--current",
            field=name,
        )

    update = parse_update(body, source="export")
    request = update.to_request()
    applied = apply_update(current, update)
    for name, _ in _UPDATABLE:
        if getattr(applied, name) != getattr(new, name):
            raise ConfigError(
                f"the update body does not reproduce the new {name}", source="export", field=name
            )
    return UpdatePlan(body=request, changes=tuple(changes), not_updatable=tuple(fixed))


# --- curl ----------------------------------------------------------------------------------------


def _shell_single(text: str) -> str:
    """``text`` in POSIX single quotes (a ``'`` becomes ``'\\''``)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _json_arg(body: Mapping[str, Any]) -> str:
    """The body as one shell word of compact JSON; ``${VAR}`` placeholders are left to the shell.

    ``{"hf_token":"${HF_TOKEN}"}`` becomes ``'{"hf_token":"'"$HF_TOKEN"'"}'``: single-quoted
    JSON with the variable spliced in double quotes.
    """
    text = json.dumps(body, separators=(",", ":"))
    pieces = re.split(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)
    words = []
    for i, piece in enumerate(pieces):
        if i % 2:
            words.append('"$' + piece + '"')
        elif piece or len(pieces) == 1:
            words.append(_shell_single(piece))
    return "".join(words)


def curl_command(
    kind: Literal["create", "update", "get", "delete"],
    body: Mapping[str, Any] | None = None,
    *,
    inf_id: str | None = None,
    base_url: str | None = None,
    auth_header: str = "Authorization",
) -> str:
    """A one-line ``curl`` command for one of the four endpoints.

    The URL is ``base_url`` if given, else ``$SCALEGEN_API_URL`` expanded by the shell; the key
    is always ``$SCALEGEN_API_KEY`` (never written out); ``${VAR}`` placeholders in the body
    (``hf_token``) become ``"$VAR"`` expanded by the shell. ``inf_id`` is required for
    update, get and delete. The vendor page documents only the ``Content-Type`` header; the
    key header is an assumption (``auth_header``: ``Authorization`` sends ``Bearer KEY``).
    """
    methods = {"create": "POST", "update": "PUT", "get": "GET", "delete": "DELETE"}
    if kind not in methods:
        raise ValueError(f"unknown request kind {kind!r}")
    if kind != "create" and not inf_id:
        raise ConfigError(f"an inference id is required for {kind}", field="inf_id")
    if kind in ("create", "update") and body is None:
        raise ValueError(f"a {kind} request needs a body")
    root = base_url.rstrip("/") if base_url else "${" + BASE_URL_ENV + "}"
    path = "/sg_inf/create" if kind == "create" else f"/sg_inf/{inf_id}"
    url = '"' + root.replace('"', '\\"') + path + '"' if not base_url else _shell_single(root + path)
    key = "$" + API_KEY_ENV
    auth = f"{auth_header}: Bearer {key}" if auth_header.lower() == "authorization" else f"{auth_header}: {key}"
    parts = [
        "curl",
        "--fail-with-body",
        "-X",
        methods[kind],
        url,
        "-H",
        _shell_single("Content-Type: application/json"),
        "-H",
        '"' + auth + '"',
    ]
    if body is not None and kind in ("create", "update"):
        parts += ["-d", _json_arg(body)]
    return " ".join(parts)


def expand_placeholders(
    body: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A copy of ``body`` whose ``hf_token: "${VAR}"`` placeholder holds the variable's value.

    Raises :class:`~sim.errors.ConfigError` naming the variable if it is unset or empty.
    """
    env = os.environ if environ is None else environ
    out = dict(body)
    token = out.get("hf_token")
    if isinstance(token, str):
        match = _PLACEHOLDER.match(token)
        if match:
            name = match.group(1)
            value = env.get(name, "")
            if not value:
                raise ConfigError(
                    f"the body's hf_token is the placeholder {token}, but the environment "
                    f"variable {name} is not set",
                    field="hf_token",
                )
            out["hf_token"] = value
    return out


# --- writing -------------------------------------------------------------------------------------


def write_body(body: Mapping[str, Any], path: str | Path) -> Path:
    """Write a request body as indented JSON, atomically (a temporary file renamed into place).

    The body must already be an export (``hf_token`` a placeholder): a literal token is refused.
    """
    token = body.get("hf_token")
    if isinstance(token, str) and not _PLACEHOLDER.match(token):
        raise ConfigError(
            "refusing to write a literal hf_token: export it as a ${VAR} placeholder",
            source=str(path),
            field="hf_token",
        )
    from sim.io import write_text_atomic

    return write_text_atomic(json.dumps(body, indent=2) + "\n", path)
