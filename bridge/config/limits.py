"""The ranges of the API, message and sweeper knobs of :class:`bridge.config.Config`, checked
once: a value that would refuse every request (a rate limit or body limit of 0), charge a
negative price or make the sweeper spin stops start-up with one line naming its variable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import phonenumbers

from bridge.config.reader import ConfigError, check_least
from bridge.errors import InvalidInput
from bridge.sender_id import validate_sender_id

# field -> (environment variable, smallest value)
LIMITS = {
    "api_workers": ("BRIDGE_API_WORKERS", 1),
    "max_body_bytes": ("BRIDGE_MAX_BODY_BYTES", 1),
    "rate_limit_per_minute": ("BRIDGE_RATE_LIMIT", 1),
    "max_parts": ("BRIDGE_MAX_PARTS", 1),
    "max_recipients": ("BRIDGE_MAX_RECIPIENTS", 1),
    "idempotency_ttl_seconds": ("BRIDGE_IDEMPOTENCY_TTL", 1),
    "sweeper_grace_seconds": ("BRIDGE_SWEEPER_GRACE", 0),
    "sweeper_interval_seconds": ("BRIDGE_SWEEPER_INTERVAL", 0.01),
}
MAX_PARTS = 255  # the concatenation header's part count is one octet (smpp.codec.concat)


def check(config: Any) -> tuple[str, str]:
    """Check the knobs of LIMITS, max_parts' top, price_per_part, default_region and
    default_sender_id (the rule of an account's, ``account create --sender-id``); the region in
    upper case (phonenumbers knows only upper-case regions) and the sender id stripped."""
    check_least(config, LIMITS)
    if config.max_parts > MAX_PARTS:
        raise ConfigError(
            f"max_parts (BRIDGE_MAX_PARTS) must be from 1 to {MAX_PARTS} (a concatenated SMS "
            f"has at most {MAX_PARTS} parts), got {config.max_parts!r}"
        )
    price = config.price_per_part
    if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
        raise ConfigError(
            f'price_per_part (BRIDGE_PRICE_PER_PART) must be a decimal of at least 0 ("0.80"), '
            f"got {price!r}"
        )
    region = str(config.default_region).strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            "default_region (BRIDGE_DEFAULT_REGION) must be an ISO 3166 region code the "
            f"phone number data knows (KE, UG, TZ, GB...), got {config.default_region!r}"
        )
    try:
        sender = validate_sender_id(str(config.default_sender_id))
    except InvalidInput as exc:
        raise ConfigError(
            f"default_sender_id (BRIDGE_DEFAULT_SENDER_ID): {exc.message.removesuffix('.')}"
        ) from None
    return region, sender
