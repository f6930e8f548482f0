"""The first hour of a new user: version, help with examples, `sim profile list`, the
Quick start's two commands, scenarios that do not fail requests for their model's context,
and a quick start whose report says what to try. One test per kind."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import sim
from sim.cli import build_parser, main
from sim.rng import Streams
from sim.serving.models import max_context_tokens
from sim.workload import build_workload

REPO = Path(__file__).resolve().parents[1]


def _commands(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                full = f"{path} {name}".strip()
                out.append((full, child))
                out += _commands(child, full)
    return out


def test_version(capsys):
    """`sim --version` prints the package version."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sim {sim.__version__}"


def test_every_command_has_a_description_and_an_example():
    """Every subcommand's --help has a one-line description and ends with a runnable example."""
    commands = _commands(build_parser())
    assert {"run", "validate", "profile list", "trace stats"} <= {n for n, _ in commands}
    for name, parser in commands:
        text = parser.format_help()
        assert parser.description, f"sim {name}: no description"
        assert re.search(r"example:\n  sim ", text), (
            f"sim {name} --help shows no example: add one to EXAMPLES in sim/cli/__init__.py "
            "or pass epilog= to add_parser"
        )


def test_quiet_has_a_short_form_everywhere():
    """Every command that takes --quiet also takes -q."""
    for name, parser in _commands(build_parser()):
        opts = {o for a in parser._actions for o in a.option_strings}
        if "--quiet" in opts:
            assert "-q" in opts, f"sim {name}: --quiet without -q"


def test_trace_format_help_lists_the_formats():
    """--trace-format's help names every known format, wherever it is taken."""
    from sim.workload import TRACE_FORMATS

    seen = 0
    for _, parser in _commands(build_parser()):
        for action in parser._actions:
            if action.dest == "trace_format":
                seen += 1
                assert all(f in (action.help or "") for f in TRACE_FORMATS.names())
    assert seen >= 2


def test_profile_list(capsys):
    """`sim profile list` names models (with context and measured shapes), GPUs and engines."""
    assert main(["profile", "list"]) == 0
    out = capsys.readouterr().out
    for needle in ("Llama-2-70B", "meta-llama/Meta-Llama-3-8B", "4,096", "H100", "A100-80GB",
                   "engines", "llm", "embedding"):
        assert needle in out, needle


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    """Quick start = exactly two commands: install-for-running + run, then test extras + tests;
    .ci/run runs the README's test command verbatim."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", readme, re.S)
    assert block is not None
    lines = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2, lines
    assert 'pip install -q -e . ' in lines[0] and "[dev]" not in lines[0] and "sim run" in lines[0]
    assert '".[dev]"' in lines[1] and lines[1].endswith("-m pytest -q")
    assert lines[1] in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_generated_requests_fit_the_models_context(path):
    """No shipped synthetic scenario draws requests longer than its model's context (the 70B
    scenarios cap their lognormal lengths at 3,072 + 1,024 for Llama-2's 4,096 tokens)."""
    sc = sim.load_scenario(path)
    if sc.workload.kind in ("trace", "servegen", "composite"):
        pytest.skip("replays recorded lengths")
    ctx = sc.serving.max_model_len or max_context_tokens(sc.deployment.base_model or sc.deployment.model)
    if not ctx or sc.deployment.inf_type != "llm":
        pytest.skip("no context limit")
    wl = build_workload(sc.workload, Streams(sc.sim.seed), sc.base_dir)
    too_long = int(((wl.prompt_tokens + wl.output_tokens) > ctx).sum())
    assert too_long == 0, f"{too_long:,} of {len(wl):,} requests exceed {ctx:,} tokens"


def test_quickstart_report_says_undersized_and_what_to_try(tmp_path):
    """The quick start's report opens with why it misses the SLO and which knob to turn."""
    out = tmp_path / "qs"
    assert main(["run", str(REPO / "scenarios" / "quickstart.yaml"), "-q", "--out", str(out)]) == 0
    head = (out / "report.md").read_text()[:2500]
    assert "Deliberately undersized" in head
    assert "min_workers=3" in head and "What this means:" in head and "undersized" in head


def test_numbers_read_the_same_in_single_and_replicated_runs(tmp_path, capsys):
    """Dollars with cents, seconds to 3 significant digits with a unit, percentages to 0.1,
    in the single-run headline and in the replication table alike."""
    from tests.helpers import small_scenario, write_yaml

    path = write_yaml(tmp_path / "s.yaml", small_scenario("f", workers=1, requests=60, mean_s=0.5))
    assert main(["run", str(path), "--out", str(tmp_path / "a")]) == 0
    single = capsys.readouterr().out
    assert main(["run", str(path), "--seeds", "1-2", "--out", str(tmp_path / "b")]) == 0
    replicated = capsys.readouterr().out
    money, secs, pct = r"\$\d[\d,]*\.\d\d", r"\d[\d.e+]* s\b", r"\d+\.\d%"
    for text in (single, replicated):
        assert re.search(money, text) and re.search(secs, text) and re.search(pct, text), text
    assert re.search(rf"cost per hour\s+{money} ± {money}", replicated)
    assert re.search(rf"E2E latency p95\s+{secs} ± {secs}", replicated)


def test_profile_show_warns_of_a_tensor_parallel_size_vllm_refuses(capsys):
    """3 GPUs do not split Llama-2-13B's 40 heads: the profile is shown with the same warning a
    scenario gets, listing the sizes that do split them."""
    from sim.cli import main

    assert main(["profile", "show", "llama-2-13b", "A100", "3"]) == 0
    out = capsys.readouterr().out
    assert "warning: 3 GPUs per worker do not divide Llama-2-13B's 40 attention heads" in out
    assert "(use 1, 2, 4, 8)" in out
    assert main(["profile", "show", "llama-2-13b", "A100", "2"]) == 0
    assert "do not divide" not in capsys.readouterr().out


def test_engine_with_the_vidur_profile_is_a_warning(capsys):
    """serving.engine does nothing with serving.profile: vidur; saying it beats a silent no-op."""
    args = ["validate", "scenarios/quickstart.yaml", "--set", "serving.profile=vidur"]
    assert main([*args, "--set", "serving.engine=eager-2024"]) == 0
    assert "serving.engine: eager-2024 is not used with serving.profile: vidur" in capsys.readouterr().err
    assert main(args) == 0
    assert "serving.engine" not in capsys.readouterr().err
