"""Log records as JSON lines (or text), tagged with the request and session they belong to.

`request_id` and `session_id` live in context variables: the RPC pipeline (signer/api/pipeline.py) sets them for the
duration of each RPC (asyncio copies the context into every task the handler starts), and the
formatters read them, so a log call anywhere below the servicer carries them without passing ids
around. Nothing here formats secrets: messages are what the callers log, and callers never log
key material (common rule), only ids and status.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_id", default=None)

# A caller-chosen request id is accepted only if it is short and plain, so it cannot forge log
# structure or grow without bound.
_REQUEST_ID_HEADER = "x-request-id"
_MAX_ID_LEN = 128


# Letters and digits (str.isalnum, as \w is that plus "_") and "._:-"; one regex match instead of a
# Python loop per character, since every RPC checks its ids.
_PLAIN_ID = re.compile(r"[\w.:-]+")


def _plain(value: str) -> bool:
    return 0 < len(value) <= _MAX_ID_LEN and _PLAIN_ID.fullmatch(value) is not None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, RFC 3339), level, logger, message, and request_id /
    session_id when known; `exc` holds the formatted traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid, sid = request_id.get(), session_id.get()
        if rid is not None:
            entry["request_id"] = rid
        if sid is not None:
            entry["session_id"] = sid
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{name}={value}"
            for name, value in (("request", request_id.get()), ("session", session_id.get()))
            if value is not None
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


def configure(level: str, fmt: str) -> None:
    """Route the root logger to stderr with the chosen format (replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class _Binding:
    """The context manager `bind` returns: a class rather than a generator-based one, since the
    RPC pipeline enters one per call."""

    __slots__ = ("_request", "_session", "_tokens")

    def __init__(self, request: str | None, session: str | None) -> None:
        self._request = request
        self._session = session
        self._tokens: tuple[contextvars.Token[str | None] | None, contextvars.Token[str | None] | None] = (None, None)

    def __enter__(self) -> None:
        self._tokens = (
            request_id.set(self._request) if self._request is not None else None,
            session_id.set(self._session) if self._session is not None else None,
        )

    def __exit__(self, *exc: object) -> None:
        request_token, session_token = self._tokens
        if session_token is not None:
            session_id.reset(session_token)
        if request_token is not None:
            request_id.reset(request_token)


def bind(*, request: str | None = None, session: str | None = None) -> _Binding:
    """Set the ids for the enclosed code (e.g. background work on behalf of a session); an id
    given as None is left as it is."""
    return _Binding(request, session)


def _request_session_id(request: Any) -> str | None:
    """The session a request is about: `session_id` of Start/Get requests, or that of the first
    submitted message (all messages of one Submit share a session; the servicer checks that)."""
    value = getattr(request, "session_id", None)
    if isinstance(value, str) and value:
        return value if _plain(value) else None
    messages = getattr(request, "messages", None)
    if messages:
        first = getattr(messages[0], "session_id", None)
        if isinstance(first, str) and _plain(first):
            return first
    return None


def request_id_for(metadata: Any) -> str:
    """The caller's `x-request-id` if it is plain, else a fresh random one."""
    given = None
    for key, value in metadata or ():
        if key == _REQUEST_ID_HEADER:
            given = value  # the last one wins, as it did with dict(metadata)
    return given if isinstance(given, str) and _plain(given) else secrets.token_hex(8)
