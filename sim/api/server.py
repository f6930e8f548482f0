"""A local reference server of the four ScaleGenAI inference endpoints (FastAPI + uvicorn).

It stands in for the vendor's API in tests, demos and dry runs of a deployment pipeline:
bodies are validated with the same schema (:mod:`sim.api.schema`), deployments live in
memory, and answers have the documented shapes (``{"success": true, "message": {"inf_id":
...}}`` for create, ``{"success": true, "message": "..."}`` for the others). Errors answer
``{"success": false, "message": "..."}`` with a realistic status: 400 (not JSON), 401 (key
missing or wrong, when the server has one), 404 (unknown id), 409 (a live deployment has
that name), 422 (the schema rejects the body; the message names the field). The vendor
documents ``message`` of GET as a string: here it is the deployment as JSON text (``inf_id``,
``status``, ``config`` with ``hf_token`` masked).

:class:`Faults` injects server errors (the next N requests answer 503) so that clients'
retries can be tested. Needs the ``server`` extra: ``pip install 'gpu-autoscale-sim[server]'``.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at
# definition time, and ``Request`` is imported inside create_app (FastAPI is optional).
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.api.schema import CreateBody, apply_update, parse_create, parse_update
from sim.errors import ConfigError, SimError
from sim.io import loads_json

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["Faults", "background_server", "create_app", "serve"]

#: Largest request body accepted (bytes); a create body is about 1 kB.
MAX_BODY_BYTES = 1 << 20


@dataclass
class Faults:
    """Server errors to inject: the next ``fail_next`` requests answer ``status`` (thread-safe)."""

    fail_next: int = 0
    status: int = 503
    retry_after_s: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arm(self, count: int, status: int = 503, retry_after_s: int | None = None) -> None:
        """Make the next ``count`` requests fail with ``status``."""
        with self._lock:
            self.fail_next, self.status, self.retry_after_s = count, status, retry_after_s

    def take(self) -> int | None:
        """The status to fail this request with, or None to serve it."""
        with self._lock:
            if self.fail_next <= 0:
                return None
            self.fail_next -= 1
            return self.status


@dataclass
class _Deployment:
    inf_id: str
    config: CreateBody
    created_at: float
    updated_at: float
    updates: int = 0


def _require_fastapi() -> Any:
    try:
        import fastapi
    except ImportError:
        raise SimError(
            "the reference server needs FastAPI and uvicorn: "
            "pip install 'gpu-autoscale-sim[server]'"
        ) from None
    return fastapi


def create_app(*, api_key: str | None = None, faults: Faults | None = None) -> "FastAPI":
    """The FastAPI app of the four endpoints, with its own in-memory store.

    ``api_key``: when set, every request must carry it (``Authorization: Bearer KEY`` or
    ``X-API-Key: KEY``), else 401. ``faults``: errors to inject (see :class:`Faults`).
    """
    fastapi = _require_fastapi()
    from fastapi import Request
    from fastapi.responses import JSONResponse

    app = fastapi.FastAPI(
        title="ScaleGenAI inference API (reference server of gpu-autoscale-sim)",
        description="In-memory stand-in for /sg_inf/create, PUT/GET/DELETE /sg_inf/{id}.",
    )
    store: dict[str, _Deployment] = {}
    lock = threading.Lock()
    injected = faults if faults is not None else Faults()
    app.state.deployments = store
    app.state.faults = injected

    def fail(status: int, message: str) -> JSONResponse:
        return JSONResponse({"success": False, "message": message}, status_code=status)

    def ok(message: Any) -> JSONResponse:
        return JSONResponse({"success": True, "message": message})

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        status = injected.take()
        if status is not None:
            headers = (
                {"Retry-After": str(injected.retry_after_s)}
                if injected.retry_after_s is not None
                else None
            )
            return JSONResponse(
                {"success": False, "message": f"injected fault ({status})"},
                status_code=status,
                headers=headers,
            )
        if api_key is not None:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
            if given != api_key:
                return fail(401, "missing or invalid API key")
        return await call_next(request)

    async def json_body(request: Request) -> tuple[Any, JSONResponse | None]:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return None, fail(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            # Read as strictly as every config file: a duplicated key, NaN/Infinity or
            # nesting past sim.io.MAX_DEPTH is an error (json.loads would keep the last key
            # silently, or overflow the stack into a 500).
            data = loads_json(raw.decode("utf-8"), "body")
        except UnicodeDecodeError as exc:
            return None, fail(400, f"body is not UTF-8 text: byte {exc.start} cannot be decoded")
        except ConfigError as exc:
            return None, fail(400, str(exc))
        if not isinstance(data, dict):
            return None, fail(422, f"expected a JSON object, got {type(data).__name__}")
        return data, None

    @app.post("/sg_inf/create")
    async def create(request: Request) -> JSONResponse:
        data, error = await json_body(request)
        if error is not None:
            return error
        try:
            body = parse_create(data, source="body")
        except ConfigError as exc:
            return fail(422, str(exc))
        with lock:
            if any(d.config.name == body.name for d in store.values()):
                return fail(409, f"an inference deployment named {body.name!r} already exists")
            inf_id = uuid.uuid4().hex
            now = time.time()
            store[inf_id] = _Deployment(inf_id, body, now, now)
        return ok({"inf_id": inf_id})

    def unknown(inf_id: str) -> JSONResponse:
        return fail(404, f"no inference deployment with id {inf_id!r}")

    @app.put("/sg_inf/{inf_id}")
    async def update(inf_id: str, request: Request) -> JSONResponse:
        data, error = await json_body(request)
        if error is not None:
            return error
        try:
            patch = parse_update(data, source="body")
        except ConfigError as exc:
            return fail(422, str(exc))
        with lock:
            current = store.get(inf_id)
            if current is None:
                return unknown(inf_id)
            try:
                merged = apply_update(current.config, patch)
            except ConfigError as exc:
                return fail(422, str(exc))
            current.config = merged
            current.updates += 1
            current.updated_at = time.time()
        now = " (scaling down at once)" if patch.imidiate_scale_down else ""
        return ok(f"inference deployment {inf_id} updated{now}")

    @app.get("/sg_inf/{inf_id}")
    async def get(inf_id: str) -> JSONResponse:
        with lock:
            current = store.get(inf_id)
            if current is None:
                return unknown(inf_id)
            info = {
                "inf_id": inf_id,
                "status": "running",
                "updates": current.updates,
                "config": current.config.to_request(mask_token=True),
            }
        return ok(json.dumps(info))

    @app.delete("/sg_inf/{inf_id}")
    async def delete(inf_id: str) -> JSONResponse:
        with lock:
            if store.pop(inf_id, None) is None:
                return unknown(inf_id)
        return ok(f"inference deployment {inf_id} deleted")

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    api_key: str | None = None,
    faults: Faults | None = None,
) -> None:
    """Run the reference server in the foreground until interrupted (uvicorn)."""
    _require_fastapi()
    import uvicorn

    uvicorn.run(create_app(api_key=api_key, faults=faults), host=host, port=port, log_level="info")


@contextmanager
def background_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    faults: Faults | None = None,
    start_timeout_s: float = 20.0,
) -> Iterator[str]:
    """Run the reference server in a thread for the ``with`` block; yields its base URL.

    ``port=0`` takes a free port. Startup is bounded by ``start_timeout_s`` (SimError past
    it); on exit the server is asked to stop and joined for at most as long.
    """
    _require_fastapi()
    import uvicorn

    config = uvicorn.Config(
        create_app(api_key=api_key, faults=faults),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sg-reference-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SimError(f"the reference server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=start_timeout_s)
