"""``sim validate``: print the resolved scenario (or create body), or the error."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli.common import SET_SOURCE, print_warnings
from sim.errors import ConfigError


def _dry_build(scenario: Any, *, workload: bool = True) -> None:
    """Build what `sim run` builds before simulating, so `sim validate` fails where it would.

    The workload (trace files, bad rows), the fleet (catalog, serving profile, spot traces,
    cloud providers and instance types: the initial worker is placed, and a scale-up worker
    for the deployment and after each update), and the policy (via ``validate_scenario``).
    """
    from sim.fleet.model import FleetModel
    from sim.rng import Streams
    from sim.scenario import check_updates
    from sim.workload import build_workload

    seed = int(scenario.sim.seed)
    source = scenario.source
    try:
        if workload:
            from sim.estimate import check_limits, estimate_built, estimate_spec
            from sim.run import workload_span

            check_limits(estimate_spec(scenario))  # before the workload is allocated
            wl = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
            n = len(wl)
            span = float(wl.arrival_s[-1] - wl.arrival_s[0]) if n else 0.0
            print(f"workload: {n:,} requests over {span:,.0f} s", file=sys.stderr)
            est = estimate_built(scenario, n, workload_span(wl))
            print(f"estimate: {est.describe()}", file=sys.stderr)
            check_limits(est)
        fleet = FleetModel(scenario, Streams(seed))
        fleet.place(scenario.deployment, initial=True, on_demand_workers=0)
        for state in [scenario.deployment, *check_updates(scenario, source=source)]:
            fleet.place(state, initial=False, on_demand_workers=0, peek=True)
    except ConfigError as exc:
        if exc.source is not None or source is None:
            raise
        raise ConfigError(exc.detail, source=source, field=exc.field) from None


def cmd_validate(args: argparse.Namespace) -> int:
    """``sim validate``: print the resolved scenario (or create body) or the error."""
    from sim.api.schema import parse_create
    from sim.io import read_yaml_or_json
    from sim.scenario import (
        apply_overrides,
        load_scenario,
        resolved_dict,
        scenario_from_dict,
        validate_scenario,
    )

    data = read_yaml_or_json(args.path)
    if "deployment" not in data and "model" in data:
        # A bare create body: validate it as the API would receive it. --set paths may be
        # written relative to the body or with the scenario's "deployment." prefix.
        sets = [x if x.startswith("deployment.") else f"deployment.{x}" for x in args.set or []]
        patched = apply_overrides({"deployment": data}, sets, source=SET_SOURCE)["deployment"]
        body = parse_create(patched, source=str(args.path))
        # The same catalog checks as a scenario (the worker shape must hold the model, the
        # clouds and instance types exist); the placeholder workload is never run.
        probe = {"kind": "poisson", "rate_per_s": 1, "requests": 1, "prompt_tokens": 1,
                 "output_tokens": 1}
        scenario = scenario_from_dict(
            {"deployment": patched, "workload": probe}, source=str(args.path),
            base_dir=Path(args.path).parent,
        )
        warnings = validate_scenario(scenario, source=str(args.path))
        _dry_build(scenario, workload=False)
        print_warnings(warnings)
        print(json.dumps(body.to_request(mask_token=True), indent=2))
        return 0
    scenario = load_scenario(args.path, list(args.set or []), override_source=SET_SOURCE)
    warnings = validate_scenario(scenario)
    _dry_build(scenario)
    print(json.dumps(resolved_dict(scenario), indent=2, default=str))
    print_warnings(warnings)
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    val = sub.add_parser("validate", help="print the resolved scenario or the error")
    val.add_argument("path", help="scenario YAML or create-request JSON")
    val.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field")
    val.set_defaults(func=cmd_validate)
