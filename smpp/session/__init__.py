"""One SMPP bind, as the delivery worker uses it: a windowed, self-healing client session.

Public surface (import these from ``smpp.session``): :class:`Session` and
:class:`SessionConfig` (the face callers use), :class:`SubmitRequest` /
:class:`SubmitOutcome` / :func:`requests_for_text` (what goes in and comes back),
:class:`SessionState` / :class:`SessionSnapshot` (the published state) and :class:`MoMessage`.

Inside: ``transport`` (connect + bind with smpplib, then our codec on the owned socket),
``bind`` (:class:`~smpp.session.bind.BindLoop`, the one thread that owns the socket), ``window``,
``throttle`` (rate cap and reconnect back-off), ``inbound`` (deliver_sm/data_sm: receipts vs MO,
the answer status), ``mo`` (MO reassembly), ``state`` and ``submit``. Modules here import their
siblings directly, never this package.
"""

from smpp.session.client import Session, SessionConfig
from smpp.session.mo import MoMessage
from smpp.session.state import SessionSnapshot, SessionState
from smpp.session.submit import SubmitOutcome, SubmitRequest, requests_for_text

__all__ = [
    "MoMessage",
    "Session",
    "SessionConfig",
    "SessionSnapshot",
    "SessionState",
    "SubmitOutcome",
    "SubmitRequest",
    "requests_for_text",
]
