"""The client against the local reference server on loopback (sim/api/server.py), end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from sim.api.client import ScaleGenClient  # noqa: E402
from sim.api.export import create_body, curl_command, update_request  # noqa: E402
from sim.api.schema import parse_create, parse_update  # noqa: E402
from sim.api.server import Faults, background_server  # noqa: E402
from sim.errors import ApiRequestError, ApiServerError  # noqa: E402
from sim.scenario import scenario_from_dict  # noqa: E402
from tests.helpers import small_scenario  # noqa: E402

KEY = "test-key"
TOKEN = "hf_loopback_secret"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Faults]]:
    """One reference server on 127.0.0.1 (a free port) for the module, with injectable faults."""
    faults = Faults()
    with background_server(host="127.0.0.1", api_key=KEY, faults=faults, start_timeout_s=30) as url:
        yield url, faults


@pytest.fixture
def api(server) -> Iterator[ScaleGenClient]:
    """A client of the server with short timeouts and instant back-off."""
    url, faults = server
    faults.arm(0)
    with ScaleGenClient(
        url, KEY, timeout_s=10, retries=3, sleep=lambda s: None, environ={"HF_TOKEN": TOKEN}
    ) as c:
        yield c


def exported(name: str, *overrides: str) -> dict:
    """An exported create body of a small scenario (with a token, as a placeholder)."""
    data = small_scenario(name, workers=1, requests=10, mean_s=0.5)
    data["deployment"]["hf_token"] = TOKEN
    return create_body(scenario_from_dict(data), overrides)


def test_export_create_get_update_delete(api):
    """The full workflow: the exported bodies are accepted and the server's state follows them."""
    body = exported("flow")
    assert body["hf_token"] == "${HF_TOKEN}"
    inf_id = api.create(body)
    assert isinstance(inf_id, str) and inf_id

    info = api.get(inf_id)
    assert info["inf_id"] == inf_id and info["status"] == "running"
    stored = {k: v for k, v in info["config"].items() if k != "hf_token"}
    assert stored == {k: v for k, v in body.items() if k != "hf_token"}
    assert info["config"]["hf_token"] == "**********"

    new = parse_create(exported("flow", "initial_worker_config.min_workers=0",
                                "autoscaling_config.time_window_sec=60"))
    plan = update_request(new, parse_create(body))
    assert plan.body["imidiate_scale_down"] is True
    parse_update(plan.body)
    assert "updated" in api.update(inf_id, plan.body)
    after = api.get(inf_id)["config"]
    assert after["initial_worker_config"]["min_workers"] == 0
    assert after["autoscaling_config"]["time_window_sec"] == 60
    assert after["autoscaling_config"]["scaling_up_timeout_sec"] == body["autoscaling_config"]["scaling_up_timeout_sec"]

    assert "deleted" in api.delete(inf_id)
    with pytest.raises(ApiRequestError, match="404"):
        api.get(inf_id)


def test_unknown_id(api):
    """GET, PUT and DELETE of an unknown id answer 404 with the id in the message."""
    for call in (lambda: api.get("nope"), lambda: api.delete("nope"),
                 lambda: api.update("nope", {"imidiate_scale_down": False})):
        with pytest.raises(ApiRequestError, match=r"404 Not Found: no inference deployment with id 'nope'") as info:
            call()
        assert info.value.status == 404


