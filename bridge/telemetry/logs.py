"""One log format for every process: ``BRIDGE_LOG_FORMAT=text`` (default) or ``json``.

Every command (``run``, ``api``, ``worker``, ``webhooks``, ``simulator``) calls
:func:`configure_logging` first, and gunicorn's logger class (api/gunicorn_logging.py) puts the
same formatter on its error and access logs, so one machine's processes write one format.

- text: ``2026-01-02 03:04:05,678 INFO 1234 bridge.delivery.worker: message [message_id=...]``
- json: one object a line (python-json-logger): ``time``, ``level``, ``logger``, ``pid``,
  ``message``, ``exc_info`` for a traceback, and the record's context fields.

A log line about one message carries its ids as fields (``extra=message_context(...)``):
``message_id``, ``batch_id`` and ``smsc_id`` (the SMSC's id of the part). Secrets and message
text are never logged at info or above; the access log masks the ``api_key``, ``password``
and ``message_body`` query parameters (:func:`mask_query`) and credential headers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO
from urllib.parse import unquote_plus

from pythonjsonlogger.json import JsonFormatter

CONTEXT_FIELDS = ("message_id", "batch_id", "smsc_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "process", "message")
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
MASK = "***"
# query parameters whose values never reach a log (compared after decoding, any case): the
# credentials, and the message text of a GET send (message text is never logged)
SECRET_PARAMS = frozenset({"api_key", "password", "message_body"})
# request headers gunicorn's access log could show with %({name}i)s: masked too
SECRET_HEADERS = frozenset({"{x-api-key}i", "{authorization}i", "{cookie}i", "{idempotency-key}i"})


class _State:
    format: str = "text"


def message_context(
    message_id: str | None = None, batch_id: str | None = None, smsc_id: str | None = None
) -> dict[str, str]:
    """``extra=`` for a log call about one message: the ids that are known, as fields."""
    given = {"message_id": message_id, "batch_id": batch_id, "smsc_id": smsc_id}
    return {k: str(v) for k, v in given.items() if v}


class TextFormatter(logging.Formatter):
    """The text line, with the record's message context appended as ``[key=value ...]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k)]
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # a traceback stays below the line
        return f"{head} [{' '.join(fields)}]{newline}{rest}"


def json_formatter() -> logging.Formatter:
    """One JSON object a line; extra fields (the message context) are kept as fields."""
    return JsonFormatter(list(JSON_FIELDS), rename_fields=JSON_RENAMES, json_ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    return json_formatter() if log_format == "json" else TextFormatter()


def configure_logging(config: Any, level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """The root logger writes ``config.log_format`` (text or json; a Config or the format's
    name) lines to ``stream`` (stderr), replacing what a previous call (or basicConfig)
    installed. alembic says only warnings."""
    log_format = getattr(config, "log_format", config)
    _State.format = log_format
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.captureWarnings(True)


def say(line: str, stream: TextIO | None = None) -> None:
    """A line a command prints for its operator (``run``'s start lines and banner): as it is
    in text mode, one JSON object in json mode (so the process's output stays parseable)."""
    out = stream or sys.stdout
    if _State.format == "json":
        record = {
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "level": "INFO",
            "logger": "smpp-bridge",
            "message": line,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        out.write(line + "\n")
    out.flush()


def json_mode() -> bool:
    return _State.format == "json"


# ---------------------------------------------------------------------- masking
_PAIR = re.compile(r"([^&;=]*)(=?)([^&;]*)")


def mask_query(query: str | None) -> str:
    """``query`` with the values of ``api_key``, ``password`` and ``message_body`` (however the
    names are percent-encoded or cased) replaced by ``***``; everything else kept as sent."""
    if not query:
        return query or ""

    def one(match: re.Match[str]) -> str:
        name, eq, value = match.groups()
        if eq and value and unquote_plus(name).strip().lower() in SECRET_PARAMS:
            return f"{name}={MASK}"
        return match.group(0)

    return _PAIR.sub(one, query)


def mask_uri(uri: str | None) -> str:
    """A request target or URL with its query masked (:func:`mask_query`)."""
    if not uri:
        return uri or ""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    query, hash_sep, fragment = query.partition("#")
    return f"{path}?{mask_query(query)}{hash_sep}{fragment}"


# a quoted detail of a parser error (the request line, a version, a chunk-size line): from the
# first quote to the last, since the text inside may hold quotes of its own
_QUOTED = re.compile(r"(?:\bb)?'(.*)'", re.DOTALL)
# what a header name looks like (kept in an error line: it tells the client's fault, holds no
# value); anything else quoted is the client's bytes and is not logged
_NAME_LIKE = re.compile(r"[A-Za-z0-9!#$%&*+.^_`|~\\-]{1,64}")
_ANY_PAIR = re.compile(r"([^\s&;?=']+)=([^&;\s']*)")


def mask_text(text: str) -> str:
    """A log line from gunicorn's error log (``Invalid request from ip=...: <parser error>``,
    ``Error handling request GET /path?query``) without the client's request bytes: a quoted
    detail that is not a header name becomes ``<N characters not logged>`` (a malformed request
    line, e.g. an unencoded space, holds its whole query: keys, message text), and the values of
    ``api_key``, ``password`` and ``message_body`` left unquoted are masked."""

    def quoted(match: re.Match[str]) -> str:
        inner = match.group(1)
        if _NAME_LIKE.fullmatch(inner):
            return match.group(0)
        return f"<{len(inner)} characters not logged>"

    def pair(match: re.Match[str]) -> str:
        if unquote_plus(match.group(1)).strip().lower() in SECRET_PARAMS:
            return f"{match.group(1)}={MASK}"
        return match.group(0)

    return _ANY_PAIR.sub(pair, _QUOTED.sub(quoted, text))


class MaskingFilter(logging.Filter):
    """Rewrites each record's message with :func:`mask_text` (on gunicorn's error log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        masked = mask_text(record.getMessage())
        record.msg, record.args = masked, None
        return True


def mask_atoms(atoms: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's access-log atoms with secrets masked: the query (``q``), the request line
    (``r``), the referer (``f``) and credential headers."""
    masked = dict(atoms)
    if masked.get("q"):
        masked["q"] = mask_query(masked["q"])
    if isinstance(masked.get("r"), str):
        method, _, rest = masked["r"].partition(" ")
        target, space, protocol = rest.rpartition(" ") if " " in rest else (rest, "", "")
        masked["r"] = f"{method} {mask_uri(target)}{space}{protocol}"
    if isinstance(masked.get("f"), str):
        masked["f"] = mask_uri(masked["f"])
    for name in SECRET_HEADERS & masked.keys():
        masked[name] = MASK
    return masked
