"""The database, the source of truth for accounts, keys, messages, their states and the ledger.

Modules (import the one you need, e.g. ``from bridge.storage.db import Database``): ``db``
(engines, pragmas, migrations to head, the write lock per transaction), ``write_lock`` (the
cross-process SQLite writer lock), ``models`` (the schema; ``migrations/`` creates exactly it),
``states`` (:class:`~bridge.storage.states.MessageState` and its ranks), ``driver`` (group-commit
statements on the DBAPI cursor), ``ledger`` (money: charges, refunds, balances, audit sums),
``accounts``, ``apikeys``, ``passwords`` (bounded argon2 hashing), ``webhook_secrets`` and
``files`` (private file modes). This package imports ``bridge.config`` and ``bridge.errors`` only.
"""
