"""Structured logs: JSON lines with a request id, and personal data redacted before output.

One handler on the root logger writes every record to standard error, as JSON (for log
shippers) or as text (for a terminal). Its filters put the current request id on each record
and run the message, string extras and tracebacks through the anonymizer's detectors, so an
e-mail address, phone number, IBAN, handle or name that slipped into a log call never reaches
the output.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

from flask import Flask, Response, g, request
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from anonymizer import anonymize_text

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for a UUID or a proxy's 32 hex digits; anything else is replaced, so a client
# cannot put line breaks, markup or a novel into our logs.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
_HANDLER_NAME = "socialcare"
request_id_var: ContextVar[str | None] = ContextVar("socialcare_request_id", default=None)
log = logging.getLogger("socialcare.request")

# Attributes every LogRecord has, and the ones we add that never hold personal data.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_SAFE_EXTRAS = frozenset({"request_id", "method", "endpoint", "status", "duration_ms"})
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def redact(text: str) -> str:
    """Replace personal data in a log text by placeholders such as <EMAIL>."""
    return anonymize_text(text).text


class RequestIdFilter(logging.Filter):
    """Put the id of the request being served (or "-") on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id`; never drops a record."""
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return True


class RedactingFilter(logging.Filter):
    """Redact the merged message, string extras, tracebacks and stacks of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place with personal data replaced; never drops a record."""
        if getattr(record, "_socialcare_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format must not take the caller down
            message = f"unformattable log message {record.msg!r}"
        record.msg, record.args = redact(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and key not in _SAFE_EXTRAS and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info:
            # Formatted once here, so every formatter prints the redacted text instead.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._socialcare_redacted = True
        return True


class _DevServerAccessFilter(logging.Filter):
    # Werkzeug's own access line carries the path and query string (search terms, ids); our
    # request line replaces it.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "werkzeug" and str(record.msg).startswith('"%s"'))


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def formatter(fmt: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT: "json" (one object per line) or "text"."""
    if fmt == "text":
        text = logging.Formatter(_TEXT_FORMAT)
        text.converter = time.gmtime
        return text
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        json_ensure_ascii=False,
        reserved_attrs=[*RESERVED_ATTRS, "_socialcare_redacted"],
    )


def configure(*, level: str = "INFO", fmt: str = "json") -> logging.Handler:
    """Install (or update) our handler on the root logger; safe to call again and again."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(_DevServerAccessFilter())
        handler.addFilter(RequestIdFilter())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter(fmt))
    root.setLevel(level.upper())
    # Two INFO lines per job run (the drain runs every few seconds) would drown everything else.
    quiet = logging.getLogger("apscheduler.executors.default")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)
    return handler


def init_app(app: Flask) -> None:
    """Configure logging from the app's settings and give every request an id and a log line."""
    configure(level=str(app.config["LOG_LEVEL"]), fmt=str(app.config["LOG_FORMAT"]))
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)


def request_id_from(header: str | None) -> str:
    """The client's (or proxy's) request id when it is well formed, else a new one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    request_id_var.set(g.request_id)


def _finish_request(response: Response) -> Response:
    started = g.get("request_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    endpoint = endpoint_label()
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or request_id_from(None)
    from inbox import metrics

    metrics.observe_request(
        endpoint=endpoint, method=request.method, status=response.status_code, seconds=duration
    )
    method = metrics.method_label(request.method)
    extra: dict[str, Any] = {
        "method": method,
        "endpoint": endpoint,
        "status": response.status_code,
        "duration_ms": round(duration * 1000, 1),
        # Made of our endpoint names and a known method only: redacting it would cost more
        # than the rest of the line (about 0.15 ms) and find nothing.
        "_socialcare_redacted": True,
    }
    # The endpoint's name, never the path or query: those hold ids and search terms.
    log.info(
        "%s %s %s %.1f ms", method, endpoint, response.status_code, duration * 1000, extra=extra
    )
    return response


def _end_request(_exc: BaseException | None) -> None:
    request_id_var.set(None)


def endpoint_label() -> str:
    """The matched view's endpoint name, or "unmatched" for a 404 or 405."""
    rule = request.url_rule
    return rule.endpoint if rule is not None else "unmatched"
