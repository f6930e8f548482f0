"""The world model of the fleet: worker shapes and their prices, cold starts, spot preemption.

Everything random here draws from its own named stream (``cold_start``, ``preemption``), so
a change in one sub-model never shifts another's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import ConfigError
from sim.fleet.gpus import canonical_gpu
from sim.rng import Streams

if TYPE_CHECKING:
    from sim.serving.profiles import Profile

@dataclass(frozen=True)
class WorkerShape:
    """Where and on what one worker runs, and what it costs."""

    gpu: str
    gpus: int
    cloud: str
    region: str
    zone: str
    spot: bool
    on_prem: bool
    price_per_hour_usd: float
    profile: Profile | None  # None for the plain queueing service models
    weights_gb: float


def _lognormal(rng: Any, median: float, sigma: float) -> float:
    if median <= 0:
        return 0.0
    if sigma <= 0:
        return float(median)
    return float(median * math.exp(sigma * rng.standard_normal()))


class FleetModel:
    """Resolves worker shapes, samples cold starts and spot lifetimes for one run."""

    def __init__(self, scenario: Any, streams: Streams) -> None:
        self.scenario = scenario
        self._cold_rng = streams.get("cold_start")
        self._preempt_rng = streams.get("preemption")
        self._shapes: dict[tuple[str, int, bool], WorkerShape] = {}

    # -- shapes -----------------------------------------------------------------------------
    def shape_for(self, deployment: Any) -> WorkerShape:
        """The shape a new worker of ``deployment`` gets (the configured GPU × count)."""
        iwc = deployment.initial_worker_config
        gpu = canonical_gpu(iwc.initial_workers_gpu)
        gpus = int(iwc.initial_workers_gpu_num)
        spot = bool(deployment.allow_spot_instances)
        key = (gpu, gpus, spot)
        if key not in self._shapes:
            self._shapes[key] = self._build_shape(deployment, gpu, gpus, spot)
        return self._shapes[key]

    def _build_shape(self, deployment: Any, gpu: str, gpus: int, spot: bool) -> WorkerShape:
        sc = self.scenario
        serving_kind = sc.serving_kind()
        profile: Profile | None = None
        weights_gb = 0.0
        if serving_kind in ("llm", "embedding"):
            from sim.serving.models import min_gpus_to_fit, resolve_model
            from sim.serving.profiles import get_profile

            model = resolve_model(deployment.base_model or deployment.model)
            if gpus == 0:
                gpus = min_gpus_to_fit(model, gpu, sc.serving.gpu_memory_utilization)
            path = None if sc.serving.profile == "builtin" else sc.serving.profile
            profile = get_profile(
                model, gpu, gpus, gpu_memory_utilization=sc.serving.gpu_memory_utilization,
                path=path,
            )
            weights_gb = model.weights_gb
        gpus = max(gpus, 1)
        price, is_spot = self._price(gpu, gpus, spot)
        return WorkerShape(
            gpu=gpu, gpus=gpus, cloud=sc.fleet.cloud, region=sc.fleet.region, zone="",
            spot=is_spot, on_prem=False, price_per_hour_usd=price, profile=profile,
            weights_gb=weights_gb,
        )

    def _price(self, gpu: str, gpus: int, spot: bool) -> tuple[float, bool]:
        from sim.fleet.catalog import Catalog

        sc = self.scenario
        catalog = Catalog.builtin() if sc.fleet.catalog == "builtin" else Catalog.from_path(
            sc.fleet.catalog
        )
        if spot:
            try:
                p = catalog.price_per_hour(gpu, gpus, cloud=sc.fleet.cloud, spot=True)
            except ConfigError:
                p = None
            if p is not None and math.isfinite(p):
                return float(p), True
        return float(catalog.price_per_hour(gpu, gpus, cloud=sc.fleet.cloud, spot=False)), False

    # -- cold start -------------------------------------------------------------------------
    def cold_start(self, shape: WorkerShape, warm_pool: bool) -> tuple[float, float]:
        """(provisioning seconds, loading seconds) for a new worker of ``shape``.

        Loading = image pull + weight download (weights / bandwidth) + engine start. From the
        shared warm pool (``enable_speedup_shared``) each stage takes the warm-pool figures.
        """
        cs = self.scenario.fleet.cold_start
        st = cs.warm_pool if warm_pool else cs
        rng = self._cold_rng
        provision = _lognormal(rng, st.provision_s.median, st.provision_s.sigma)
        pull = _lognormal(rng, st.image_pull_s.median, st.image_pull_s.sigma)
        engine = _lognormal(rng, st.engine_start_s.median, st.engine_start_s.sigma)
        bw = st.weight_download_gb_per_s
        download = shape.weights_gb / bw if bw > 0 else 0.0
        return provision, pull + download + engine

    # -- spot ------------------------------------------------------------------------------
    def time_to_preemption(self, shape: WorkerShape) -> float:
        """Seconds from VM start to the preemption notice (inf for on-demand or no preemption)."""
        pre = self.scenario.fleet.spot.preemption
        if not shape.spot or pre.kind == "none":
            return math.inf
        if pre.kind == "hazard":
            return float(self._preempt_rng.exponential(pre.mean_time_to_preemption_s))
        raise ConfigError(
            "trace-driven preemption is not implemented yet; use kind: hazard or none",
            field="fleet.spot.preemption.kind",
        )

    def notice_s(self, shape: WorkerShape) -> float:
        """Preemption notice period of the worker's cloud."""
        return float(self.scenario.fleet.spot.resolved_notice_s(shape.cloud))
