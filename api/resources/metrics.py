"""``GET /metrics``: Prometheus text format, for the operator's scraper (not a customer page:
it is left out of the OpenAPI document and needs no API key).

Readable with the operator token (``Authorization: Bearer``, BRIDGE_OPERATOR_TOKEN) or from a
client address in ``metrics_allow_networks`` (default 127.0.0.0/8 and ::1); anyone else gets
401. The counters cover every process of the machine (bridge.telemetry.metrics); the Redis gauges are
read as the scrape is answered (bridge.ops.scrape).
"""

from __future__ import annotations

import falcon

from bridge.config import SIMULATOR, Config
from bridge.errors import Unauthorized
from bridge.ops.access import address_allowed, networks, token_matches
from bridge.ops.scrape import RedisState
from bridge.telemetry.metrics import exposition

PATH = "/metrics"
NO_TOKEN = "This address may not read /metrics and no operator token is configured."
NO_TOKEN_HELP = (
    "Scrape from an address in BRIDGE_METRICS_ALLOW_NETWORKS, or set BRIDGE_OPERATOR_TOKEN and "
    "send Authorization: Bearer <token>."
)
BAD_TOKEN = "The operator token is missing or wrong."
BAD_TOKEN_HELP = (
    "Send Authorization: Bearer <operator token> (BRIDGE_OPERATOR_TOKEN), or scrape from an "
    "address in BRIDGE_METRICS_ALLOW_NETWORKS."
)


class Metrics:
    """The scrape endpoint."""

    auth = "operator"  # not "api_key": the API-key guard and its rate limit leave it alone

    def __init__(self, config: Config, redis) -> None:
        self._token = config.operator_token
        self._allowed = networks(config.metrics_allow_networks)
        names = [c.name for c in config.smsc] or [SIMULATOR]
        self._state = RedisState(redis, names)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not address_allowed(req.remote_addr, self._allowed):
            if not self._token:
                raise Unauthorized(NO_TOKEN, help=NO_TOKEN_HELP)
            if not token_matches(self._token, req.get_header("Authorization")):
                raise Unauthorized(BAD_TOKEN, help=BAD_TOKEN_HELP)
        body, content_type = exposition([self._state])
        resp.data = body
        resp.content_type = content_type
