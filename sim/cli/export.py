"""``sim export``: the exact create or update request of a run, sweep point, tune result or scenario."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli.common import SET_SOURCE, print_warnings, writing
from sim.errors import ConfigError

SOURCE_HELP = (
    "a run folder (sim run --out), a tune result folder (best.json), a sweep folder or table "
    "(with --point or --row), a scenario file or a create-body JSON"
)


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick the create body out of a source (shared with ``sim deploy``)."""
    parser.add_argument("--point", metavar="N", help="the sweep point to export (its number in sweep.md and the table)")
    parser.add_argument("--row", metavar="INDEX", help="or the row of the sweep table to export (its index)")
    parser.add_argument(
        "--scenario", metavar="FILE", help="base scenario of a sweep table (default: scenario.yaml/.json beside it)"
    )
    parser.add_argument(
        "--set", action="append", metavar="PATH=VALUE", default=[],
        help="override a setting by dotted path (deployment.autoscaling_config.time_window_sec=120); repeatable",
    )
    parser.add_argument(
        "--token-env", metavar="NAME", default="HF_TOKEN",
        help="environment variable that holds the HuggingFace token (written as ${NAME}; default HF_TOKEN)",
    )


def load_body(source: str, args: argparse.Namespace) -> Any:
    """The :class:`~sim.api.export.Exported` of ``source`` with the source options; warnings printed."""
    from sim.api.sources import load_source

    exported = load_source(
        source,
        row=args.row,
        point=args.point,
        scenario=args.scenario,
        overrides=list(args.set or []),
        override_source=SET_SOURCE,
        token_env=args.token_env,
    )
    print_warnings(exported.warnings)
    return exported


def update_plan(new: Any, current: Any, where: str, args: argparse.Namespace) -> Any:
    """The update from the ``current`` create body to ``new`` (an Exported); changes on stderr.

    ``where`` names the current body in errors (``--current FILE``, the server).
    """
    from sim.api.export import update_request

    try:
        plan = update_request(new.body, current, partial=args.partial)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=where, field=exc.field) from None
    print_warnings(plan.warnings)
    if not args.quiet:
        for name, before, after in plan.changes:
            print(f"change: {name}: {json.dumps(before)} -> {json.dumps(after)}", file=sys.stderr)
    return plan


def load_current(path: str, args: argparse.Namespace) -> Any:
    """The create body of the running deployment, from any export source."""
    from sim.api.sources import load_source

    return load_source(path, token_env=args.token_env, check=False).body


def _emit(text: str, out: str | None, quiet: bool, body: dict[str, Any] | None = None) -> None:
    """Print ``text``, or write it (``body`` as JSON, atomically) to ``out``."""
    if out is None:
        print(text)
        return
    from sim.api.export import write_body
    from sim.io import write_text_atomic

    path = Path(out)
    with writing(path):
        if body is not None:
            write_body(body, path)
        else:
            write_text_atomic(text + "\n", path)
    if not quiet:
        print(f"wrote {path}", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> int:
    """``sim export``: print or write the create body, the update body or a curl line."""
    from sim.api.export import create_request, curl_command

    if args.format == "update" and not args.current:
        raise ConfigError(
            "--format update needs the deployment as it runs now: --current FILE (a create "
            "body, scenario, run or tune folder)",
            source="sim export",
        )
    if args.partial and not args.current:
        raise ConfigError("--partial goes only with --current", source="sim export")
    if args.id and args.format != "curl":
        raise ConfigError("--id goes only with --format curl", source="sim export")
    new = load_body(args.source, args)
    if args.current:
        plan = update_plan(new, load_current(args.current, args), f"--current {args.current}", args)
        if args.format == "curl":
            if not args.id:
                raise ConfigError("a curl line of an update needs the deployment: --id INF_ID",
                                  source="sim export")
            _emit(curl_command("update", plan.body, inf_id=args.id, base_url=args.base_url),
                  args.out, args.quiet)
        else:
            _emit(json.dumps(plan.body, indent=2), args.out, args.quiet, plan.body)
        return 0
    body = create_request(new.body, token_env=args.token_env)
    if args.format == "curl":
        _emit(curl_command("create", body, base_url=args.base_url), args.out, args.quiet)
    else:
        _emit(json.dumps(body, indent=2), args.out, args.quiet, body)
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    p = sub.add_parser(
        "export",
        help="the exact API request (create body, update body or curl line) of a config",
        description="Print or write the exact POST /sg_inf/create body of a config, the PUT "
        "/sg_inf/{id} body that changes a running deployment into it (--current), or a curl "
        "line. Every body is validated by the API schema first; hf_token is written as a "
        "${HF_TOKEN} placeholder, never as its value.",
    )
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument(
        "--format", choices=("create", "update", "curl"), default=None,
        help="create body (default), update body (needs --current), or a curl line "
        "(of the update when --current is given)",
    )
    p.add_argument("--current", metavar="FILE",
                   help="the deployment as it runs now (create body, scenario, run or tune folder): "
                   "export the update body that changes only what differs")
    p.add_argument("--partial", action="store_true",
                   help="with --current: export the update even if fields it cannot change differ "
                   "(they are listed as warnings)")
    p.add_argument("--id", metavar="INF_ID", help="the deployment's id (curl line of an update)")
    p.add_argument("--base-url", metavar="URL",
                   help="API base URL for the curl line (default: $SCALEGEN_API_URL, expanded by the shell)")
    add_source_options(p)
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of printing")
    p.add_argument("-q", "--quiet", action="store_true", help="no notes on stderr")
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    # --format defaults to create, or to update when --current is given.
    if args.format is None:
        args.format = "update" if args.current else "create"
    if args.format == "create" and args.current:
        raise ConfigError("--current goes with --format update or curl", source="sim export")
    return cmd_export(args)
