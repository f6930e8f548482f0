"""A small client of the ScaleGenAI inference API (``/sg_inf/...``) on httpx.

Base URL and key come from arguments or the environment: ``SCALEGEN_API_URL`` and
``SCALEGEN_API_KEY`` (the vendor page names no host and documents no auth header; the key is
sent as ``Authorization: Bearer KEY`` unless ``auth_header`` names another header, which
then carries the bare key). Bodies are validated by :mod:`sim.api.schema` before they are
sent, and an ``hf_token`` placeholder (``${HF_TOKEN}``, as exports write it) is filled from
the environment at send time.

Failures are typed (:mod:`sim.errors`): :class:`~sim.errors.ApiRequestError` for a 4xx
(one line: method, path, status and the server's message; not retried, except 429 Too Many
Requests), :class:`~sim.errors.ApiServerError` for a 5xx (or a 429 that persists) and :class:`~sim.errors.ApiConnectionError`
for a connection failure or timeout, each raised once the retries are spent. Retries back
off exponentially (``backoff_s * 2**attempt``, capped at ``backoff_max_s``; a ``Retry-After``
header in seconds is honoured up to the same cap). ``POST /sg_inf/create`` is not idempotent,
so it is retried after a 5xx or a failure to connect, but not after a read timeout (the
deployment may have been created); the other three methods are retried on any of them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sim.api.export import API_KEY_ENV, BASE_URL_ENV, expand_placeholders
from sim.api.schema import MASK, CreateBody, UpdateBody, parse_create, parse_update
from sim.errors import ApiConnectionError, ApiRequestError, ApiServerError, ConfigError

__all__ = ["ApiResponse", "ScaleGenClient", "describe_request", "id_path"]

_IDEMPOTENT = {"GET", "PUT", "DELETE"}


@dataclass(frozen=True)
class ApiResponse:
    """A successful answer: HTTP status, the ``message`` field and the whole decoded JSON."""

    status: int
    message: Any
    data: dict[str, Any]


def _body_dict(body: CreateBody | UpdateBody | Mapping[str, Any]) -> dict[str, Any]:
    """A request body as a dict (models as their exact request)."""
    if isinstance(body, CreateBody | UpdateBody):
        return body.to_request()
    return dict(body)


def _server_message(response: httpx.Response) -> str:
    """The error text of a response: its ``message`` or ``detail`` field, else its text."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return text[:200] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            if key in data:
                value = data[key]
                return value if isinstance(value, str) else json.dumps(value)[:300]
    return json.dumps(data)[:300]


def describe_request(request: httpx.Request, secret_headers: tuple[str, ...] = ("authorization",)) -> str:
    """The request as text for ``--dry-run``: method, URL, headers (``secret_headers`` masked)
    and the JSON body (``hf_token`` masked)."""
    secret = {h.lower() for h in secret_headers}
    lines = [f"{request.method} {request.url}"]
    for name, value in request.headers.items():
        if name.lower() in secret:
            value = (value.split(" ", 1)[0] + " " + MASK) if " " in value else MASK
        elif name.lower() != "content-type":
            continue  # httpx's own headers (host, length) say nothing to the user
        lines.append(f"{name}: {value}")
    if request.content:
        body = json.loads(request.content)
        if isinstance(body, dict) and body.get("hf_token"):
            body["hf_token"] = MASK
        lines.append("")
        lines.append(json.dumps(body, indent=2))
    return "\n".join(lines)


#: Bounds of the client settings: a longer wait or more retries reads as a hang.
MAX_TIMEOUT_S = 3600.0
MAX_RETRIES = 20
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # an RFC 9110 token
_HTTP_URL = re.compile(r"https?://", re.IGNORECASE)


