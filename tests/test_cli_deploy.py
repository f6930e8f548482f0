"""Tests of ``sim export`` and ``sim deploy`` (sim/cli/export.py, sim/cli/deploy.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import small_scenario, write_yaml

from sim.api.schema import parse_create, parse_update
from sim.cli import main

TOKEN = "hf_cli_secret_value"


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """A small scenario file with an hf_token."""
    data = small_scenario("cli", workers=2, requests=10, mean_s=0.5)
    data["deployment"]["hf_token"] = TOKEN
    return write_yaml(tmp_path / "s.yaml", data)


def test_export_create_prints_a_valid_body(scenario, capsys):
    """The default format is the create body; valid, with the token as a placeholder."""
    assert main(["export", str(scenario), "--set", "deployment.autoscaling_config.time_window_sec=60"]) == 0
    out = capsys.readouterr().out
    body = json.loads(out)
    parse_create(body)
    assert body["autoscaling_config"]["time_window_sec"] == 60
    assert body["hf_token"] == "${HF_TOKEN}" and TOKEN not in out


def test_export_writes_files_and_update_against_current(scenario, tmp_path, capsys):
    """--out writes the body; --current gives the update with only the changes and the scale-down flag."""
    current = tmp_path / "current.json"
    assert main(["export", str(scenario), "--out", str(current), "-q"]) == 0
    assert TOKEN not in current.read_text()
    update = tmp_path / "update.json"
    code = main(["export", str(scenario), "--current", str(current), "--out", str(update),
                 "--set", "deployment.initial_worker_config.min_workers=1"])
    assert code == 0
    body = json.loads(update.read_text())
    parse_update(body)
    assert body == {"initial_worker_config": {"min_workers": 1}, "imidiate_scale_down": True}
    assert "change: initial_worker_config.min_workers: 2 -> 1" in capsys.readouterr().err


def test_export_curl_of_an_update_needs_the_id(scenario, tmp_path, capsys):
    """A curl line of an update names the deployment; without --id it is a one-line error."""
    current = tmp_path / "c.json"
    main(["export", str(scenario), "--out", str(current), "-q"])
    args = ["export", str(scenario), "--current", str(current), "--format", "curl",
            "--set", "deployment.autoscaling_config.time_window_sec=60"]
    assert main(args) == 2
    assert "--id INF_ID" in capsys.readouterr().err
    assert main([*args, "--id", "abc", "--base-url", "http://h"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("curl ") and "-X PUT 'http://h/sg_inf/abc'" in line
    assert '"time_window_sec":60' in line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "update"], "--current FILE"),
        (["--partial"], "--partial goes only with --current"),
        (["--id", "x"], "--id goes only with --format curl"),
        (["--set", "deployment.autoscaling_config.time_window_sec=0"], "--set: deployment.autoscaling_config.time_window_sec"),
        (["--row", "3"], "--row and --point apply to a sweep only"),
    ],
)
def test_export_bad_input_is_one_line(scenario, capsys, extra, message):
    """Bad options exit 2 with one line naming the option or field."""
    assert main(["export", str(scenario), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_export_unchangeable_field_needs_partial(scenario, tmp_path, capsys):
    """A spot change cannot be an update: error by default, warning with --partial."""
    current = tmp_path / "c.json"
    main(["export", str(scenario), "--out", str(current), "-q"])
    args = ["export", str(scenario), "--current", str(current),
            "--set", "deployment.allow_spot_instances=true"]
    assert main(args) == 2
    assert "cannot change it" in capsys.readouterr().err
    assert main([*args, "--partial"]) == 0
    captured = capsys.readouterr()
    assert "warning: allow_spot_instances differs (current false, new true)" in captured.err
    assert json.loads(captured.out) == {"imidiate_scale_down": False}


def test_deploy_dry_run_masks_key_and_token(scenario, capsys):
    """--dry-run prints the request with the key and the token masked and sends nothing."""
    os.environ.pop("HF_TOKEN", None)
    code = main(["deploy", "create", str(scenario), "--dry-run", "--base-url", "http://127.0.0.1:9",
                 "--api-key", "topsecret"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("POST http://127.0.0.1:9/sg_inf/create")
    assert "topsecret" not in out and TOKEN not in out
    assert "authorization: Bearer **********" in out
    assert main(["deploy", "delete", "abc", "--dry-run", "--base-url", "http://h"]) == 0
    assert capsys.readouterr().out.startswith("DELETE http://h/sg_inf/abc")


def test_deploy_unreachable_api_exits_1(capsys):
    """A refused connection, after the retries, is one line and exit status 1."""
    code = main(["deploy", "get", "abc", "--base-url", "http://127.0.0.1:9", "--retries", "0",
                 "--timeout", "5"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: GET /sg_inf/abc: ConnectError") and err.count("\n") == 1


def free_port() -> int:
    """A port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    """``sim deploy serve`` in a subprocess on 127.0.0.1, first request failing with 503; stopped after."""
    pytest.importorskip("fastapi")
    port = free_port()
    env = {**os.environ, "SERVE_KEY": "k123"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "deploy", "serve", "--port", str(port),
         "--api-key-env", "SERVE_KEY", "--fail-first", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sim deploy serve did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def test_deploy_against_sim_deploy_serve(served, scenario, tmp_path, capsys, monkeypatch):
    """create -> get -> update (current from GET) -> delete through the CLI, retrying the injected 503."""
    monkeypatch.setenv("SCALEGEN_API_URL", served)
    monkeypatch.setenv("SCALEGEN_API_KEY", "k123")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["deploy", "create", str(scenario)]) == 0
    inf_id = capsys.readouterr().out.strip()
    assert inf_id

    assert main(["deploy", "get", inf_id]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["initial_worker_config"]["min_workers"] == 2
    assert info["config"]["hf_token"] == "**********"

    assert main(["deploy", "update", inf_id, str(scenario),
                 "--set", "deployment.initial_worker_config.min_workers=1"]) == 0
    captured = capsys.readouterr()
    assert "scaling down at once" in captured.out
    assert "change: initial_worker_config.min_workers: 2 -> 1" in captured.err

    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"autoscaling_config": {"time_window_sec": 90}}))
    assert main(["deploy", "update", inf_id, str(patch)]) == 0
    capsys.readouterr()
    assert main(["deploy", "get", inf_id]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["initial_worker_config"]["min_workers"] == 1
    assert config["autoscaling_config"]["time_window_sec"] == 90

    # Nothing to send: an empty body is bad input; a config the deployment already runs is a no-op.
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"autoscaling_config": {}}))
    assert main(["deploy", "update", inf_id, str(empty)]) == 2
    assert "the update body sets no field" in capsys.readouterr().err
    assert main(["deploy", "update", inf_id, str(scenario), "--set",
                 "deployment.initial_worker_config.min_workers=1", "--set",
                 "deployment.autoscaling_config.time_window_sec=90"]) == 0
    captured = capsys.readouterr()
    assert "no change" in captured.err and "nothing sent" in captured.err and not captured.out

    assert main(["deploy", "delete", inf_id]) == 0
    assert "deleted" in capsys.readouterr().out
    assert main(["deploy", "get", inf_id]) == 2
    assert "404 Not Found" in capsys.readouterr().err
    # The key is required.
    raw = httpx.get(f"{served}/sg_inf/{inf_id}", timeout=10)
    assert raw.status_code == 401
