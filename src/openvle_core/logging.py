"""Structured logs: JSON lines in production, readable lines in a terminal, never a secret.

`configure_logging(settings)` installs one stderr handler on the root logger (LOG_LEVEL,
LOG_FORMAT). `log_context(operation_id=..., kind=...)` and `bind(vmid=...)` put fields
into a contextvar that every line logged inside (in that task and the tasks it starts)
carries. `SecretFilter` rewrites each record before any handler sees it: the values of
the configured secrets and anything shaped like a credential (PVEAPIToken=..., Bearer
tokens, passwords in URLs, password=...) become `***`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from openvle_core.settings import Settings

REDACTED = "***"
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "openvle_log_context", default=MappingProxyType({})
)
_PATTERNS = (
    re.compile(r"(PVEAPIToken=[^\s=!]+![^\s=]+=)[^\s'\",;]+"),
    re.compile(r"((?:Bearer|bearer)\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(@)"),
    re.compile(
        r"((?:password|passwd|secret|token_value|cipassword)[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&]+",
        re.IGNORECASE,
    ),
)
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_HIDDEN = {"context", "color_message"}  # uvicorn adds an ANSI-coloured copy of the message


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged inside the block (None values are dropped)."""
    token = _CONTEXT.set({**_CONTEXT.get(), **_clean(fields)})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: Any) -> None:
    """Add `fields` to the current context until the enclosing `log_context` ends."""
    _CONTEXT.set({**_CONTEXT.get(), **_clean(fields)})


def current_context() -> dict[str, Any]:
    """The fields lines logged here would carry."""
    return dict(_CONTEXT.get())


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret and credential-shaped substring replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    """Keep the prefix group (and a closing group), hide the secret between them."""
    tail = match.group(2) if match.re.groups > 1 else ""
    return match.group(1) + REDACTED + tail


class SecretFilter(logging.Filter):
    """Renders each record's message and exception with secrets removed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        record.exc_info = None  # the redacted text stands in for it
        return True


class ContextFilter(logging.Filter):
    """Copies the contextvar fields (operation_id, vmid, ...) onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = {**_CONTEXT.get(), **getattr(record, "context", {})}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "context", {}))
        entry.update(_extras(record))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO  logger [operation_id=... vmid=101] message` for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = {**getattr(record, "context", {}), **_extras(record)}
        ctx = " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]" if fields else ""
        line = f"{when} {record.levelname:<7} {record.name}{ctx} {record.getMessage()}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """Fields passed with `extra=` (anything not a standard LogRecord attribute)."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and key not in _HIDDEN and not key.startswith("_")
    }


def settings_secrets(settings: Settings) -> list[str]:
    """Every SecretStr value of the settings, and the passwords inside secret URLs."""
    found: list[str] = []
    for group_name in type(settings).model_fields:
        _collect_models(getattr(settings, group_name), found)
    return found


def _collect_models(model: BaseModel, found: list[str]) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            plain = value.get_secret_value()
            found.append(plain)
            match = re.search(r"://[^/\s:@]*:([^@\s/]+)@", plain)
            if match:
                found.append(match.group(1))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (it may be replaced after set-up)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def setup_logging(settings: Settings, *, stream: Any = None) -> logging.Handler:
    """`configure_logging` for LOG_LEVEL and LOG_FORMAT, hiding every configured secret."""
    return configure_logging(
        settings.log.level, settings.log.format, secrets=settings_secrets(settings), stream=stream
    )


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, secrets: Iterable[str] = (), stream: Any = None
) -> logging.Handler:
    """Install the one root handler (replacing an earlier one of ours); return it."""
    handler: logging.StreamHandler[Any] = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_openvle", False):
            root.removeHandler(old)
    handler._openvle = True  # type: ignore[attr-defined]  # marks our handler for re-config
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
