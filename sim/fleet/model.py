"""The world model of the fleet: where each new worker goes and what it costs, cold starts, spot.

Placement follows DESIGN §4: on-prem GPUs first when ``use_on_prem`` (cloud overflow only
with ``use_cloudburst``); in the cloud, the configured GPU shape for the initial fleet and,
with ``use_same_gpus_when_scaling``, for every scale-up — otherwise each new worker takes the
offer with the lowest price per unit of rated throughput at the SLO (any GPU type and count
that holds the model and meets the SLO for a lone request, in the allowed clouds, spot when
allowed; :meth:`FleetModel.rating`), and ``placements`` says why. Every random draw comes from its own named stream
(``cold_start``, ``preemption``), so one sub-model never shifts another's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import ConfigError
from sim.fleet.catalog import Catalog
from sim.fleet.offers import ChosenOffer, RankedOffers, cheapest_offer, ranked_offers, shape_offer
from sim.fleet.spot import HazardPreemption, SpotMarket, load_capacity_traces
from sim.hardware import canonical_gpu
from sim.rng import Streams

if TYPE_CHECKING:
    from sim.serving.models import ModelSpec
    from sim.serving.profiles import Profile


@dataclass(frozen=True)
class WorkerShape:
    """Where and on what one worker runs, and what it costs."""

    gpu: str
    gpus: int
    cloud: str
    region: str
    zone: str  # the on-prem node id for on-prem workers
    spot: bool
    on_prem: bool
    price_per_hour_usd: float
    profile: Profile | None  # None for the plain queueing service models
    weights_gb: float
    instance_type: str = ""
    on_demand_price_per_hour_usd: float = float("nan")  # the same shape on-demand
    awaiting_capacity: bool = False  # spot with no capacity free: wait or fall back


def _lognormal(rng: Any, median: float, sigma: float) -> float:
    if median <= 0:
        return 0.0
    if sigma <= 0:
        return float(median)
    return float(median * math.exp(sigma * rng.standard_normal()))


class FleetModel:
    """Places new workers, samples their cold starts and spot lifetimes, for one run."""

    def __init__(self, scenario: Any, streams: Streams) -> None:
        self.scenario = scenario
        self._cold_rng = streams.get("cold_start")
        self._preempt_rng = streams.get("preemption")
        self._catalog: Catalog | None = None
        self._shapes: dict[tuple[Any, ...], WorkerShape] = {}
        self.notes: list[str] = []  # pricing assumptions worth a warning in the run summary
        self._profiles: dict[tuple[str, int], Profile] = {}
        self._model: ModelSpec | None = None
        self._mix = (1000.0, 250.0)  # mean prompt / output tokens; the engine sets the workload's
        self._ratings: dict[tuple[str, int], tuple[float | None, str]] = {}
        self.placements: list[str] = []  # why heterogeneous scale-ups took the shape they did
        nodes = scenario.fleet.on_prem_nodes
        self._node_gpu = {n.id: canonical_gpu(n.gpu) for n in nodes}
        self._node_free = {n.id: int(n.gpus) for n in nodes}
        self._token_model = scenario.serving_kind() in ("llm", "embedding")
        pre = scenario.fleet.spot.preemption
        self.market: SpotMarket | None = None
        self.hazard: HazardPreemption | None = None
        if pre.kind == "hazard":
            self.hazard = HazardPreemption(pre.mean_time_to_preemption_s, self._preempt_rng)
        elif pre.kind == "trace":
            self.market = SpotMarket(
                load_capacity_traces(
                    [scenario.resolve_path(p) for p in (
                        pre.trace_path if isinstance(pre.trace_path, list) else [pre.trace_path]
                    )],
                    polarity=pre.polarity,
                    repeat=pre.repeat, time_scale=pre.time_scale,
                    binary_capacity=pre.binary_capacity,
                )
            )

    # -- catalog and model ------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        """The price catalog (built-in or ``fleet.catalog``), loaded on first use."""
        if self._catalog is None:
            sc = self.scenario
            ref = sc.fleet.catalog
            catalog = Catalog.load(ref if ref == "builtin" else sc.resolve_path(ref), base_dir=None)
            if sc.fleet.price_overrides:
                try:
                    catalog = catalog.with_overrides(sc.fleet.price_overrides)
                except ConfigError as exc:
                    raise ConfigError(
                        exc.detail, source=sc.source, field="fleet.price_overrides"
                    ) from None
            self._catalog = catalog
        return self._catalog

    def _spec(self, deployment: Any) -> ModelSpec:
        if self._model is None:
            from sim.serving.models import resolve_model

            cfg = self.scenario.serving.model_config_json
            self._model = resolve_model(deployment.base_model or deployment.model,
                                        self.scenario.resolve_path(cfg) if cfg else None)
        return self._model

    def _gpus_for(self, deployment: Any, gpu: str) -> int:
        gpus = int(deployment.initial_worker_config.initial_workers_gpu_num)
        if gpus == 0 and self._token_model:
            from sim.serving.models import min_gpus_to_fit

            return min_gpus_to_fit(
                self._spec(deployment), gpu, self.scenario.serving.gpu_memory_utilization
            )
        return max(gpus, 1)

    def _fits(self, deployment: Any) -> Any:
        if not self._token_model:
            return lambda gpu, gpus: True
        from sim.serving.models import memory_shortfall_gb

        spec, util = self._spec(deployment), self.scenario.serving.gpu_memory_utilization
        return lambda gpu, gpus: memory_shortfall_gb(spec, gpu, gpus, util) <= 0

    def _profile(self, deployment: Any, gpu: str, gpus: int) -> Profile | None:
        if not self._token_model:
            return None
        key = (gpu, gpus)
        if key not in self._profiles:
            from sim.serving.profiles import VIDUR, get_profile

            sv = self.scenario.serving
            builtin = sv.profile in ("builtin", VIDUR)
            path = None if builtin else str(self.scenario.resolve_path(sv.profile))
            spec = self._spec(deployment)
            prof = self._profiles[key] = get_profile(
                spec, gpu, gpus, gpu_memory_utilization=sv.gpu_memory_utilization, path=path,
                engine=VIDUR if sv.profile == VIDUR else sv.engine,
                batched_tokens=sv.max_num_batched_tokens, max_seqs=sv.max_batch,
            )
            if prof.scaled:
                self.notes.append(
                    f"no measured profile for {spec.name} on {gpus}x{gpu}: its performance is "
                    "scaled from the nearest measured GPU or model (docs/profiles.md); supply "
                    "serving.profile with your own measurements (sim calibrate) to remove this "
                    "error source"
                )
        return self._profiles[key]

    # -- the offer rule for heterogeneous scale-ups --------------------------------------------
    def set_request_mix(self, prompt_tokens: float, output_tokens: float) -> None:
        """The workload's mean prompt and output tokens, which rate offers at the SLO."""
        self._mix = (max(float(prompt_tokens), 1.0), max(float(output_tokens), 1.0))

    def rating(self, deployment: Any, gpu: str, gpus: int) -> tuple[float | None, str]:
        """(rated throughput at the SLO, why) of one ``gpus`` x ``gpu`` worker; None when a lone
        request already misses the SLO on it.

        With mean prompt P and output O tokens (the workload's), a lone request has
        TTFT1 = decode_base + prefill(P) and TPOT(b) = decode step of b sequences holding
        P + O/2 tokens each (:class:`~sim.serving.profiles.Profile`); E2E(b) = TTFT1 +
        (O - 1) TPOT(b). Feasible: the SLO metric of a lone request (b = 1) within the SLO
        threshold. Throughput: b* / TPOT(b*) output tokens/s, with b* the largest batch up to
        ``serving.max_batch`` and the KV room for P + O tokens per sequence whose TPOT (metric
        tpot) or E2E (metric e2e) still meets the threshold; for ttft and queue the batch is
        not latency-bound. Embeddings: requests/s = rated input tokens/s / P, feasible when
        one request's embedding time meets the threshold.
        """
        key = (gpu, gpus)
        if key in self._ratings:
            return self._ratings[key]
        prof = self._profile(deployment, gpu, gpus)
        sc = self.scenario
        metric, theta = sc.slo_metric(), float(sc.slo_threshold_s())
        p, o = self._mix
        max_batch = int(sc.serving.max_batch)
        out: tuple[float | None, str]
        if prof is None:
            out = (1.0, "")
        elif prof.decode_base_s <= 0 and prof.decode_per_seq_s <= 0:  # embedding profile
            one = prof.embed_s(int(p))
            if metric != "queue" and one > theta:
                out = (None, f"one request takes {one:.3g}s > {metric} SLO {theta:g}s")
            else:
                out = (prof.rated_tokens_per_s(max_batch) / p, "")
        else:
            ttft1 = prof.iteration_s(0, 0.0, [int(p)])
            ctx = p + o / 2

            def latency(b: int) -> float:
                if metric == "tpot":
                    return prof.tpot_s(b, ctx)
                if metric == "e2e":
                    return ttft1 + (o - 1) * prof.tpot_s(b, ctx)
                return ttft1 if metric == "ttft" else 0.0

            b_max = max(1, min(max_batch, int(prof.kv_capacity_tokens // (p + o))))
            if latency(1) > theta:
                out = (None, f"a lone request's {metric} is {latency(1):.3g}s > SLO {theta:g}s")
            else:
                b = b_max
                if metric in ("tpot", "e2e"):
                    lo, hi = 1, b_max  # latency grows with the batch: the largest b within it
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        if latency(mid) <= theta:
                            lo = mid
                        else:
                            hi = mid - 1
                    b = lo
                out = (b / prof.tpot_s(b, ctx), "")
        self._ratings[key] = out
        return out

    # -- placement ----------------------------------------------------------------------------
    def place(
        self,
        deployment: Any,
        *,
        initial: bool,
        on_demand_workers: int,
        peek: bool = False,
        spot_room: Any = None,
        allow_spot: bool = True,
    ) -> WorkerShape | None:
        """The shape of the next worker, or None when it cannot be placed (on-prem full and
        no cloudburst). ``peek`` leaves on-prem GPUs unclaimed (for price-cap checks).

        With trace-driven spot, ``spot_room`` is the set of zones with spot capacity to spare
        now: spot goes only there. A spot shape in a zone outside it (capacity exhausted
        everywhere) comes back with ``awaiting_capacity`` set, for the engine to wait for
        capacity or fall back to on-demand.
        """
        iwc = deployment.initial_worker_config
        if iwc.use_on_prem:
            shape = self._on_prem(deployment, claim=not peek)
            if shape is not None:
                return shape
            if not iwc.use_cloudburst:
                return None
        return self._cloud(
            deployment, initial=initial, on_demand_workers=on_demand_workers,
            spot_room=spot_room, allow_spot=allow_spot,
        )

    def release(self, shape: WorkerShape) -> None:
        """Give an on-prem worker's GPUs back to its node."""
        if shape.on_prem:
            self._node_free[shape.zone] += shape.gpus

    def placeable(self, deployment: Any) -> int:
        """How many more workers can be placed (unbounded unless on-prem only)."""
        iwc = deployment.initial_worker_config
        if not iwc.use_on_prem or iwc.use_cloudburst:
            return 1 << 30
        total = 0
        for node in self._nodes(deployment):
            total += self._node_free[node] // self._gpus_for(deployment, self._node_gpu[node])
        return total

    def _nodes(self, deployment: Any) -> list[str]:
        ids = list(deployment.initial_worker_config.on_prem_node_ids) or list(self._node_gpu)
        unknown = [i for i in ids if i not in self._node_gpu]
        if unknown:
            raise ConfigError(
                f"unknown on-prem node id(s) {unknown}; fleet.on_prem_nodes has "
                f"{sorted(self._node_gpu) or 'none'}",
                field="deployment.initial_worker_config.on_prem_node_ids",
            )
        return ids

    def _on_prem(self, deployment: Any, *, claim: bool) -> WorkerShape | None:
        for node in self._nodes(deployment):
            gpu = self._node_gpu[node]
            gpus = self._gpus_for(deployment, gpu)
            if self._node_free[node] < gpus or not self._fits(deployment)(gpu, gpus):
                continue
            if claim:
                self._node_free[node] -= gpus
            key = ("on_prem", node, gpus)
            if key not in self._shapes:
                self._shapes[key] = WorkerShape(
                    gpu=gpu, gpus=gpus, cloud="on-prem", region="", zone=node, spot=False,
                    on_prem=True,
                    price_per_hour_usd=gpus * float(self.scenario.fleet.on_prem_gpu_hour_usd),
                    profile=self._profile(deployment, gpu, gpus), weights_gb=self._weights(deployment),
                    instance_type=node,
                    on_demand_price_per_hour_usd=gpus * float(self.scenario.fleet.on_prem_gpu_hour_usd),
                )
            return self._shapes[key]
        return None

    def _weights(self, deployment: Any) -> float:
        return self._spec(deployment).weights_gb if self._token_model else 0.0

    def _cloud(
        self, deployment: Any, *, initial: bool, on_demand_workers: int,
        spot_room: Any = None, allow_spot: bool = True,
    ) -> WorkerShape:
        iwc = deployment.initial_worker_config
        sc = self.scenario
        clouds = tuple(deployment.cloud_providers)
        # SkyServe-style base: the first workers stay on-demand even when spot is allowed.
        spot = allow_spot and bool(deployment.allow_spot_instances) and (
            on_demand_workers >= int(sc.fleet.spot.on_demand_base)
        )
        exclude: frozenset[str] = frozenset()
        awaiting = False
        if spot and self.market is not None:
            # Spot only in traced zones with room; with none, wait for the cheapest traced zone.
            traced = set(self.market.zones)
            room = set(spot_room or ()) & traced
            pool = room or traced
            exclude = frozenset(
                o.zone for o in self.catalog.offers() if o.zone not in pool
            )
            awaiting = not room
            if not pool & {o.zone for o in self.catalog.offers(clouds=clouds or None)}:
                raise ConfigError(
                    f"no spot trace covers a zone the catalog offers in {list(clouds) or 'any cloud'}"
                    f" (traced zones: {sorted(traced)})",
                    field="fleet.spot.preemption.trace_path",
                )
        same_shape = initial or iwc.use_same_gpus_when_scaling or not self._token_model
        if iwc.instance_types:
            key: tuple[Any, ...] = ("types", tuple(iwc.instance_types), clouds, spot, exclude)
        elif same_shape:
            gpu = canonical_gpu(iwc.initial_workers_gpu)
            key = ("shape", gpu, self._gpus_for(deployment, gpu), clouds, spot, exclude)
        else:
            key = ("cheapest", clouds, spot, exclude)
        key = (*key, awaiting)
        if key in self._shapes:
            return self._shapes[key]
        chosen = self._offer(deployment, key, clouds, spot, exclude)
        o = chosen.offer
        base = chosen.derived_from
        if base is not None:
            note = (
                f"{o.gpus}x{o.gpu} in {o.cloud} is priced pro rata from {base.instance_type} "
                f"({base.gpus}x{base.gpu}): the catalog lists no {o.gpus}-GPU {o.gpu} instance "
                f"there; the real minimum rental may be the whole instance"
            )
            if note not in self.notes:
                self.notes.append(note)
        rule = self.scenario.fleet.spot.zone_price
        have = (
            sorted({x.zone for x in self.catalog.offers(clouds=clouds or None)
                    if x.gpu == o.gpu and x.spot_usd_per_h is not None})
            if spot and rule not in ("cheapest", "median") else [rule]
        )
        if rule not in have:
            raise ConfigError(
                f"zone {rule!r} sells no spot {o.gpu} in {list(clouds) or 'any cloud'}; zones "
                f"with a spot {o.gpu} price: {', '.join(have) or 'none'} (or cheapest | median)",
                source=sc.source, field="fleet.spot.zone_price",
            )
        if chosen.spot:
            self._note_spot_price(chosen)
        shape = WorkerShape(
            gpu=o.gpu, gpus=o.gpus, cloud=o.cloud, region=o.region, zone=o.zone,
            spot=chosen.spot, on_prem=False, price_per_hour_usd=float(chosen.usd_per_h),
            profile=self._profile(deployment, o.gpu, o.gpus), weights_gb=self._weights(deployment),
            instance_type=o.instance_type,
            on_demand_price_per_hour_usd=float(
                o.on_demand_usd_per_h if chosen.spot else chosen.usd_per_h
            ),
            awaiting_capacity=awaiting and chosen.spot,
        )
        self._shapes[key] = shape
        return shape

    def _note_spot_price(self, chosen: ChosenOffer) -> None:
        """State which zone and price sample a spot worker pays (console and report)."""
        o = chosen.offer
        base = chosen.derived_from or o
        zones = sorted(
            x.spot_usd_per_h for x in self.catalog.offers(clouds=[o.cloud])
            if x.instance_type == base.instance_type and x.spot_usd_per_h is not None
        )
        rule = self.scenario.fleet.spot.zone_price
        spread = ""
        if len(zones) > 1:
            mid = zones[(len(zones) - 1) // 2]
            spread = (f" of {len(zones)} zones listing {base.instance_type} spot at "
                      f"${zones[0]:.2f}-{zones[-1]:.2f}/h (median ${mid:.2f}/h)")
        if self.market is not None:
            spread += " (zones limited to the spot traces with capacity)"
        text = (f"spot price: {o.gpus}x{o.gpu} {o.instance_type} in {o.zone} at "
                f"${chosen.usd_per_h:.2f}/h (on-demand ${o.on_demand_usd_per_h:.2f}/h), the "
                f"{'cheapest zone' if rule == 'cheapest' else 'median zone' if rule == 'median' else 'chosen zone'}"
                f"{spread}; one price sample per zone from the catalog snapshot "
                f"({self.catalog.source}), no price history (fleet.spot.zone_price picks the rule)")
        if text not in self.placements:
            self.placements.append(text)

    def _explain(self, ranked: RankedOffers) -> None:
        """Say once why heterogeneous scale-ups take this offer (console and report)."""
        (best, rate), *rest = ranked.ranked
        unit = "request/s" if self.scenario.inf_type == "embedding" else "output token/s"
        sc = self.scenario

        def name(c: ChosenOffer) -> str:
            o = c.offer
            return f"{o.gpus}x{o.gpu} {o.cloud} {'spot' if c.spot else 'on-demand'}"

        def per_unit(c: ChosenOffer, r: float) -> str:
            return f"${c.usd_per_h:.2f}/h for {r:,.0f} {unit} = ${RankedOffers.cost_per_unit(c, r) * 1000:.3f}/h per 1k {unit}"

        if not ranked.slo_met:
            text = (f"use_same_gpus_when_scaling false: no offer meets the {sc.slo_metric()} SLO "
                    f"({sc.slo_threshold_s():g}s) alone; scale-ups take the cheapest per hour, {name(best)} "
                    f"(${best.usd_per_h:.2f}/h)")
        else:
            text = (f"use_same_gpus_when_scaling false: scale-ups take {name(best)}, the lowest price "
                    f"per rated throughput at the {sc.slo_metric()} SLO ({sc.slo_threshold_s():g}s): "
                    f"{per_unit(best, rate)}")
            other = next((c for c, _ in rest if c.offer.gpu != best.offer.gpu), None)
            if other is not None:
                r = next(r for c, r in rest if c is other)
                text += f"; next other GPU: {name(other)}, {per_unit(other, r)}"
        left_out = sorted({f"{o.gpus}x{o.gpu} ({why})" for o, why in ranked.infeasible})
        if left_out:
            text += f"; left out as a lone request misses the SLO: {', '.join(left_out[:4])}"
            if len(left_out) > 4:
                text += f" and {len(left_out) - 4} more"
        if text not in self.placements:
            self.placements.append(text)

    def _offer(
        self, deployment: Any, key: tuple[Any, ...], clouds: tuple[str, ...], spot: bool,
        exclude: frozenset[str],
    ) -> ChosenOffer:
        """The catalog offer for a placement key; catalog errors name the scenario's field."""
        iwc = deployment.initial_worker_config
        try:
            if key[0] == "types":
                return cheapest_offer(
                    self.catalog, fits=self._fits(deployment), clouds=clouds,
                    instance_types=tuple(iwc.instance_types), allow_spot=spot,
                    exclude_zones=exclude,
                )
            if key[0] == "shape":
                return shape_offer(
                    self.catalog, key[1], key[2], clouds=clouds, allow_spot=spot,
                    exclude_zones=exclude, spot_zone=self.scenario.fleet.spot.zone_price,
                )
            ranked = ranked_offers(
                self.catalog, fits=self._fits(deployment),
                rate=lambda gpu, gpus: self.rating(deployment, gpu, gpus), clouds=clouds,
                allow_spot=spot, exclude_zones=exclude,
                spot_zone=self.scenario.fleet.spot.zone_price,
            )
            self._explain(ranked)
            return ranked.ranked[0][0]
        except ConfigError as exc:
            field = {
                "types": "deployment.initial_worker_config.instance_types",
                "shape": "deployment.initial_worker_config.initial_workers_gpu",
            }.get(key[0], "deployment.cloud_providers")
            if "cloud" in exc.detail and clouds:
                field = "deployment.cloud_providers"
            raise ConfigError(
                f"{exc.detail} (catalog: {self.catalog.source})",
                source=self.scenario.source, field=field,
            ) from None

    # -- cold start -------------------------------------------------------------------------
    def cold_start(self, shape: WorkerShape, warm_pool: bool) -> tuple[float, float]:
        """(provisioning seconds, loading seconds) for a new worker of ``shape``.

        Loading = image pull + weight download (weights / bandwidth) + engine start. From the
        shared warm pool (``enable_speedup_shared``) each stage takes the warm-pool figures;
        on-prem GPUs need no VM, so they skip provisioning.
        """
        cs = self.scenario.fleet.cold_start
        st = cs.warm_pool if warm_pool else cs
        rng = self._cold_rng
        # Draw every stage even when unused, so one knob never shifts the other stages' draws.
        provision = _lognormal(rng, st.provision_s.median, st.provision_s.sigma)
        pull = _lognormal(rng, st.image_pull_s.median, st.image_pull_s.sigma)
        engine = _lognormal(rng, st.engine_start_s.median, st.engine_start_s.sigma)
        bw = st.weight_download_gb_per_s
        download = shape.weights_gb / bw if bw > 0 else 0.0
        adapter = _lognormal(rng, cs.adapter_load_s.median, cs.adapter_load_s.sigma)
        load = pull + download + engine
        if self.scenario.deployment.base_model and self._token_model:
            load += adapter  # a fine-tune: its base model's weights plus an adapter
        return (0.0 if shape.on_prem else provision), load

    # -- spot ------------------------------------------------------------------------------
    def time_to_preemption(self, shape: WorkerShape) -> float:
        """Seconds from VM start to the preemption notice (inf for on-demand or no preemption)."""
        if not shape.spot or self.hazard is None:
            return math.inf  # on-demand, no preemption, or kind: trace (capacity series)
        return self.hazard.sample()

    def notice_s(self, shape: WorkerShape) -> float:
        """Preemption notice period of the worker's cloud."""
        return float(self.scenario.fleet.spot.resolved_notice_s(shape.cloud))
