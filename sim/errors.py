"""Typed exceptions: every bad input ends in one of these, never in a bare traceback.

The CLI turns any :class:`SimError` into a one-line message and exit status 2.
"""

from __future__ import annotations


class SimError(Exception):
    """Base class of every error the simulator raises on bad input."""


class ConfigError(SimError):
    """A scenario, create/update body or override is invalid.

    ``source`` names the file (or ``--set``), ``field`` the dotted path of the bad field.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        where = ": ".join(p for p in (source, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class TraceError(SimError):
    """A trace file is malformed; ``path`` and ``line`` (1-based, header is line 1) locate it."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.detail = message
        where = path or ""
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class ProfileError(SimError):
    """No performance profile or model spec can be found or derived for a model/GPU shape."""


class LimitError(SimError):
    """A run would exceed a resource limit (requests, memory); the message gives the estimate
    and the option that raises the limit (``--max-requests``, ``--max-memory``)."""


class ApiError(SimError):
    """A call to the ScaleGenAI inference API failed; ``method`` and ``path`` name the call."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ):
        self.status = status
        self.method = method
        self.path = path
        super().__init__(message)


class ApiRequestError(ApiError):
    """The API refused the request (4xx: bad body, unknown id, missing key); not retried."""


class ApiServerError(ApiError):
    """The API failed (5xx) on every attempt."""


class ApiConnectionError(ApiError):
    """The API could not be reached (connection refused, DNS, timeout) on every attempt."""
