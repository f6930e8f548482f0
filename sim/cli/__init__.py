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
    deploy,
    export,
    profile,
    run,
    sensitivity,
    trace,
    validate,
)
from sim.cli.common import headline as _headline
from sim.errors import SimError

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "_headline", "build_parser", "main"]

EXIT_BAD_INPUT = 2

#: The subcommand modules, in the order ``sim --help`` lists them.
COMMANDS = (run, validate, profile, calibrate, sensitivity, trace, bench, export, deploy)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sim`` command."""
    parser = argparse.ArgumentParser(
        prog="sim",
        description="Autoscaling policy simulator for GPU inference deployments "
        "(ScaleGenAI inference API semantics).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
