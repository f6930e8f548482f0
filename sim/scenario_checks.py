"""Checks of a scenario that need more than its schema: the model and GPU catalogs, the
updates applied in turn, on-prem node ids, the policy built from its parameters.

:func:`validate_scenario` is a separate step from loading (construction never does it as a
side effect); the CLI and ``simulate`` call it before running.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

from sim.api.schema import CreateBody, apply_update
from sim.errors import ConfigError, SimError

if TYPE_CHECKING:
    from sim.scenario import Scenario
    from sim.serving.architectures import ModelSpec


def check_updates(scenario: Scenario, *, source: str | None = None) -> list[CreateBody]:
    """The deployment after each scheduled update; ConfigError naming the update if one is invalid."""
    states: list[CreateBody] = []
    current = scenario.deployment
    for i, update in enumerate(scenario.updates):
        try:
            current = apply_update(current, update.body)
        except ConfigError as exc:
            # apply_update names the field inside the body; place it in the scenario.
            raise ConfigError(
                f"after the update at_s={update.at_s}: {exc.detail}",
                source=source,
                field=f"updates.{i}.body.{exc.field}" if exc.field else f"updates.{i}.body",
            ) from None
        states.append(current)
    return states


def _check_shape(
    spec: Any, gpu: str, gpus: int, utilization: float, field: str, source: str | None
) -> int:
    """Check ``gpus`` x ``gpu`` holds the model (0 = the smallest count that does); the count used."""
    from sim.serving.models import memory_shortfall_gb, min_gpus_to_fit

    try:
        fit: int | None = int(min_gpus_to_fit(spec, gpu, utilization=utilization))
        why = ""
    except SimError as exc:
        fit, why = None, str(exc)
    if gpus == 0:
        if fit is None:
            raise ConfigError(
                f"no count of {gpu} holds the model: {why}", source=source, field=field
            )
        return fit
    short = memory_shortfall_gb(spec, gpu, gpus, utilization=utilization)
    if short > 0:
        hint = f"; {fit} x {gpu} would fit" if fit is not None else f"; no count of {gpu} fits"
        raise ConfigError(
            f"{gpus} x {gpu} cannot hold {spec.name} ({spec.weights_gb:.1f} GB of weights) at "
            f"gpu_memory_utilization {utilization}: {short:.1f} GB missing{hint}",
            source=source,
            field=field,
        )
    return gpus


def _check_model_kind(scenario: Scenario, spec: Any, source: str | None, warnings: list[str]) -> None:
    """An encoder (embedding) model cannot serve ``inf_type: llm``; a decoder LLM as an
    embedding model is plausible (LLM-based embedders) but worth a warning."""
    dep = scenario.deployment
    model_name = dep.base_model or dep.model
    if spec is None:
        # Queueing service models skip the catalog; the body itself may still be inconsistent.
        try:
            from sim.serving.models import resolve_model

            spec = resolve_model(model_name)
        except (ImportError, SimError):
            return
    kind = getattr(spec, "kind", "decoder")
    if kind == "encoder" and dep.inf_type == "llm":
        raise ConfigError(
            f"{model_name} is an encoder (embedding) model: it cannot generate text, so "
            "inf_type 'llm' does not fit it; expected inf_type: embedding",
            source=source,
            field="deployment.inf_type",
        )
    if kind == "decoder" and dep.inf_type == "embedding":
        warnings.append(
            f"deployment.inf_type=embedding with {model_name}, a decoder LLM: simulated as an "
            "embedding model (prompt only, no decode), as LLM-based embedders are; set "
            "inf_type: llm if it should generate text"
        )


def tensor_parallel_problem(spec: ModelSpec, tp: int) -> str | None:
    """Why vLLM would refuse ``tp`` GPUs per worker for ``spec``, or None. vLLM's tensor
    parallelism splits the attention heads evenly over the GPUs (it checks
    ``num_attention_heads % tensor_parallel_size == 0`` at start-up)."""
    if tp <= 1 or spec.n_heads % tp == 0:
        return None
    fits = ", ".join(str(n) for n in (1, 2, 4, 8, 16) if spec.n_heads % n == 0)
    return (
        f"{tp} GPUs per worker do not divide {spec.name}'s {spec.n_heads} attention heads; "
        f"vLLM's tensor parallelism would refuse this shape (use {fits})"
    )


def validate_scenario(scenario: Scenario, *, source: str | None = None) -> list[str]:
    """Cross-field checks that need the model/GPU catalogs; returns warnings, raises ConfigError on errors."""
    source = source if source is not None else scenario.source
    warnings: list[str] = []
    dep = scenario.deployment
    util = scenario.serving.gpu_memory_utilization

    # Memory checks apply to the LLM/embedding service models; the queueing models need no model.
    spec: Any = None
    serving = scenario.serving
    if serving.profile == "vidur" and "engine" in serving.model_fields_set:
        warnings.append(
            f"serving.engine: {serving.engine} is not used with serving.profile: vidur (the "
            "Vidur-fitted profiles carry their own engine overheads); drop one of the two"
        )
    if scenario.serving_kind() in ("llm", "embedding"):
        # A fine-tune is sized and profiled as its base model (DESIGN.md §4).
        model_field = "deployment.base_model" if dep.base_model else "deployment.model"
        model_name = dep.base_model or dep.model
        try:
            from sim.serving.models import resolve_model
        except ImportError:
            warnings.append("sim.serving.models is not available: worker shapes were not checked")
        else:
            cfg = scenario.serving.model_config_json
            try:
                spec = resolve_model(model_name, scenario.resolve_path(cfg) if cfg else None)
            except SimError as exc:
                if cfg:
                    raise ConfigError(str(exc), source=source,
                                      field="serving.model_config") from None
                if scenario.serving.profile in ("builtin", "vidur"):
                    raise ConfigError(str(exc), source=source, field=model_field) from None
                # A user profile may describe a model the built-in catalog does not know.
                warnings.append(f"{model_field}: {exc}; worker shapes were not checked")
    models_ok = spec is not None
    _check_model_kind(scenario, spec, source, warnings)

    iwc = dep.initial_worker_config
    if models_ok and not iwc.instance_types:
        _check_shape(
            spec,
            iwc.initial_workers_gpu,
            iwc.initial_workers_gpu_num,
            util,
            "deployment.initial_worker_config.initial_workers_gpu_num",
            source,
        )
        problem = tensor_parallel_problem(spec, int(iwc.initial_workers_gpu_num))
        if problem:
            warnings.append(f"deployment.initial_worker_config.initial_workers_gpu_num: {problem}")
    for i, (update, current) in enumerate(
        zip(scenario.updates, check_updates(scenario, source=source), strict=True)
    ):
        patch = update.body.initial_worker_config
        shape_changed = patch is not None and (
            patch.initial_workers_gpu is not None or patch.initial_workers_gpu_num is not None
        )
        after = current.initial_worker_config
        if models_ok and shape_changed and not after.instance_types:
            _check_shape(
                spec,
                after.initial_workers_gpu,
                after.initial_workers_gpu_num,
                util,
                f"updates.{i}.body.initial_worker_config",
                source,
            )
        if after.min_workers > scenario.autoscaler.max_workers:
            raise ConfigError(
                f"min_workers ({after.min_workers}) exceeds autoscaler.max_workers "
                f"({scenario.autoscaler.max_workers})",
                source=source,
                field=f"updates.{i}.body.initial_worker_config.min_workers",
            )
        horizon = scenario.sim.horizon_s
        if horizon is not None and update.at_s >= horizon:
            warnings.append(
                f"updates.{i}: at_s={update.at_s} is at or after sim.horizon_s={horizon}; it never applies"
            )

    if iwc.min_workers > scenario.autoscaler.max_workers:
        raise ConfigError(
            f"min_workers ({iwc.min_workers}) exceeds autoscaler.max_workers ({scenario.autoscaler.max_workers})",
            source=source,
            field="deployment.initial_worker_config.min_workers",
        )
    if iwc.initial_workers_gpu_num > 8:
        warnings.append(
            f"deployment.initial_worker_config.initial_workers_gpu_num={iwc.initial_workers_gpu_num}: "
            "more than 8 GPUs per worker spans several machines"
        )

    # On-prem placement refers to fleet.on_prem_nodes by id.
    nodes = {n.id: n for n in scenario.fleet.on_prem_nodes}
    for j, node_id in enumerate(iwc.on_prem_node_ids):
        if node_id not in nodes:
            close = difflib.get_close_matches(node_id, list(nodes), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; known: {', '.join(nodes)}" if nodes else "; fleet.on_prem_nodes is empty")
            )
            raise ConfigError(
                f"unknown on-prem node {node_id!r}{hint}",
                source=source,
                field=f"deployment.initial_worker_config.on_prem_node_ids.{j}",
            )
    if iwc.use_on_prem and not iwc.on_prem_node_ids:
        warnings.append(
            "use_on_prem is true but on_prem_node_ids is empty: no on-prem GPUs are used"
        )
    if iwc.use_cloudburst and not iwc.use_on_prem:
        warnings.append("use_cloudburst has no effect without use_on_prem")
    if models_ok:
        from sim.serving.models import memory_shortfall_gb

        for node_id in iwc.on_prem_node_ids:
            node = nodes[node_id]
            try:
                short = memory_shortfall_gb(spec, node.gpu, node.gpus, utilization=util)
            except SimError:
                continue
            if short > 0:
                warnings.append(
                    f"on-prem node {node_id!r} ({node.gpus} x {node.gpu}) cannot hold the model"
                )

    kind = scenario.serving_kind()
    if kind in ("llm", "embedding") and kind != dep.inf_type:
        warnings.append(f"serving.kind={kind} with deployment.inf_type={dep.inf_type}")
    ac = dep.autoscaling_config
    if ac.time_window_sec < scenario.autoscaler.decision_interval_s:
        warnings.append(
            f"time_window_sec ({ac.time_window_sec}) is shorter than autoscaler.decision_interval_s "
            f"({scenario.autoscaler.decision_interval_s}): some requests are never seen by the autoscaler"
        )

    # The policy is built here rather than mid-run: an unknown name, a module:Attr that does
    # not import or is not a policy, and bad autoscaler.params all fail before the run.
    try:
        scalegen = importlib.import_module("sim.policies.scalegen")
    except ImportError:
        scalegen = None
    if scalegen is not None:
        scalegen.build_policy(dep, scenario.autoscaler, source=source)
    return warnings
