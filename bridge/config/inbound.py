"""Inbound (mobile-originated) routing and opt-out words: ``[[inbound]]`` tables and the
``inbound_*`` / ``optout_keywords`` / ``optin_keywords`` settings, read and checked once.

An ``[[inbound]]`` table routes MO sent to ``number`` (a short code or long number, digits with
an optional leading +), optionally only when its first word is ``keyword`` (any case), to the
account ``account`` (its username). A keyword route beats the number's route without one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from bridge.config.reader import ConfigError, Table

_NUMBER = re.compile(r"\+?\d{3,15}")
_WORD = re.compile(r"[^\s]{1,32}")
_KNOWN = ("number", "keyword", "account")

DEFAULT_OPTOUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_OPTIN = ("START", "UNSTOP")


def short_code(text: str) -> str | None:
    """``text`` as an inbound number's digits (no +) when it is one (3 to 15 digits, a leading +
    allowed), else None: the rule of ``[[inbound]] number`` and of the inbox's ``to`` filter."""
    return text.lstrip("+") if _NUMBER.fullmatch(text) else None


def bare_word(word: str) -> str:
    """``word`` without the punctuation (Unicode category P) before and after it: how an MO's
    words are compared with keywords and opt words ("Stop!" is STOP, "(ACME)" is ACME)."""
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[start:end]


def _one_word(word: str) -> bool:
    """A keyword or opt word: 1-32 characters, no blank, no punctuation at either end (an MO's
    words are compared without it, so such a word could never match)."""
    return bool(_WORD.fullmatch(word)) and bare_word(word) == word


@dataclass(frozen=True)
class InboundRoute:
    """MO to ``number`` (digits, no +) whose first word is ``keyword`` (upper case; None: any
    word) belong to the account named ``account``."""

    number: str
    keyword: str | None
    account: str


def read_inbound(raw: Any) -> tuple[InboundRoute, ...]:
    """The ``[[inbound]]`` tables as InboundRoutes; ConfigError naming the table and key."""
    if all(isinstance(r, InboundRoute) for r in raw):
        return tuple(raw)
    routes: list[InboundRoute] = []
    seen: dict[tuple[str, str | None], int] = {}
    for i, item in enumerate(raw, 1):
        t = Table(item, f"[[inbound]] #{i}", _KNOWN)
        number = t.text("number").strip()
        digits = short_code(number)
        if digits is None:
            raise t.fail("number", "a short code or number of 3 to 15 digits (+ allowed)", number)
        keyword = t.text("keyword", None) if t.raw.get("keyword") is not None else None
        if keyword is not None:
            keyword = keyword.strip()
            if not _one_word(keyword):
                raise t.fail(
                    "keyword",
                    "one word of at most 32 characters, without punctuation at either end",
                    keyword,
                )
            keyword = keyword.upper()
        account = t.text("account", max_len=64).strip()
        route = InboundRoute(digits, keyword, account)
        key = (route.number, route.keyword)
        if key in seen:
            raise ConfigError(
                f"[[inbound]] #{i}: number {number!r}"
                + (f" with keyword {keyword!r}" if keyword else " without a keyword")
                + f" is already routed by [[inbound]] #{seen[key]}; keep one of them"
            )
        seen[key] = i
        routes.append(route)
    return tuple(routes)


def keywords(raw: Any) -> tuple[str, ...]:
    """The parser of optout_keywords / optin_keywords: "A, b" or ["A", "b"] -> ("A", "B")."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(str(item).strip().upper() for item in items if str(item).strip())


def check(config: Any) -> None:
    """Check the keyword lists and the dedupe window of ``config``; ConfigError names them."""
    for name, var in (
        ("optout_keywords", "BRIDGE_OPTOUT_KEYWORDS"),
        ("optin_keywords", "BRIDGE_OPTIN_KEYWORDS"),
    ):
        for word in getattr(config, name):
            if not _one_word(word):
                raise ConfigError(
                    f"{name} ({var}): {word!r} must be one word of 1-32 characters, "
                    "without punctuation at either end"
                )
    both = set(config.optout_keywords) & set(config.optin_keywords)
    if both:
        raise ConfigError(
            f"optout_keywords and optin_keywords both hold {sorted(both)[0]!r}; "
            "a word must either opt out or opt in"
        )
    window = config.inbound_dedupe_seconds
    if isinstance(window, bool) or not isinstance(window, int | float) or window < 1:
        raise ConfigError(
            "inbound_dedupe_seconds (BRIDGE_INBOUND_DEDUPE_SECONDS) must be at least 1, "
            f"got {window!r}"
        )
