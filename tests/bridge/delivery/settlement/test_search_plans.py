"""Every listing filter and the batch totals are served from an index, with no full scan and no
sort, on SQLite and PostgreSQL: the plans the databases choose for the real statements
(captured as they run) over a populated table (PostgreSQL with fresh statistics)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from bridge.delivery.settlement.search import Filters, batch_summary, list_messages
from bridge.storage.paging import Key
from tests.harness.messages import Shape, analyze, create_account, insert_messages

N = 30_000
SHAPE = Shape(batch_size=100, numbers=3_000, references=50)
ACCOUNT = "ix_messages_account_id_created_at_id"
BATCH = "ix_messages_batch_id_account_id_created_at_id"
REFERENCE = "ix_messages_account_id_client_reference_created_at_id"
STATE = "ix_messages_account_id_state_created_at_id"
NUMBER = "ix_messages_account_id_destination_created_at_id"
T0 = SHAPE.start
SMALL_SORT = 1_000


@pytest.fixture
def populated(db):
    mine = create_account(db, "mine")
    other = create_account(db, "other")
    insert_messages(db, mine, N, SHAPE)
    insert_messages(db, other, N // 3, SHAPE)
    analyze(db)
    with db.connect() as conn:
        batch = conn.exec_driver_sql(
            f"SELECT batch_id FROM messages WHERE account_id = {mine} LIMIT 1 OFFSET 12345"
        ).scalar_one()
    return mine, batch


def captured(db, run):
    """(statement, parameters) of every SELECT on messages that ``run(conn)`` executes."""
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "messages" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        with db.connect() as conn:
            run(conn)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    assert seen
    return seen


def plan(db, statement, parameters, sorts: bool = False) -> tuple[set[str], list[str]]:
    """(index names used, problems: full scans of messages, and unless ``sorts``, sorts).

    PostgreSQL may sort what a bitmap scan of the right index found when its statistics say
    that is a handful of rows (a batch of 75): that sort is allowed up to SMALL_SORT rows."""
    with db.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            details = [
                row[3]
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
            used = {d.split(" INDEX ")[1].split()[0] for d in details if " INDEX " in d}
            bad = [d for d in details if d.startswith("SCAN") or ("TEMP B-TREE" in d and not sorts)]
            return used, bad + ([] if used else details)
        doc = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    doc = json.loads(doc) if isinstance(doc, str) else doc
    used, bad, pending = set(), [], [doc[0]["Plan"]]
    while pending:
        node = pending.pop()
        pending += node.get("Plans", [])
        kind = node["Node Type"]
        if "Index Name" in node:
            used.add(node["Index Name"])
        if kind == "Seq Scan" and node.get("Relation Name") == "messages":
            bad.append(kind)
        if kind in ("Sort", "Incremental Sort") and not sorts and node["Plan Rows"] > SMALL_SORT:
            bad.append(f"{kind} of {node['Plan Rows']} rows")
    return used, bad


def _filters(batch: str) -> list[tuple[str, Filters, set[str]]]:
    since = T0 + timedelta(seconds=100)
    until = T0 + timedelta(seconds=250)
    return [
        ("all", Filters(), {ACCOUNT}),
        ("batch", Filters(batch_id=batch), {BATCH}),
        ("reference", Filters(reference="ref-7"), {REFERENCE}),
        ("state", Filters(state="undelivered"), {STATE}),
        ("common state", Filters(state="delivered"), {STATE, ACCOUNT}),
        ("number", Filters(number="+254700000042"), {NUMBER}),
        ("since", Filters(since=since), {ACCOUNT}),
        ("since-until", Filters(since=since, until=until), {ACCOUNT}),
        ("state-since", Filters(state="failed", since=since), {STATE}),
        ("number-until", Filters(number="+254700000042", until=until), {NUMBER}),
        ("batch-state", Filters(batch_id=batch, state="delivered"), {BATCH}),
        ("reference-number", Filters(reference="ref-7", number="+254700000042"), {NUMBER}),
        ("state-reference", Filters(state="delivered", reference="ref-7"), {REFERENCE}),
        ("all four", Filters(batch, "ref-7", "delivered", "+254700000042"), {BATCH}),
    ]


def test_each_filter_walks_its_index_without_a_sort(db, populated):
    account_id, batch = populated
    from bridge.storage.paging import encode_cursor

    middle = encode_cursor(Key(T0 + timedelta(seconds=200), "0" * 26))
    for name, filters, expected in _filters(batch):
        for cursor in (None, middle):
            statements = captured(
                db, lambda conn, f=filters, c=cursor: list_messages(conn, account_id, f, 100, c)
            )
            listing = [s for s in statements if "ORDER BY" in s[0]]
            assert len(listing) == 1
            used, bad = plan(db, *listing[0])
            assert not bad, (name, cursor, bad, used)
            assert used, (name, cursor)
            if expected is not None:
                assert used <= expected, (name, cursor, used)


def test_batch_totals_read_the_batch_index_and_the_ledger_by_message(db, populated):
    account_id, batch = populated
    statements = captured(db, lambda conn: batch_summary(conn, account_id, batch))
    for statement, parameters in statements:
        if "FROM messages" not in statement and "JOIN messages" not in statement:
            continue
        used, bad = plan(db, statement, parameters, sorts=True)  # GROUP BY <= 10,000 rows
        assert not bad, (statement, bad)
        # the refund sum may start from the (here empty) ledger and reach messages by key
        assert BATCH in used or "JOIN" in statement, (statement, used)


def test_the_page_is_right_on_the_populated_table(db, populated):
    """The plans above answer correctly: a page is the newest messages of the account only."""
    account_id, _ = populated
    with db.connect() as conn:
        page = list_messages(conn, account_id, Filters(), 100)
        newest = conn.exec_driver_sql(
            "SELECT id FROM messages WHERE account_id = ? ORDER BY created_at DESC, id DESC"
            " LIMIT 100".replace("?", str(int(account_id)))
        ).scalars()
        assert [m.message_id for m in page.messages] == list(newest)
        assert page.next_cursor is not None
        assert all(m.created_at <= datetime(2031, 1, 1, tzinfo=UTC) for m in page.messages)
