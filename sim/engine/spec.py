"""The scenario's ``gateway`` section: the queue in front of the workers."""

from __future__ import annotations

from pydantic import Field

from sim.section import Section


class GatewaySpec(Section):
    """The gateway in front of the workers."""

    request_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="A request waiting longer than this fails with reason timeout (s).",
    )
    network_rtt_s: float = Field(
        default=0.0,
        ge=0,
        description="Round trip added to requests served outside the gateway's cloud/region (s).",
    )
    admission_burst_s: float = Field(
        default=10.0,
        gt=0,
        description="With autoscaler.throughput_cap: admission, the token bucket holds this many "
        "seconds of max_throughput_rate (output tokens) as burst.",
    )
