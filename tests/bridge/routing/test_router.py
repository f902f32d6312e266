"""Router: prefix and carrier matching in order, default route, failover order and prices."""

from __future__ import annotations

from decimal import Decimal

import phonenumbers
import pytest
from phonenumbers import carrier

from bridge.config import Config
from bridge.routing.router import SIMULATOR, Connection, Router, with_simulator


def smsc(name: str, **extra) -> dict:
    return {
        "name": name,
        "host": f"{name}.example",
        "port": 2775,
        "system_id": name[:15],
        "password": "pw",
        **extra,
    }


def config(routes=(), connections=("saf", "air", "agg"), **extra) -> Config:
    return Config().replace(smsc=tuple(smsc(n) for n in connections), routes=tuple(routes), **extra)


def route_name(router: Router, number: str) -> str | None:
    """The name of the route the number takes; None when no route matches."""
    route = router.route(number)
    return route.name if route else None


KENYA = {  # number -> the carrier phonenumbers allocates its prefix to
    "+254701234567": "Safaricom",
    "+254712345678": "Safaricom",
    "+254110123456": "Safaricom",
    "+254733123456": "Airtel",
    "+254750123456": "Airtel",
    "+254100123456": "Airtel",
    "+254771234567": "Telkom",
}


def test_kenyan_examples_have_the_carriers_phonenumbers_says():
    for number, name in KENYA.items():
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        assert carrier.name_for_number(parsed, "en") == name, number
    national = phonenumbers.parse("0701234567", "KE")
    assert carrier.name_for_number(national, "en") == "Safaricom"


def carrier_router(**extra) -> Router:
    return Router.from_config(
        config(
            [
                {
                    "name": "safaricom",
                    "carriers": ["safaricom"],
                    "connections": ["saf", "agg"],
                    "price_per_part": "0.50",
                },
                {
                    "name": "airtel",
                    "carriers": ["AIRTEL"],
                    "connections": ["air", "agg"],
                    "price_per_part": "0.60",
                },
                {"name": "telkom", "carriers": ["Telkom"], "connections": ["agg"]},
            ],
            **extra,
        )
    )


def test_carrier_routes_match_the_carrier_data_case_insensitively():
    router = carrier_router()
    for number, name in KENYA.items():
        assert route_name(router, number) == name.lower(), number
    assert router.price("+254712345678") == Decimal("0.50")
    assert router.price("+254733123456") == Decimal("0.60")
    assert router.price("+254771234567") == Decimal("0.80")  # route without a price: config's


def test_carrier_decisions_agree_with_name_for_number_across_kenyan_ranges():
    """The prefix cache must never change an answer: compare with phonenumbers for many numbers."""
    router = carrier_router()
    by_carrier = {"safaricom": "safaricom", "airtel": "airtel", "telkom": "telkom"}
    checked = 0
    for head in range(100, 800):
        number = f"+254{head}{(head * 7919) % 1000000:06d}"
        parsed = phonenumbers.parse(number)
        if not phonenumbers.is_valid_number(parsed):
            continue
        name = carrier.name_for_number(parsed, "en").casefold()
        assert route_name(router, number) == by_carrier.get(name), number
        checked += 1
    assert checked > 50


def test_no_route_means_no_candidates_and_the_configured_price():
    router = carrier_router(price_per_part=Decimal("1.25"))
    assert router.route("+447700900123") is None
    assert router.connections_for("+447700900123") == []
    assert router.price("+447700900123") == Decimal("1.25")


def test_prefix_routes_match_in_file_order_before_later_carrier_routes():
    router = Router.from_config(
        config(
            [
                {
                    "name": "special",
                    "prefixes": ["+2547123"],
                    "connections": ["agg"],
                    "price_per_part": "0.10",
                },
                {"name": "saf-prefix", "prefixes": ["25471", "+254 70"], "connections": ["saf"]},
                {"name": "safaricom", "carriers": ["Safaricom"], "connections": ["air"]},
                {
                    "name": "everything",
                    "default": True,
                    "connections": ["agg"],
                    "price_per_part": "3",
                },
            ]
        )
    )
    assert route_name(router, "+254712345678") == "special"
    assert route_name(router, "+254719345678") == "saf-prefix"
    assert route_name(router, "+254701234567") == "saf-prefix"
    assert route_name(router, "254701234567") == "saf-prefix"  # without "+"
    assert route_name(router, "+254110123456") == "safaricom"
    assert route_name(router, "+255754123456") == "everything"
    assert router.price("+254712345678") == Decimal("0.10")
    assert router.price("+255754123456") == Decimal(3)


