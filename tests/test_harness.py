"""The test infrastructure itself: real Redis and PostgreSQL come up and answer."""

import sqlalchemy as sa


def test_redis_server_answers_and_survives_restart(redis_server):
    client = redis_server.client()
    client.set("k", "v")
    redis_server.restart()
    assert redis_server.client().get("k") == b"v"  # AOF kept it


def test_database_url_accepts_queries(database_url):
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()


def test_the_webhook_receiver_does_not_record_a_request_whose_body_never_came():
    """A sender SIGKILLed between a POST's headers and its body sent no request: recording it
    (with an empty body, as 'accepted') made the crash tests fail on a signature check."""
    import socket

    from tests.harness.procs import wait_until
    from tests.harness.webhook_receiver import receiver

    head = "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nwebhook-id: {}\r\n\r\n"
    with receiver() as hooks:
        with socket.create_connection(("127.0.0.1", hooks.port)) as cut:
            cut.sendall(head.format(45, "msg_cut").encode())  # and no body: closed
        with socket.create_connection(("127.0.0.1", hooks.port)) as whole:
            whole.sendall(head.format(2, "msg_whole").encode() + b"{}")
            assert whole.recv(100).startswith(b"HTTP/1.1 200")
        wait_until(lambda: hooks.accepted_ids(), timeout=5, message="the whole request")
    assert hooks.accepted_ids() == ["msg_whole"]
