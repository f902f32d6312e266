"""Which account an MO belongs to and whether it opts its sender out or in: pure.

Rules (docs/delivery.md, Inbound): the MO's destination is compared as digits (a leading + is
ignored) with the ``[[inbound]]`` numbers; among that number's tables the one whose keyword is
the MO's first word (any case) wins, else the one without a keyword; else the default account
(``inbound_default_account``); else none (kept unrouted). Only a routed MO can opt out or in.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.config import Config
from bridge.config.inbound import InboundRoute

KEYWORD_MAX = 32  # characters of the first word kept (inbound_messages.keyword)
OPTOUT, OPTIN = "optout", "optin"


@dataclass(frozen=True)
class Decision:
    account: str | None  # username; None = unrouted
    keyword: str | None  # the first word, upper case (None when the text has no word)
    action: str | None  # OPTOUT | OPTIN | None


def first_word(text: str) -> str | None:
    """The first whitespace-separated word, upper case, cut to KEYWORD_MAX; None if none."""
    words = text.split(None, 1)
    return words[0].upper()[:KEYWORD_MAX] if words else None


def digits(address: str) -> str:
    """A number as compared and stored: without blanks and a leading +."""
    return address.strip().replace(" ", "").lstrip("+")


class InboundRouter:
    """Routes MO by destination and first word over the parsed ``[[inbound]]`` tables."""

    def __init__(
        self,
        routes: tuple[InboundRoute, ...],
        default_account: str = "",
        optout: tuple[str, ...] = (),
        optin: tuple[str, ...] = (),
    ) -> None:
        self._by_key = {(r.number, r.keyword): r.account for r in routes}
        self._default = default_account.strip() or None
        self._optout, self._optin = frozenset(optout), frozenset(optin)

    @classmethod
    def from_config(cls, config: Config) -> InboundRouter:
        return cls(
            config.inbound,
            config.inbound_default_account,
            config.optout_keywords,
            config.optin_keywords,
        )

    @property
    def accounts(self) -> set[str]:
        """Every username the tables and the default name."""
        names = set(self._by_key.values())
        if self._default:
            names.add(self._default)
        return names

    def route(self, dest: str, text: str) -> Decision:
        word = first_word(text)
        number = digits(dest)
        account = (
            (self._by_key.get((number, word)) if word else None)
            or self._by_key.get((number, None))
            or self._default
        )
        action = None
        if account is not None and word is not None:
            action = OPTOUT if word in self._optout else OPTIN if word in self._optin else None
        return Decision(account, word, action)