def test_default_route_is_checked_last_wherever_it_is_written():
    router = Router.from_config(
        config(
            [
                {"name": "everything", "default": True, "connections": ["agg"]},
                {"name": "airtel", "prefixes": ["+25473"], "connections": ["air"]},
            ]
        )
    )
    assert [r.name for r in router.routes] == ["airtel", "everything"]
    assert route_name(router, "+254733123456") == "airtel"
    assert route_name(router, "+254712345678") == "everything"


def test_failover_puts_up_connections_first_keeping_the_route_order():
    router = Router.from_config(
        config(
            [
                {"name": "ke", "prefixes": ["+254"], "connections": ["saf", "air", "agg"]},
            ]
        )
    )

    def names(conns):
        return [c.name for c in conns]

    assert names(router.connections_for("+254712345678")) == ["saf", "air", "agg"]
    assert names(router.connections_for("+254712345678", lambda n: n != "saf")) == [
        "air",
        "agg",
        "saf",
    ]
    assert names(router.connections_for("+254712345678", lambda n: n == "agg")) == [
        "agg",
        "saf",
        "air",
    ]
    assert names(router.connections_for("+254712345678", lambda n: False)) == ["saf", "air", "agg"]


def test_without_routes_every_number_goes_to_all_connections_in_file_order():
    router = Router.from_config(config(price_per_part=Decimal("0.90")))
    assert [c.name for c in router.connections_for("+254712345678")] == ["saf", "air", "agg"]
    assert router.price("+12025550123") == Decimal("0.90")


def test_connection_defaults_and_lookup():
    router = Router.from_config(config(connections=("saf",)))
    conn = router.connection("saf")
    assert conn == Connection(
        name="saf", host="saf.example", port=2775, system_id="saf", password="pw"
    )
    assert (conn.bind_mode, conn.binds, conn.max_binds, conn.window, conn.tps) == (
        "transceiver",
        1,
        1,
        10,
        None,
    )
    assert (conn.enquire_link_interval, conn.response_timeout) == (30.0, 10.0)
    assert (conn.dest_ton, conn.dest_npi, conn.message_id_form, conn.long_message) == (
        1,
        1,
        "auto",
        "udh",
    )
    assert conn.account == "saf.example:2775:saf"
    with pytest.raises(KeyError, match="no SMSC connection named 'nope'; configured: saf"):
        router.connection("nope")


def test_max_binds_defaults_to_binds_and_burst_to_a_tenth_of_tps():
    router = Router.from_config(
        Config().replace(
            smsc=(smsc("a", binds=3, tps=250), smsc("b", tps=5), smsc("c", tps=80, tps_burst=40))
        )
    )
    a, b, c = router.connections
    assert (a.max_binds, a.burst, b.burst, c.burst) == (3, 25, 1, 40)


def test_source_address_auto_detects_numeric_senders():
    router = Router.from_config(
        Config().replace(smsc=(smsc("auto"), smsc("fixed", source_ton=3, source_npi=0)))
    )
    auto, fixed = router.connections
    assert auto.source_address("ACME") == ("ACME", 5, 0)
    assert auto.source_address("Acme 24") == ("Acme 24", 5, 0)
    assert auto.source_address("+254700000001") == ("254700000001", 1, 1)
    assert auto.source_address("22141") == ("22141", 1, 1)
    assert fixed.source_address("22141") == ("22141", 3, 0)
    assert fixed.source_address("ACME") == ("ACME", 3, 0)


def test_no_smsc_routes_everything_to_the_simulator():
    base = Config(price_per_part=Decimal("0.70"))
    router = Router.from_config(base)
    (conn,) = router.connections
    assert (conn.name, conn.host, conn.port, conn.system_id, conn.password) == (
        SIMULATOR,
        "127.0.0.1",
        0,
        "bridge",
        "bridge",
    )
    assert router.connections_for("+254712345678") == [conn]
    assert router.price("+447700900123") == Decimal("0.70")

    placed = Router.from_config(base, simulator_address=("127.0.0.1", 40123))
    assert placed.connection(SIMULATOR).port == 40123
    running = Router.from_config(with_simulator(base, "127.0.0.1", 40124))
    assert running.connection(SIMULATOR).port == 40124
    configured = config()
    assert with_simulator(configured, "127.0.0.1", 40124) is configured


def test_routes_may_name_the_simulator_when_no_smsc_is_configured():
    router = Router.from_config(
        Config().replace(
            routes=(
                {
                    "name": "ke",
                    "prefixes": ["+254"],
                    "connections": [SIMULATOR],
                    "price_per_part": "0.40",
                },
            )
        )
    )
    assert router.price("+254712345678") == Decimal("0.40")
    assert router.route("+447700900123") is None