def test_invalid_bodies_are_422_naming_the_field(api):
    """Bodies the schema rejects (sent raw, past the client's own check) get 422 and the field."""
    with pytest.raises(ApiRequestError, match=r"422 .*initial_worker_config.min_workers") as info:
        api.send("POST", "/sg_inf/create", {"name": "x", "model": "m",
                                            "initial_worker_config": {"min_workers": -1}})
    assert info.value.status == 422
    with pytest.raises(ApiRequestError, match=r"422 .*max_workers: unknown key"):
        api.send("POST", "/sg_inf/create", {"name": "x", "model": "m", "max_workers": 3})
    inf_id = api.create(exported("band"))
    try:
        # The common spelling of the vendor's field is refused with a pointer to theirs.
        with pytest.raises(ApiRequestError, match=r"422 .*did you mean 'imidiate_scale_down'"):
            api.send("PUT", f"/sg_inf/{inf_id}", {"immediate_scale_down": True})
        # Half a band that empties it once merged with the stored config.
        with pytest.raises(ApiRequestError, match="422 .*must be greater than"):
            api.send("PUT", f"/sg_inf/{inf_id}", {"autoscaling_config": {"lower_allowed_latency_sec": 50}})
    finally:
        api.delete(inf_id)


def test_not_json_conflict_and_auth(server, api):
    """Not JSON is 400, a second live deployment of one name is 409, a wrong key is 401."""
    url, _ = server
    raw = httpx.post(url + "/sg_inf/create", content=b"{not json",
                     headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert raw.status_code == 400 and raw.json()["success"] is False
    inf_id = api.create(exported("twice"))
    try:
        with pytest.raises(ApiRequestError, match="409 Conflict: .*'twice' already exists"):
            api.create(exported("twice"))
    finally:
        api.delete(inf_id)
    with ScaleGenClient(url, "wrong", timeout_s=10, environ={}) as bad, pytest.raises(
        ApiRequestError, match="401 Unauthorized: missing or invalid API key"
    ):
        bad.get("x")
    other = httpx.get(url + "/sg_inf/x", headers={"X-API-Key": KEY}, timeout=10)
    assert other.status_code == 404


def test_server_errors_are_retried(server, api):
    """Two injected 503s are absorbed by the retries; more than the retries surface as 503."""
    _, faults = server
    inf_id = api.create(exported("retry"))
    try:
        faults.arm(2)
        assert api.get(inf_id)["inf_id"] == inf_id
        assert faults.fail_next == 0
        faults.arm(10, status=500)
        with pytest.raises(ApiServerError, match="500 Internal Server Error after 4 attempts"):
            api.get(inf_id)
        assert faults.fail_next == 6
        faults.arm(1)
        # A create that met a 503 is retried and creates exactly one deployment.
        second = api.create(exported("retry-create"))
        api.delete(second)
    finally:
        faults.arm(0)
        api.delete(inf_id)


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                    reason="needs curl and bash")
def test_exported_curl_lines_work_against_the_server(server, api):
    """The curl lines of sim export, run by bash with real curl, create and update a deployment."""
    url, _ = server
    env = {"PATH": os.environ.get("PATH", ""), "SCALEGEN_API_URL": url,
           "SCALEGEN_API_KEY": KEY, "HF_TOKEN": TOKEN}
    body = exported("curl-flow")
    out = subprocess.run(["bash", "-c", curl_command("create", body)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    inf_id = json.loads(out.stdout)["message"]["inf_id"]
    try:
        plan = update_request(parse_create(exported("curl-flow", "autoscaling_config.time_window_sec=45")),
                              parse_create(body))
        out = subprocess.run(["bash", "-c", curl_command("update", plan.body, inf_id=inf_id)],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert api.get(inf_id)["config"]["autoscaling_config"]["time_window_sec"] == 45
    finally:
        api.delete(inf_id)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"name": "a", "model": "m", "name": "b"}', "duplicate key 'name'"),
        (b"[" * 50_000 + b"]" * 50_000, "nest"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"name": "a", "model": "m", "max_price_per_hour": NaN}', "NaN"),
    ],
)
def test_hostile_bodies_are_400_naming_the_problem(server, raw, message):
    """A duplicated key (which json.loads would resolve silently to the last value), nesting
    that would blow the parser's stack, bytes that are not UTF-8 and NaN are 400 with one
    message, read as strictly as every config file, never a 500 or a silent choice."""
    url, _ = server
    answer = httpx.post(url + "/sg_inf/create", content=raw,
                        headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["success"] is False
    assert message.lower() in answer.json()["message"].lower()