class ScaleGenClient:
    """Client of the four inference endpoints: create, update, get, delete.

    ``base_url``/``api_key`` default to ``$SCALEGEN_API_URL``/``$SCALEGEN_API_KEY`` (a missing
    URL is a :class:`~sim.errors.ConfigError` when a request is sent; a missing key sends no
    key header). ``timeout_s`` bounds connect, read and write of each attempt; ``retries`` is
    the number of further attempts after the first. ``transport`` (an httpx transport),
    ``sleep`` and ``environ`` are injectable for tests. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        auth_header: str = "Authorization",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        if not (0 < timeout_s <= MAX_TIMEOUT_S):  # also refuses NaN
            raise ConfigError(
                f"expected a timeout > 0 s and <= {MAX_TIMEOUT_S:g} s, got {timeout_s}",
                field="timeout_s",
            )
        if not (0 <= retries <= MAX_RETRIES):
            raise ConfigError(
                f"expected retries between 0 and {MAX_RETRIES}, got {retries}", field="retries"
            )
        if not _HEADER_NAME.fullmatch(auth_header):
            raise ConfigError(
                f"expected an HTTP header name (letters, digits, '-'), got {auth_header!r}",
                field="auth_header",
            )
        self.base_url = (base_url or env.get(BASE_URL_ENV) or "").rstrip("/")
        self.api_key = api_key if api_key is not None else env.get(API_KEY_ENV) or None
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.auth_header = auth_header
        self._environ = env
        self._sleep = sleep
        self._transport = transport
        self._http: httpx.Client | None = None

    # --- plumbing --------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout_s, transport=self._transport)
        return self._http

    def close(self) -> None:
        """Close the underlying connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> ScaleGenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            if self.auth_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {self.api_key}"
            else:
                headers[self.auth_header] = self.api_key
        return headers

    def build_request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Request:
        """The HTTP request that would be sent (``--dry-run`` prints it; nothing is sent).

        Without a base URL the URL shows ``$SCALEGEN_API_URL``.
        """
        root = self.base_url or "http://$" + BASE_URL_ENV
        content = json.dumps(body).encode() if body is not None else None
        return httpx.Request(method, root + path, headers=self._headers(), content=content)

    def describe(self, request: httpx.Request) -> str:
        """:func:`describe_request` with this client's key header masked."""
        return describe_request(request, ("authorization", self.auth_header))

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (exponential, Retry-After honoured)."""
        delay = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        if response is not None:
            after = response.headers.get("Retry-After", "")
            if after.strip().isdigit():
                delay = min(self.backoff_max_s, max(delay, float(after)))
        return delay

    def send(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> ApiResponse:
        """Send one API call with retries; the decoded JSON answer or a typed error.

        Raises :class:`~sim.errors.ApiRequestError` (4xx, or ``"success": false``),
        :class:`~sim.errors.ApiServerError` (5xx, or 429 on every attempt) and :class:`~sim.errors.ApiConnectionError`
        (connection failure or timeout) after ``retries`` further attempts.
        """
        if not self.base_url:
            raise ConfigError(
                f"no API base URL: pass --base-url or set {BASE_URL_ENV}", field="base_url"
            )
        url = httpx.URL(self.base_url) if _HTTP_URL.match(self.base_url) else None
        if url is None or not url.host:
            raise ConfigError(
                f"expected an http:// or https:// URL with a host, got {self.base_url!r}",
                field="base_url",
            )
        request = self.build_request(method, path, body)
        label = f"{method} {path}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client().send(request)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or not (unsent or method in _IDEMPOTENT):
                    kind = type(exc).__name__
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise ApiConnectionError(
                        f"{label}: {kind} reaching {self.base_url}{tries}: {exc}",
                        method=method,
                        path=path,
                    ) from None
                self._sleep(self._delay(attempt, None))
                continue
            status = response.status_code
            # 429 (rate limited) is retried like a 5xx, as urllib3's Retry does by default.
            if status >= 500 or status == 429:
                if last:
                    raise ApiServerError(
                        f"{label}: {status} {response.reason_phrase} after {attempt + 1} "
                        f"attempts: {_server_message(response)}",
                        status=status,
                        method=method,
                        path=path,
                    )
                self._sleep(self._delay(attempt, response))
                continue
            if status >= 400:
                raise ApiRequestError(
                    f"{label}: {status} {response.reason_phrase}: {_server_message(response)}",
                    status=status,
                    method=method,
                    path=path,
                )
            try:
                data = response.json()
            except ValueError:
                raise ApiServerError(
                    f"{label}: {status} with a body that is not JSON: {response.text[:200]!r}",
                    status=status,
                    method=method,
                    path=path,
                ) from None
            if not isinstance(data, dict) or data.get("success") is False:
                raise ApiRequestError(
                    f"{label}: the server answered without success: {_server_message(response)}",
                    status=status,
                    method=method,
                    path=path,
                )
            return ApiResponse(status=status, message=data.get("message"), data=data)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    # --- the four endpoints ----------------------------------------------------------------------

    def create_request(self, body: CreateBody | Mapping[str, Any]) -> dict[str, Any]:
        """The validated create body as it will be sent (placeholders filled from the environment)."""
        data = _body_dict(body)
        parse_create(data, source="create body")
        return expand_placeholders(data, self._environ)

    def update_request(self, body: UpdateBody | Mapping[str, Any]) -> dict[str, Any]:
        """The validated update body as it will be sent."""
        data = _body_dict(body)
        parse_update(data, source="update body")
        return data

    def create(self, body: CreateBody | Mapping[str, Any]) -> str:
        """``POST /sg_inf/create``; the new deployment's ``inf_id``."""
        response = self.send("POST", "/sg_inf/create", self.create_request(body))
        message = response.message
        if not isinstance(message, dict) or not isinstance(message.get("inf_id"), str):
            raise ApiServerError(
                "POST /sg_inf/create: the answer has no message.inf_id: "
                + json.dumps(response.data)[:200],
                status=response.status,
                method="POST",
                path="/sg_inf/create",
            )
        return message["inf_id"]

    def update(self, inf_id: str, body: UpdateBody | Mapping[str, Any]) -> Any:
        """``PUT /sg_inf/{inf_id}``; the server's message."""
        return self.send("PUT", id_path(inf_id), self.update_request(body)).message

    def get(self, inf_id: str) -> Any:
        """``GET /sg_inf/{inf_id}``; the server's message (a string, decoded if it is JSON)."""
        message = self.send("GET", id_path(inf_id)).message
        if isinstance(message, str) and message.lstrip().startswith("{"):
            try:
                return json.loads(message)
            except ValueError:
                return message
        return message

    def delete(self, inf_id: str) -> Any:
        """``DELETE /sg_inf/{inf_id}``; the server's message."""
        return self.send("DELETE", id_path(inf_id)).message


def id_path(inf_id: str) -> str:
    """``/sg_inf/{inf_id}``, refusing ids that would change the path."""
    if not inf_id or any(c in inf_id for c in "/?#% ") or inf_id in (".", "..", "create"):
        raise ConfigError(f"not a valid inference id: {inf_id!r}", field="inf_id")
    return f"/sg_inf/{inf_id}"
