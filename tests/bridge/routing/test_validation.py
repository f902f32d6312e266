"""Router.from_config refuses bad [[smsc]] / [[route]] tables with errors that say what to fix."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bridge.config import Config, ConfigError, load_config
from bridge.routing.router import Router
from tests.bridge.routing.test_router import route_name

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "bridge.toml"


def smsc(name="saf", **extra) -> dict:
    return {
        "name": name,
        "host": "smsc.example",
        "port": 2775,
        "system_id": name,
        "password": "pw",
        **extra,
    }


ROUTE = {"name": "ke", "prefixes": ["+254"], "connections": ["saf"]}

SMSC_CASES = [
    ({"port": 0}, r"\[\[smsc\]\] #1 \('saf'\): port must be an integer from 1 to 65535, got 0"),
    ({"port": "2775"}, r"port must be an integer from 1 to 65535, got '2775'"),
    ({"port": 70000}, r"port must be an integer from 1 to 65535, got 70000"),
    ({"host": ""}, r"host must be a non-empty string, got ''"),
    ({"bind_mode": "trx"}, r"bind_mode must be one of 'transceiver', 'pair', got 'trx'"),
    (
        {"long_message": "concat"},
        r"long_message must be one of 'udh', 'udh16', 'sar', 'payload', got 'concat'",
    ),
    ({"message_id_form": "HEX"}, r"message_id_form must be one of 'auto', 'dec', 'hex', 'str'"),
    (
        {"validity_form": "Relative"},
        r"\[\[smsc\]\] #1 \('saf'\): validity_form must be one of 'absolute', 'relative', "
        r"got 'Relative'$",
    ),
    ({"binds": 0}, r"binds must be an integer from 1 to 64, got 0"),
    ({"binds": True}, r"binds must be an integer from 1 to 64, got True"),
    ({"window": -1}, r"window must be an integer from 1 to 10000"),
    ({"tps": 0}, r"tps must be a positive number \(messages per second\)"),
    ({"tps": float("inf")}, r"tps must be a positive number"),
    ({"enquire_link_interval": 0}, r"enquire_link_interval must be a positive number of seconds"),
    ({"system_id": "a" * 16}, r"system_id must be a non-empty string of at most 15 characters"),
    ({"password": "123456789"}, r"password must be a string of at most 8 characters, got '\*{9}'"),
    ({"source_ton": 9}, r"source_ton must be an integer from 0 to 6, got 9"),
    ({"bindmode": "pair"}, r"unknown key 'bindmode'; known keys: .*bind_mode"),
]


@pytest.mark.parametrize("change, message", SMSC_CASES)
def test_bad_smsc_values_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        Router.from_config(Config().replace(smsc=(smsc(**change),), routes=(ROUTE,)))


def test_validity_form_is_absolute_unless_a_connection_says_relative():
    config = Config().replace(smsc=(smsc(), smsc("air", validity_form="relative")))
    assert [c.validity_form for c in config.smsc] == ["absolute", "relative"]


def test_missing_required_smsc_key_is_named():
    table = smsc()
    del table["system_id"]
    with pytest.raises(ConfigError, match=r"\[\[smsc\]\] #1 \('saf'\): system_id is required"):
        Router.from_config(Config().replace(smsc=(table,)))


def test_duplicate_connection_names():
    with pytest.raises(
        ConfigError, match=r"#2 \('saf'\): name 'saf' is used by another \[\[smsc\]\]"
    ):
        Router.from_config(Config().replace(smsc=(smsc(), smsc(host="other"))))


def test_connections_sharing_an_account_must_agree_on_caps():
    tables = (smsc("a", account="acme", max_binds=2), smsc("b", account="acme", max_binds=3))
    with pytest.raises(
        ConfigError, match="'a' and 'b' share SMSC account 'acme' but set different max_binds"
    ):
        Router.from_config(Config().replace(smsc=tables))
    same = (smsc("a", account="acme", max_binds=2), smsc("b", account="acme", max_binds=2))
    assert [c.account for c in Router.from_config(Config().replace(smsc=same)).connections] == [
        "acme"
    ] * 2


ROUTE_CASES = [
    (
        {"connections": ["saf", "nope"]},
        (
            r"\[\[route\]\] #1 \('ke'\): connections names 'nope', which is not an \[\[smsc\]\] "
            r"name; configured: saf"
        ),
    ),
    ({"connections": []}, r"connections must be a non-empty list of \[\[smsc\]\] names"),
    ({"connections": ["saf", "saf"]}, r"connections must be a list without repeats"),
    (
        {"price_per_part": "-0.10"},
        r"price_per_part must be a non-negative decimal such as \"0.80\"",
    ),
    ({"price_per_part": "abc"}, r"price_per_part must be a non-negative decimal"),
    ({"price_per_part": "NaN"}, r"price_per_part must be a non-negative decimal"),
    (
        {"prefixes": ["0701"]},
        (
            r"prefix '0701' is in national form; write it internationally, "
            r"e.g. \"\+254701\""
        ),
    ),
    ({"prefixes": ["+2547x"]}, r"prefixes must be international number prefixes"),
    (
        {"prefixes": [], "carriers": ["Safricom"]},
        r"carrier 'Safricom' is not in phonenumbers' carrier data; check the spelling",
    ),
    ({"prefixes": []}, r"give prefixes or carriers to match, or default = true"),
    ({"default": True}, r"a default route matches every number; remove its prefixes/carriers"),
    ({"default": "yes", "prefixes": []}, r"default must be true or false, got 'yes'"),
    ({"prefix": ["+254"]}, r"unknown key 'prefix'; known keys: .*prefixes"),
]


@pytest.mark.parametrize("change, message", ROUTE_CASES)
def test_bad_route_values_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        Router.from_config(Config().replace(smsc=(smsc(),), routes=({**ROUTE, **change},)))


def test_duplicate_route_names_and_second_default():
    with pytest.raises(
        ConfigError, match=r"#2 \('ke'\): name 'ke' is used by another \[\[route\]\]"
    ):
        Router.from_config(Config().replace(smsc=(smsc(),), routes=(ROUTE, ROUTE)))
    defaults = (
        {"name": "d1", "default": True, "connections": ["saf"]},
        {"name": "d2", "default": True, "connections": ["saf"]},
    )
    with pytest.raises(ConfigError, match=r"#2 \('d2'\): a second default route"):
        Router.from_config(Config().replace(smsc=(smsc(),), routes=defaults))


def test_a_table_that_is_not_a_table():
    with pytest.raises(ConfigError, match=r"\[\[route\]\] #1 must be a table, got str"):
        Router.from_config(Config().replace(smsc=(smsc(),), routes=("ke",)))


def test_the_example_file_loads_and_routes(tmp_path):
    config = load_config(env={}, path=str(EXAMPLE))
    router = Router.from_config(config)
    assert [c.name for c in router.connections] == ["safaricom", "airtel", "aggregator"]
    saf = router.connection("safaricom")
    assert (saf.binds, saf.max_binds, saf.tps, saf.burst) == (2, 4, 100.0, 10)
    assert router.connection("airtel").bind_mode == "pair"
    assert route_name(router, "+254733123456") == "airtel-ke-prefix"
    assert route_name(router, "+254712345678") == "safaricom-ke"
    assert route_name(router, "+254771234567") == "telkom-ke"
    assert router.price("+254712345678") == Decimal("0.65")
    assert router.price("+447700900123") == Decimal("2.50")

    def down(name):
        return name != "safaricom"

    assert [c.name for c in router.connections_for("+254712345678", down)] == [
        "aggregator",
        "safaricom",
    ]
