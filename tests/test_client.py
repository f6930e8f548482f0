"""Unit tests of the API client (sim/api/client.py): retries, typed errors, dry-run text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sim.api.client import ScaleGenClient, describe_request
from sim.errors import (
    ApiConnectionError,
    ApiRequestError,
    ApiServerError,
    ConfigError,
    SimError,
)

BODY = {"name": "a", "model": "m"}


def scripted(*answers: Any) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each request with the next item: a (status, json) pair or an exception."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, payload, *headers = answer
        return httpx.Response(status, json=payload, headers=headers[0] if headers else None)

    return httpx.MockTransport(handler), seen


def client(transport: httpx.MockTransport, **kw: Any) -> tuple[ScaleGenClient, list[float]]:
    """A client on ``transport`` that records its back-off sleeps instead of sleeping."""
    delays: list[float] = []
    kw.setdefault("environ", {})
    return ScaleGenClient("http://api", "key1", transport=transport, sleep=delays.append, **kw), delays


def test_create_returns_the_id_and_sends_the_documented_request():
    """POST /sg_inf/create with JSON content type, bearer key and the validated body."""
    transport, seen = scripted((200, {"success": True, "message": {"inf_id": "abc"}}))
    c, _ = client(transport)
    assert c.create(BODY) == "abc"
    request = seen[0]
    assert request.method == "POST" and str(request.url) == "http://api/sg_inf/create"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer key1"
    assert json.loads(request.content) == BODY


def test_retries_5xx_with_exponential_backoff_then_succeeds():
    """Two 503s then a 200: three attempts, waits 0.5 s then 1 s."""
    transport, seen = scripted(
        (503, {"success": False, "message": "busy"}),
        (502, {"success": False, "message": "bad gateway"}),
        (200, {"success": True, "message": "ok"}),
    )
    c, delays = client(transport)
    assert c.get("x") == "ok"
    assert len(seen) == 3
    assert delays == [0.5, 1.0]


def test_backoff_is_capped_and_retry_after_honoured():
    """Delays double up to backoff_max_s; a Retry-After header lengthens a wait up to the cap."""
    transport, _ = scripted(*[(500, {"message": "x"})] * 5, (503, {}, {"Retry-After": "3"}), (200, {"success": True, "message": "ok"}))
    c, delays = client(transport, retries=6, backoff_s=1, backoff_max_s=4)
    c.delete("x")
    assert delays == [1, 2, 4, 4, 4, 4]
    transport, _ = scripted((503, {}, {"Retry-After": "3"}), (200, {"success": True, "message": "ok"}))
    c, delays = client(transport, backoff_s=0.5, backoff_max_s=10)
    c.get("x")
    assert delays == [3.0]


def test_rate_limit_is_retried_after_its_retry_after():
    """A 429 with Retry-After: 2 is waited out, then the call succeeds."""
    transport, seen = scripted((429, {"message": "slow down"}, {"Retry-After": "2"}),
                               (200, {"success": True, "message": "ok"}))
    c, delays = client(transport)
    assert c.get("x") == "ok" and delays == [2.0] and len(seen) == 2


def test_5xx_every_time_is_a_server_error():
    """After the retries are spent the error says how many attempts and the server's message."""
    transport, seen = scripted(*[(500, {"success": False, "message": "db down"})] * 3)
    c, _ = client(transport, retries=2)
    with pytest.raises(ApiServerError, match=r"GET /sg_inf/x: 500 Internal Server Error after 3 attempts: db down") as info:
        c.get("x")
    assert info.value.status == 500 and len(seen) == 3


def test_4xx_is_one_line_and_not_retried():
    """A 404 raises at once with method, path, status and the server's message on one line."""
    transport, seen = scripted((404, {"success": False, "message": "no deployment 'x'"}))
    c, _ = client(transport)
    with pytest.raises(ApiRequestError) as info:
        c.get("x")
    assert str(info.value) == "GET /sg_inf/x: 404 Not Found: no deployment 'x'"
    assert "\n" not in str(info.value) and len(seen) == 1
    assert isinstance(info.value, SimError)


def test_fastapi_style_detail_and_non_json_errors_are_readable():
    """A {'detail': ...} answer or plain text still gives a one-line message."""
    transport, _ = scripted((405, {"detail": "Method Not Allowed"}))
    c, _ = client(transport)
    with pytest.raises(ApiRequestError, match="405 Method Not Allowed: Method Not Allowed"):
        c.get("x")

    def text(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="bad\nrequest")

    c, _ = client(httpx.MockTransport(text))
    with pytest.raises(ApiRequestError, match="400 Bad Request: bad request"):
        c.get("x")


def test_connection_errors_are_retried_then_typed():
    """A refused connection is retried; the last one raises ApiConnectionError naming the URL."""
    refused = httpx.ConnectError("refused")
    transport, seen = scripted(refused, refused, (200, {"success": True, "message": "ok"}))
    c, delays = client(transport)
    assert c.get("x") == "ok" and delays == [0.5, 1.0]
    transport, seen = scripted(refused, refused)
    c, _ = client(transport, retries=1)
    with pytest.raises(ApiConnectionError, match="ConnectError reaching http://api after 2 attempts"):
        c.get("x")


