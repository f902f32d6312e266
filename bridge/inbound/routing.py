"""Which account an MO belongs to and whether it opts its sender out or in: pure.

Rules (docs/delivery.md, Inbound): the MO's words are compared upper case and without the
punctuation around them (``"Stop!"`` is ``STOP``); its destination is compared as digits (a
leading + is ignored) with the ``[[inbound]]`` numbers.

1. ``<opt word> <KEYWORD>`` (``STOP ACME``), where KEYWORD is a keyword table of that number:
   the keyword's account, and the opt word's action.
2. ``<KEYWORD> ...``: the keyword's account; the action of the second word when it is an opt
   word (``ACME STOP``), else of the first (a keyword that is itself an opt word).
3. Else the number's table without a keyword, else the default account
   (``inbound_default_account``), else none (kept unrouted); the first word's action (``STOP``).

Only a routed MO can opt out or in.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.config import Config
from bridge.config.inbound import InboundRoute, bare_word

KEYWORD_MAX = 32  # characters of the first word kept (inbound_messages.keyword)
OPTOUT, OPTIN = "optout", "optin"


@dataclass(frozen=True)
class Decision:
    account: str | None  # username; None = unrouted
    keyword: str | None  # the first word, upper case (None when the text has no word)
    action: str | None  # OPTOUT | OPTIN | None


def words(text: str, most: int = 2) -> list[str]:
    """The first ``most`` words, upper case, without the punctuation around them (a word that
    is only punctuation is none), each cut to KEYWORD_MAX."""
    found: list[str] = []
    for raw in text.split():
        word = bare_word(raw).upper()[:KEYWORD_MAX]
        if word:
            found.append(word)
            if len(found) == most:
                break
    return found


def first_word(text: str) -> str | None:
    """The first word as :func:`words` reads it; None if none."""
    found = words(text, 1)
    return found[0] if found else None


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
        first, second = (words(text) + [None, None])[:2]
        number = digits(dest)
        if first is None:
            return Decision(self._by_key.get((number, None)) or self._default, None, None)
        named = self._by_key.get((number, second)) if second else None
        if named is not None and self._action(first) is not None:  # STOP ACME
            return Decision(named, first, self._action(first))
        keyworded = self._by_key.get((number, first))
        if keyworded is not None:  # ACME STOP (or a keyword that is itself an opt word)
            return Decision(keyworded, first, self._action(second) or self._action(first))
        account = self._by_key.get((number, None)) or self._default
        return Decision(account, first, self._action(first) if account else None)

    def _action(self, word: str | None) -> str | None:
        if word is None:
            return None
        return OPTOUT if word in self._optout else OPTIN if word in self._optin else None
