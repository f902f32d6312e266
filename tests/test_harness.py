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