def test_create_is_not_retried_after_a_read_timeout():
    """The create may have happened: a read timeout on POST raises at once; on GET it retries."""
    timeout = httpx.ReadTimeout("slow")
    transport, seen = scripted(timeout)
    c, _ = client(transport)
    with pytest.raises(ApiConnectionError, match="ReadTimeout"):
        c.create(BODY)
    assert len(seen) == 1
    transport, seen = scripted(timeout, (200, {"success": True, "message": "ok"}))
    c, _ = client(transport)
    assert c.get("x") == "ok" and len(seen) == 2


def test_success_false_and_missing_inf_id_are_errors():
    """A 200 without success, or a create answer without message.inf_id, is not taken as done."""
    transport, _ = scripted((200, {"success": False, "message": "quota exceeded"}))
    c, _ = client(transport)
    with pytest.raises(ApiRequestError, match="quota exceeded"):
        c.delete("x")
    transport, _ = scripted((200, {"success": True, "message": "created"}))
    c, _ = client(transport)
    with pytest.raises(ApiServerError, match="no message.inf_id"):
        c.create(BODY)


def test_bodies_are_validated_before_sending():
    """An invalid create or update body raises ConfigError naming the field; nothing is sent."""
    transport, seen = scripted()
    c, _ = client(transport)
    with pytest.raises(ConfigError, match="inf_type"):
        c.create({**BODY, "inf_type": "chat"})
    with pytest.raises(ConfigError, match="imidiate_scale_down"):
        c.update("x", {"imidiate_scale_down": "yes"})
    assert seen == []


def test_hf_token_placeholder_is_filled_from_the_environment():
    """The exported ${HF_TOKEN} is sent as the variable's value; unset, it is a clear error."""
    transport, seen = scripted((200, {"success": True, "message": {"inf_id": "i"}}))
    c, _ = client(transport, environ={"HF_TOKEN": "hf_real"})
    c.create({**BODY, "hf_token": "${HF_TOKEN}"})
    assert json.loads(seen[0].content)["hf_token"] == "hf_real"
    c, _ = client(scripted()[0])
    with pytest.raises(ConfigError, match="HF_TOKEN is not set"):
        c.create({**BODY, "hf_token": "${HF_TOKEN}"})


def test_base_url_and_key_from_the_environment():
    """SCALEGEN_API_URL and SCALEGEN_API_KEY are used when no argument is given."""
    env = {"SCALEGEN_API_URL": "http://env/", "SCALEGEN_API_KEY": "envkey"}
    c = ScaleGenClient(environ=env)
    request = c.build_request("GET", "/sg_inf/i")
    assert str(request.url) == "http://env/sg_inf/i"
    assert request.headers["authorization"] == "Bearer envkey"
    with pytest.raises(ConfigError, match="SCALEGEN_API_URL"):
        ScaleGenClient(environ={}).get("i")
    bare = ScaleGenClient("http://h", environ={}).build_request("GET", "/sg_inf/i")
    assert "authorization" not in bare.headers


def test_custom_key_header_and_dry_run_masking():
    """Another key header carries the bare key; the dry-run text masks it and the token."""
    c = ScaleGenClient("http://h", "s3cret", auth_header="X-API-Key", environ={})
    request = c.build_request("POST", "/sg_inf/create", {**BODY, "hf_token": "hf_real"})
    assert request.headers["x-api-key"] == "s3cret"
    text = c.describe(request)
    assert "s3cret" not in text and "hf_real" not in text
    assert text.splitlines()[0] == "POST http://h/sg_inf/create"
    assert "x-api-key: **********" in text
    plain = describe_request(ScaleGenClient("http://h", "k", environ={}).build_request("GET", "/sg_inf/i"))
    assert "authorization: Bearer **********" in plain


@pytest.mark.parametrize("bad", ["", "a/b", "..", "create", "x?y"])
def test_ids_that_would_change_the_path_are_refused(bad):
    """An id with a slash, query or the word create cannot address another endpoint."""
    c, _ = client(scripted()[0])
    with pytest.raises(ConfigError, match="inference id"):
        c.get(bad)


def test_bad_settings():
    """Non-positive timeouts and negative retries are errors."""
    with pytest.raises(ConfigError, match="timeout"):
        ScaleGenClient("http://h", timeout_s=0)
    with pytest.raises(ConfigError, match="retries"):
        ScaleGenClient("http://h", retries=-1)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"timeout_s": float("nan")}, "timeout"),
        ({"timeout_s": float("inf")}, "timeout"),
        ({"timeout_s": 1e9}, "timeout"),
        ({"retries": 10**9}, "retries"),
        ({"auth_header": "Bad Header:"}, "auth_header"),
        ({"auth_header": ""}, "auth_header"),
    ],
)
def test_hostile_settings_are_config_errors(kwargs, field):
    """NaN/inf/huge timeouts, retry counts that would retry for days and header names that
    are not HTTP tokens are ConfigErrors at construction, never a traceback or a hang."""
    with pytest.raises(ConfigError, match=field):
        ScaleGenClient("http://h", environ={}, **kwargs)


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "127.0.0.1:8000", "http://"])
def test_base_url_that_is_not_http_is_a_config_error(url):
    """A base URL without http(s):// and a host is a settings error (exit 2), not a
    connection failure retried with back-off (exit 1)."""
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200, json={}))
    c = ScaleGenClient(url, environ={}, transport=transport, sleep=lambda s: None)
    with pytest.raises(ConfigError, match="base_url|base URL"):
        c.get("abc")
    assert sent == []
