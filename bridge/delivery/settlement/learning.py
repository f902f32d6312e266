"""What a connection with ``message_id_form = "auto"`` has learned about its SMSC's ids.

An all-digit id reads as decimal and as hex alike, so on its own it cannot say how the SMSC
spells its receipts. Evidence can, and it is kept per connection in Redis
(``redis_keys.dlr_forms_key``), shared by every worker process:

- "same" (receipts spell the id as the resp did, up to case and leading zeros) is proven by a
  receipt whose id has a letter and matches a resp id exactly: such an id is no decimal number,
  and it was not rewritten. Conclusive; it also overrides a conversion learned from votes.
- a conversion ("hex2dec": hex resp, decimal receipt; "dec2hex": the reverse) is learned from
  ``LEARN_VOTES`` distinct receipts that match no resp id exactly and match through that
  conversion a resp id that cannot be their own exact spelling: for "hex2dec" a resp id with a
  letter, for "dec2hex" a receipt with a letter while no resp id with a letter has been seen.
  Votes, not proof (such a receipt may have overtaken its own resp), so more than one.

Until a connection has learned, nothing is decided by a converted spelling: such receipts are
held (see :mod:`bridge.delivery.settlement.correlation`) and counted here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bridge.redis import keys as redis_keys
from smpp.codec.message_id import CONVERSIONS

log = logging.getLogger(__name__)

LEARN_VOTES = 3  # distinct receipts matching only through one conversion before it is adopted
SAME = "same"
LEARNED_FORMS = (SAME, *CONVERSIONS)


@dataclass
class Forms:
    """One read of a connection's learned state (``learned`` None: still learning)."""

    learned: str | None = None
    resp_hex: bool = False  # a resp id with a-f was seen: the SMSC's resp ids are not decimal
    held: int = 0  # receipts held now (their spellings)
    changed: bool = False  # this process changed ``learned`` (it then retries the held set)


def read_forms(redis, connection: str) -> Forms:
    """The connection's learned state: one round trip."""
    pipe = redis.pipeline(transaction=False)
    pipe.hmget(redis_keys.dlr_forms_key(connection), ["learned", "resp_hex"])
    pipe.scard(redis_keys.dlr_held_key(connection))
    (learned, resp_hex), held = pipe.execute()
    text = learned.decode() if isinstance(learned, bytes) else learned
    return Forms(text if text in LEARNED_FORMS else None, bool(resp_hex), int(held))


def note_resp_hex(redis, connection: str) -> None:
    redis.hset(redis_keys.dlr_forms_key(connection), "resp_hex", 1)


def learn_same(redis, connection: str, forms: Forms, evidence: str) -> None:
    """Conclusive evidence that receipts spell ids as resps do (``evidence``: the id)."""
    if forms.learned == SAME:
        return
    key = redis_keys.dlr_forms_key(connection)
    if forms.learned is None and redis.hsetnx(key, "learned", SAME):
        log.info("connection %s: receipts spell message ids as the resps do", connection)
        forms.learned, forms.changed = SAME, True
        return
    current = redis.hget(key, "learned")  # a conversion, learned by votes here or elsewhere
    current = current.decode() if isinstance(current, bytes) else current
    if current != SAME:
        pipe = redis.pipeline(transaction=True)
        pipe.hset(key, "learned", SAME)
        pipe.hincrby(key, "conflicts", 1)
        pipe.execute()
        forms.changed = True
        log.error(
            "connection %s had learned %s from votes, but receipt id %r matched a resp id"
            " exactly: switched to same; check the receipts settled meanwhile and set"
            " message_id_form for this [[smsc]] if its ids are known",
            connection,
            current,
            evidence,
        )
    forms.learned = SAME


def vote(redis, connection: str, forms: Forms, votes: dict[str, set[str]]) -> None:
    """Record receipts that matched only through a conversion; adopt one at LEARN_VOTES."""
    if forms.learned is not None or not votes:
        return
    pipe = redis.pipeline(transaction=True)
    for conversion, spellings in votes.items():
        vkey = redis_keys.dlr_votes_key(connection, conversion)
        pipe.sadd(vkey, *spellings)
        pipe.scard(vkey)
    counts = pipe.execute()[1::2]
    for conversion, count in zip(votes, counts, strict=True):
        if count >= LEARN_VOTES:
            key = redis_keys.dlr_forms_key(connection)
            if redis.hsetnx(key, "learned", conversion):
                forms.changed = True
                log.warning(
                    "connection %s: %d receipts matched only as %s; adopting it for this"
                    " connection (set message_id_form to fix it in configuration)",
                    connection,
                    count,
                    conversion,
                )
            learned = redis.hget(key, "learned")
            forms.learned = learned.decode() if isinstance(learned, bytes) else learned
            return


def count_held(pipe, connection: str, spellings: list[str], ttl: int) -> None:
    """Queue the commands that mark receipts as held (on a MULTI pipeline)."""
    hkey = redis_keys.dlr_held_key(connection)
    pipe.sadd(hkey, *spellings)
    pipe.expire(hkey, ttl)
    pipe.hincrby(redis_keys.dlr_forms_key(connection), "held_total", len(spellings))


def receipt_forms(redis) -> dict[str, dict]:
    """Every "auto" connection's learned state, for `smpp-bridge status`."""
    report = {}
    for key in redis.scan_iter(match=redis_keys.DLR_FORMS_PREFIX + "*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        connection = name[len(redis_keys.DLR_FORMS_PREFIX) :]
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in redis.hgetall(key).items()
        }
        report[connection] = {
            "learned": fields.get("learned") or "learning",
            "held": redis.scard(redis_keys.dlr_held_key(connection)),
            "held_total": int(fields.get("held_total") or 0),
            "conflicts": int(fields.get("conflicts") or 0),
            "votes": {c: redis.scard(redis_keys.dlr_votes_key(connection, c)) for c in CONVERSIONS},
        }
    return report
