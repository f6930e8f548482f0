"""The ``sim`` command line: one module per subcommand, each with a ``register(subparsers)``.

Every bad input ends as one line on stderr naming the file, field or line, and exit status 2
— never a traceback. A new command is a new module here, added to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sim.cli import (
    bench,
    calibrate,
    compare,
    deploy,
    export,
    profile,
    run,
    sensitivity,
    sweep,
    trace,
    tune,
    validate,
)
from sim.cli.common import headline as _headline
from sim.errors import SimError

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "_headline", "build_parser", "main"]

EXIT_BAD_INPUT = 2

#: The subcommand modules, in the order ``sim --help`` lists them.
COMMANDS = (run, validate, compare, sweep, tune, export, deploy, profile, calibrate,
            sensitivity, trace, bench)


#: One example per command, shown at the end of its ``--help`` (a new command adds its own
#: here or passes ``epilog=`` to ``add_parser``; tests/test_first_hour.py checks every one).
EXAMPLES: dict[str, str] = {
    "run": "sim run scenarios/quickstart.yaml --set deployment.initial_worker_config.min_workers=3",
    "validate": "sim validate scenarios/quickstart.yaml --set sim.seed=2",
    "profile": "sim profile show meta-llama/Meta-Llama-3-8B A100 1",
    "profile show": "sim profile show meta-llama/Llama-2-70b A100-80GB 4 --batch 1,16,64",
    "profile list": "sim profile list",
    "sensitivity": "sim sensitivity scenarios/quickstart.yaml --seeds 1-3 --workers 2",
    "trace": "sim trace stats my_requests.csv --plot trace.png",
    "trace stats": "sim trace stats ../shared/data/azure_llm_2023/AzureLLMInferenceTrace_code.csv "
                   "--bin-s 300",
    "bench": "sim bench --suite smoke --workers 2",
    "calibrate": "sim calibrate burst-*.json --model meta-llama/Meta-Llama-3-8B --gpu H100 "
                 "--out my-h100.yaml",
    "compare": "sim compare scenarios/quickstart.yaml --vary "
               "deployment.autoscaling_config.scaling_up_timeout_sec=60,600 --seeds 1-5",
    "sweep": "sim sweep scenarios/quickstart.yaml --grid grid.yaml --workers 2",
    "tune": "sim tune scenarios/quickstart.yaml --trials 40 --constraint 'ttft_s.p95<=2'",
    "export": "sim export results/quickstart --format curl",
    "deploy": "sim deploy create results/quickstart --dry-run",
    "deploy create": "sim deploy create results/quickstart --base-url $SCALEGEN_API_URL",
    "deploy update": "sim deploy update INF_ID scenarios/quickstart.yaml --dry-run",
    "deploy get": "sim deploy get INF_ID",
    "deploy delete": "sim deploy delete INF_ID",
    "deploy serve": "sim deploy serve --port 8000",
}


def _polish(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give every subcommand a one-line description (its help) and its example, and list the
    trace formats wherever ``--trace-format`` is taken."""
    for action in parser._actions:
        if action.dest == "trace_format" and action.help and "azure" not in action.help:
            import typing

            from sim.workload.spec import TraceFormatName  # the spec only: no pandas for --help

            names = [n for n in typing.get_args(TraceFormatName) if n != "auto"]
            action.help = f"one of {', '.join(names)} (default: detected from the file)"
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        for name, child in action.choices.items():
            full = f"{path} {name}".strip()
            if not child.description and helps.get(name):
                text = str(helps[name])
                child.description = text[:1].upper() + text[1:] + "."
            if not child.epilog and full in EXAMPLES:
                child.epilog = f"example:\n  {EXAMPLES[full]}"
            child.formatter_class = argparse.RawDescriptionHelpFormatter
            _polish(child, full)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sim`` command."""
    from sim import __version__

    parser = argparse.ArgumentParser(
        prog="sim",
        description="Autoscaling policy simulator for GPU inference deployments "
        "(ScaleGenAI inference API semantics).",
        epilog="example:\n  sim run scenarios/quickstart.yaml\n\n"
        "sim COMMAND --help shows each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    _polish(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        # Ctrl-C, or SIGTERM while a pool runs (sim.executor): the pool and any Dask futures
        # are already cancelled; 130 for SIGINT, 143 for SIGTERM, as a shell reports them.
        # Notes say what became of the output folder ("... the previous result there is intact").
        from sim.executor import exit_code

        notes = "; ".join(getattr(exc, "__notes__", []) or [])
        print("interrupted" + (f": {notes}" if notes else ""), file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
