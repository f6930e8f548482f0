"""Synthetic arrival processes, vectorised with numpy, registered in ``GENERATORS`` by kind.

Every generator draws arrival times from the "arrivals" stream and token counts from the
"prompt_tokens" / "output_tokens" streams of the :class:`StreamSource` it is given, so a change
to the length model never moves the arrival times (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sim.errors import ConfigError, TraceError
from sim.registry import Registry
from sim.workload.spec import (
    DiurnalWorkload,
    GammaWorkload,
    MMPPWorkload,
    PoissonWorkload,
    ServeGenWorkload,
    SpikeWorkload,
    StepWorkload,
)
from sim.workload.tokens import resolve_path, sample_tokens
from sim.workload.traces import read_token_pairs
from sim.workload.workload import Workload

WEEK_S = 7 * 86400.0


class StreamSource(Protocol):
    """Anything that hands out a named numpy Generator (``sim.rng.Streams`` or a sub-stream view)."""

    def get(self, name: str) -> np.random.Generator:
        """The generator of stream ``name``."""
        ...


@dataclass(frozen=True)
class SubStreams:
    """A view of ``parent`` whose stream names carry a prefix, so composite parts draw independently."""

    parent: StreamSource
    prefix: str

    def get(self, name: str) -> np.random.Generator:
        """The parent's stream ``prefix/name``."""
        return self.parent.get(f"{self.prefix}/{name}")


Generator = Callable[[Any, StreamSource, Path], Workload]
GENERATORS: Registry[Generator] = Registry("workload generator")


# --- arrival-time primitives ------------------------------------------------------------------


#: Draws per block when generating large workloads (bounds temporaries; same numbers as one draw).
BLOCK = 1 << 20


def poisson_arrivals(
    rate_per_s: float,
    rng: np.random.Generator,
    duration_s: float | None = None,
    requests: int | None = None,
) -> np.ndarray:
    """Sorted arrival times of a homogeneous Poisson process, over a duration or for a count."""
    if duration_s is not None:
        # Given the count, Poisson arrival times are i.i.d. uniform on the interval: exact and
        # fully vectorised (no loop over an unknown number of exponential gaps).
        n = int(rng.poisson(rate_per_s * duration_s))
        times = rng.uniform(0.0, duration_s, n)
        times.sort()  # in place: a 100M-candidate draw holds one array, not two
        return times
    if requests is None:
        raise ValueError("give duration_s or requests")
    return np.cumsum(rng.exponential(1.0 / rate_per_s, requests))


