"""gunicorn's logger in the bridge's format (bridge.telemetry.logs), with secrets masked.

``logger_class`` in api/gunicorn_conf.py. gunicorn's error and access logs get the formatter
of ``BRIDGE_LOG_FORMAT`` (text or json), and the root logger the same, so the app's own lines
(``bridge.*``, ``api.*``) come out of the workers in that format too. Access-log atoms are
masked before formatting: the ``api_key``, ``password`` and ``message_body`` query parameters
in ``%(q)s``, ``%(r)s`` and ``%(f)s``, and credential headers (``%({x-api-key}i)s``, ...).
The error log's lines go through :class:`MaskingFilter`: gunicorn's ``Invalid request from
ip=...`` quotes the client's malformed request line (its query, keys and text included).
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from bridge.config import load_config
from bridge.telemetry.logs import MaskingFilter, configure_logging, formatter, mask_atoms


class BridgeLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        log_format = load_config().log_format
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter(log_format))
        configure_logging(log_format, level=cfg.loglevel.upper())
        if not any(isinstance(f, MaskingFilter) for f in self.error_log.filters):
            self.error_log.addFilter(MaskingFilter())

    def atoms(self, resp, req, environ, request_time):
        return mask_atoms(super().atoms(resp, req, environ, request_time))