def piecewise_arrivals(
    starts: np.ndarray, ends: np.ndarray, rates: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sorted Poisson arrivals on intervals [start, end) at constant rates (overlaps superpose)."""
    lengths = np.maximum(ends - starts, 0.0)
    counts = rng.poisson(rates * lengths)
    offsets = rng.random(int(counts.sum())) * np.repeat(lengths, counts)
    return np.sort(np.repeat(starts, counts) + offsets)


def renewal_arrivals(
    draw_gaps: Callable[[int], np.ndarray],
    mean_gap_s: float,
    first_s: float = 0.0,
    duration_s: float | None = None,
    requests: int | None = None,
) -> np.ndarray:
    """Arrivals of a renewal process with its first arrival at ``first_s``, over a duration or a count."""
    if requests is not None:
        return first_s + np.concatenate([[0.0], np.cumsum(draw_gaps(requests - 1))])
    if duration_s is None:
        raise ValueError("give duration_s or requests")
    chunks: list[np.ndarray] = [np.array([first_s])]
    t0 = first_s
    while t0 < duration_s:
        # Draw a little more than the expected remainder so one batch nearly always suffices.
        expected = (duration_s - t0) / mean_gap_s
        k = int(expected * 1.1 + 10.0 * math.sqrt(expected) + 16)
        chunk = t0 + np.cumsum(draw_gaps(k))
        chunks.append(chunk)
        t0 = float(chunk[-1])
    t = np.concatenate(chunks)
    return t[t < duration_s]


def diurnal_rate(
    t: np.ndarray, mean_rate_per_s: float, peak_to_trough: float, period_s: float, peak_at_s: float
) -> np.ndarray:
    """Rate m(1 + a cos(2π(t − peak)/P)) with a = (r − 1)/(r + 1), so peak/trough = r and the mean is m."""
    a = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    return mean_rate_per_s * (1.0 + a * np.cos(2.0 * np.pi * (t - peak_at_s) / period_s))


def thinned_arrivals(
    rate_fn: Callable[[np.ndarray], np.ndarray],
    rate_max: float,
    duration_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exact non-homogeneous Poisson arrivals on [0, duration_s) by thinning (Lewis–Shedler)."""
    candidates = poisson_arrivals(rate_max, rng, duration_s=duration_s)
    # In blocks, so the uniforms and the rate's temporaries never span the whole (possibly
    # 100M-candidate) array; numpy draws the same numbers in blocks as in one call.
    keep = np.empty(candidates.shape[0], dtype=bool)
    for i in range(0, candidates.shape[0], BLOCK):
        block = candidates[i : i + BLOCK]
        keep[i : i + BLOCK] = rng.random(block.shape[0]) * rate_max < rate_fn(block)
    return candidates[keep]


def with_tokens(
    arrival_s: np.ndarray, spec: Any, streams: StreamSource, base_dir: Path, source: str
) -> Workload:
    """Attach prompt/output token counts (from the spec's distributions or joint pairs) to ``arrival_s``."""
    n = int(arrival_s.shape[0])
    joint = getattr(spec, "joint_tokens", None)
    if joint is not None:
        columns = joint.columns.model_dump() if joint.columns is not None else None
        p, o = read_token_pairs(resolve_path(joint.path, base_dir), joint.format, columns)
        # One row index per request keeps each (prompt, output) pair together.
        idx = streams.get("prompt_tokens").integers(0, p.shape[0], n)
        prompt, output = np.maximum(p[idx], 1), o[idx]
    else:
        prompt = sample_tokens(
            spec.prompt_tokens, n, streams.get("prompt_tokens"), base_dir, minimum=1
        )
        output = sample_tokens(spec.output_tokens, n, streams.get("output_tokens"), base_dir)
    return Workload(arrival_s.astype(np.float64, copy=False), prompt, output, source=source)


# --- generators -------------------------------------------------------------------------------


@GENERATORS.register("poisson")
def poisson(spec: PoissonWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """Homogeneous Poisson arrivals; ``time_scale`` stretches the generated times afterwards."""
    t = poisson_arrivals(spec.rate_per_s, streams.get("arrivals"), spec.duration_s, spec.requests)
    if spec.time_scale != 1.0:
        t = t * spec.time_scale
    return with_tokens(t, spec, streams, base_dir, f"poisson(rate={spec.rate_per_s}/s)")


@GENERATORS.register("gamma")
def gamma(spec: GammaWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """A renewal process with Gamma gaps: shape 1/cv², mean 1/rate (cv > 1 is burstier than Poisson)."""
    rng = streams.get("arrivals")
    shape = 1.0 / (spec.cv * spec.cv)
    mean_gap = 1.0 / spec.rate_per_s

    def gaps(k: int) -> np.ndarray:
        return rng.gamma(shape, mean_gap / shape, k)

    # Stationary start: the first arrival is a uniform fraction of a length-biased gap
    # (Gamma with shape + 1), so the expected count over any window is exactly rate x length.
    first = rng.random() * rng.gamma(shape + 1.0, mean_gap / shape)
    t = renewal_arrivals(gaps, mean_gap, first, spec.duration_s, spec.requests)
    return with_tokens(t, spec, streams, base_dir, f"gamma(rate={spec.rate_per_s}/s, cv={spec.cv})")


@GENERATORS.register("diurnal")
def diurnal(spec: DiurnalWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """Non-homogeneous Poisson arrivals with a daily (and optional weekly) cosine cycle, by thinning."""
    a = (spec.peak_to_trough - 1.0) / (spec.peak_to_trough + 1.0)
    b = (spec.weekly_peak_to_trough - 1.0) / (spec.weekly_peak_to_trough + 1.0)

    def rate(t: np.ndarray) -> np.ndarray:
        daily = diurnal_rate(
            t, spec.mean_rate_per_s, spec.peak_to_trough, spec.period_s, spec.peak_at_s
        )
        if b == 0.0:
            return daily
        # The weekly factor has mean 1 over a week, so the mean rate stays m over whole weeks.
        return daily * (1.0 + b * np.cos(2.0 * np.pi * (t - spec.weekly_peak_at_s) / WEEK_S))

    rate_max = spec.mean_rate_per_s * (1.0 + a) * (1.0 + b)
    t = thinned_arrivals(rate, rate_max, spec.duration_s, streams.get("arrivals"))
    return with_tokens(
        t,
        spec,
        streams,
        base_dir,
        f"diurnal(mean={spec.mean_rate_per_s}/s, peak/trough={spec.peak_to_trough})",
    )


@GENERATORS.register("mmpp")
def mmpp(spec: MMPPWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """A 2-state Markov-modulated Poisson process, started in its stationary state distribution."""
    rng = streams.get("arrivals")
    rates = np.asarray(spec.rates_per_s, dtype=np.float64)
    sojourn = np.asarray(spec.mean_sojourn_s, dtype=np.float64)
    state0 = int(rng.random() < sojourn[1] / sojourn.sum())
    # Exponential sojourns are memoryless, so the first one needs no residual-time correction.
    chunks: list[np.ndarray] = []
    states: list[np.ndarray] = []
    t0, first = 0.0, state0
    while t0 < spec.duration_s:
        k = int(2.0 * (spec.duration_s - t0) / sojourn.sum()) + 16
        st = (first + np.arange(k)) % 2
        ends = t0 + np.cumsum(rng.exponential(sojourn[st]))
        chunks.append(ends)
        states.append(st)
        t0, first = float(ends[-1]), int(1 - st[-1])
    ends = np.concatenate(chunks)
    st = np.concatenate(states)
    starts = np.concatenate([[0.0], ends[:-1]])
    live = starts < spec.duration_s
    t = piecewise_arrivals(
        starts[live], np.minimum(ends[live], spec.duration_s), rates[st[live]], rng
    )
    return with_tokens(
        t, spec, streams, base_dir, f"mmpp(rates={spec.rates_per_s}, sojourn={spec.mean_sojourn_s})"
    )


@GENERATORS.register("step")
def step(spec: StepWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """Poisson arrivals whose rate changes at given times (0 before the first step)."""
    at = np.array([s.at_s for s in spec.steps], dtype=np.float64)
    rates = np.array([s.rate_per_s for s in spec.steps], dtype=np.float64)
    ends = np.minimum(np.append(at[1:], spec.duration_s), spec.duration_s)
    t = piecewise_arrivals(np.minimum(at, spec.duration_s), ends, rates, streams.get("arrivals"))
    return with_tokens(t, spec, streams, base_dir, f"step({len(spec.steps)} steps)")


@GENERATORS.register("spike")
def spike(spec: SpikeWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """A Poisson base rate plus spikes of extra Poisson traffic (a superposition, so overlaps add)."""
    starts, ends, rates = [0.0], [spec.duration_s], [spec.base_rate_per_s]
    for sp in spec.spikes:
        if sp.every_s is None:
            at = np.array([sp.at_s])
        else:
            at = np.arange(sp.at_s, spec.duration_s, sp.every_s)
        at = at[at < spec.duration_s]
        starts.extend(at.tolist())
        ends.extend(np.minimum(at + sp.duration_s, spec.duration_s).tolist())
        rates.extend([sp.rate_per_s] * at.shape[0])
    t = piecewise_arrivals(
        np.asarray(starts), np.asarray(ends), np.asarray(rates), streams.get("arrivals")
    )
    return with_tokens(
        t,
        spec,
        streams,
        base_dir,
        f"spike(base={spec.base_rate_per_s}/s, {len(spec.spikes)} spikes)",
    )


# --- ServeGen -----------------------------------------------------------------------------------

SERVEGEN_COLUMNS = ["window_start_s", "rate", "iat_cv", "dist", "p1", "p2"]


@dataclass(frozen=True)
class ServeGenSeries:
    """Per-client window series of a ServeGen folder: rates and fitted gap distributions."""

    window_start_s: np.ndarray  # (W,) window starts, seconds
    window_s: np.ndarray  # (W,) window lengths, seconds
    clients: tuple[int, ...]
    rate: np.ndarray  # (C, W) requests/s
    family: np.ndarray  # (C, W) 0 = exponential, 1 = Gamma, 2 = Weibull
    shape: np.ndarray  # (C, W) shape parameter of the fitted distribution

    @property
    def total_rate(self) -> np.ndarray:
        """Aggregate rate of the selected clients per window."""
        return self.rate.sum(axis=0)


def servegen_client_ids(folder: Path) -> list[int]:
    """Client ids (chunk numbers) of the ``chunk-<id>-trace.csv`` files in ``folder``."""
    ids = []
    for f in folder.glob("chunk-*-trace.csv"):
        middle = f.name[len("chunk-") : -len("-trace.csv")]
        if middle.isdigit():
            ids.append(int(middle))
    return sorted(ids)


def load_servegen(folder: Path, clients: str | int | tuple[int, ...] = "all") -> ServeGenSeries:
    """Read the rate series of the selected ServeGen clients (no header; 6 columns per window)."""
    if not folder.is_dir():
        raise ConfigError(f"ServeGen folder not found: {folder}", field="workload.path")
    available = servegen_client_ids(folder)
    if not available:
        raise ConfigError(f"no chunk-<id>-trace.csv files in {folder}", field="workload.path")
    if isinstance(clients, str):
        if clients != "all":
            raise ConfigError(
                f'clients must be "all", an id or a list, got {clients!r}', field="workload.clients"
            )
        chosen = available
    else:
        chosen = [clients] if isinstance(clients, int) else list(clients)
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise ConfigError(
                f"unknown ServeGen client ids {unknown}; {folder} has ids "
                f"{available[0]}..{available[-1]} ({len(available)} clients)",
                field="workload.clients",
            )
    frames = []
    for cid in chosen:
        path = folder / f"chunk-{cid}-trace.csv"
        try:
            df = pd.read_csv(path, header=None, names=SERVEGEN_COLUMNS, keep_default_na=False)
            frames.append(
                (
                    df["window_start_s"].to_numpy(np.float64),
                    pd.to_numeric(df["rate"]).to_numpy(np.float64),
                    df["dist"].astype(str).to_numpy(),
                    pd.to_numeric(df["p1"]).to_numpy(np.float64),
                )
            )
        except (ValueError, pd.errors.ParserError) as exc:
            raise TraceError(f"malformed ServeGen trace: {exc}", path=str(path)) from None
    starts = frames[0][0]
    if any(f[0].shape != starts.shape or not np.array_equal(f[0], starts) for f in frames):
        raise TraceError("ServeGen clients have different window starts", path=str(folder))
    if starts.shape[0] < 2:
        raise TraceError("ServeGen series needs at least two windows", path=str(folder))
    # The last window is as long as the one before it.
    window = np.diff(np.append(starts, starts[-1] + (starts[-1] - starts[-2])))
    fam = np.stack([np.select([f[2] == "Gamma", f[2] == "Weibull"], [1, 2], 0) for f in frames])
    shape = np.stack([f[3] for f in frames])
    bad_shape = ~(shape > 0) | ~np.isfinite(shape)
    fam = np.where(bad_shape, 0, fam)  # no usable fit: fall back to Poisson within the window
    return ServeGenSeries(
        window_start_s=starts,
        window_s=window,
        clients=tuple(chosen),
        rate=np.stack([f[1] for f in frames]),
        family=fam,
        shape=np.where(bad_shape, 1.0, shape),
    )


def _gap_scale(family: np.ndarray, shape: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Scale parameter giving each gap distribution the requested mean."""
    scale = mean.copy()
    gam = family == 1
    scale[gam] = mean[gam] / shape[gam]
    wei = family == 2
    if wei.any():
        # Weibull mean = scale * Γ(1 + 1/k).
        lgam = np.array([math.lgamma(1.0 + 1.0 / k) for k in shape[wei]])
        scale[wei] = mean[wei] / np.exp(lgam)
    return scale


def _draw_gaps(
    rng: np.random.Generator,
    family: np.ndarray,
    shape: np.ndarray,
    scale: np.ndarray,
    length_biased: bool = False,
) -> np.ndarray:
    """One gap per element with the element's family/shape/scale (vectorised over elements).

    ``length_biased`` draws from x f(x) / mean instead, the law of the gap that covers a random
    time point; a uniform fraction of it is the stationary time to the first arrival.
    """
    out = np.empty(family.shape[0], dtype=np.float64)
    expo, gam, wei = family == 0, family == 1, family == 2
    if length_biased:
        # Size-biasing adds one to a Gamma shape; for Weibull, (X/scale)^k becomes Gamma(1 + 1/k).
        out[expo] = rng.gamma(2.0, scale[expo])
        out[gam] = rng.gamma(shape[gam] + 1.0, scale[gam])
        k = shape[wei]
        out[wei] = scale[wei] * rng.gamma(1.0 + 1.0 / k) ** (1.0 / k)
    else:
        out[expo] = rng.exponential(scale[expo])
        out[gam] = rng.gamma(shape[gam], scale[gam])
        out[wei] = scale[wei] * rng.weibull(shape[wei])
    return out


def servegen_arrivals(
    series: ServeGenSeries,
    mean_rate_per_s: float,
    rng: np.random.Generator,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Arrivals window by window: per client, a stationary renewal process with the window's fitted gaps.

    The fitted shape sets the burstiness; the scale is chosen so each window's mean rate is
    its series rate times one factor that brings the overall mean to ``mean_rate_per_s``.
    Each window starts in the renewal process's stationary state, so its expected count is
    exactly rate x length.
    """
    w_start = series.window_start_s
    w_end = w_start + series.window_s
    end_s = float(w_end[-1]) if duration_s is None else start_s + duration_s
    if start_s >= w_end[-1]:
        raise ConfigError(
            f"start_s {start_s} is past the end of the series ({w_end[-1]:.0f} s)",
            field="workload.start_s",
        )
    lo = np.maximum(w_start, start_s)
    hi = np.minimum(w_end, end_s)
    length = np.maximum(hi - lo, 0.0)
    expected = float((series.rate * length).sum())
    if expected <= 0:
        raise ConfigError(
            "the selected ServeGen clients have no traffic in the window", field="workload"
        )
    factor = mean_rate_per_s * (end_s - start_s) / expected
    c_idx, w_idx = np.nonzero((series.rate > 0) & (length > 0)[None, :])
    mean_gap = 1.0 / (series.rate[c_idx, w_idx] * factor)
    fam = series.family[c_idx, w_idx]
    shp = series.shape[c_idx, w_idx]
    scl = _gap_scale(fam, shp, mean_gap)
    win_len = length[w_idx]
    # The first arrival comes a uniform fraction into a length-biased gap (the stationary
    # forward recurrence time); later gaps are ordinary draws.
    pos = rng.random(fam.shape[0]) * _draw_gaps(rng, fam, shp, scl, length_biased=True)
    first = pos < win_len
    out: list[np.ndarray] = [lo[w_idx[first]] - start_s + pos[first]]
    active = np.flatnonzero(first)
    for _ in range(10_000):
        if active.shape[0] == 0:
            break
        remaining = (win_len[active] - pos[active]) / mean_gap[active]
        k = np.ceil(remaining * 1.2 + 8).astype(np.int64)
        owner = np.repeat(active, k)
        csum = np.cumsum(_draw_gaps(rng, fam[owner], shp[owner], scl[owner]))
        seg_end = np.cumsum(k)
        seg_base = np.concatenate([[0.0], csum[seg_end[:-1] - 1]])
        t_rel = pos[owner] + csum - np.repeat(seg_base, k)
        ok = t_rel < win_len[owner]
        out.append(lo[w_idx[owner[ok]]] - start_s + t_rel[ok])
        pos[active] = t_rel[seg_end - 1]
        active = active[pos[active] < win_len[active]]
    return np.sort(np.concatenate(out)) if out else np.zeros(0)


@GENERATORS.register("servegen")
def servegen(spec: ServeGenWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """Arrivals following ServeGen client rate series and fitted gap distributions, scaled to a mean rate."""
    folder = resolve_path(spec.path, base_dir)
    series = load_servegen(folder, spec.clients)
    t = servegen_arrivals(
        series, spec.mean_rate_per_s, streams.get("arrivals"), spec.start_s, spec.duration_s
    )
    who = "all" if spec.clients == "all" else spec.clients
    return with_tokens(
        t,
        spec,
        streams,
        base_dir,
        f"servegen({folder.name}, clients={who}, mean={spec.mean_rate_per_s}/s)",
    )
