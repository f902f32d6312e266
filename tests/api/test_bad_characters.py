"""Lone surrogates, control characters, huge JSON integers and a lost ``+``: each gets a 400 that
names the parameter in our words, and nothing is charged or stored."""

from __future__ import annotations

import http.client
import threading
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from api.params import MAX_INT_DIGITS
from tests.conftest import DEMO_PASSWORD, DEMO_USERNAME

JSON = {"Content-Type": "application/json"}


def _post(client, key_headers, body: str, path: str = "/api/v2/sms/send"):
    return client.simulate_post(path, body=body.encode("ascii"), headers={**key_headers, **JSON})


def _balance(bridge_service, demo_account) -> Decimal:
    return bridge_service.balance(demo_account.id).balance


def test_lone_surrogate_in_message_body_is_400_naming_it(
    client, key_headers, bridge_service, demo_account
):
    before = _balance(bridge_service, demo_account)
    r = _post(client, key_headers, '{"numbers": "0701234567", "message_body": "Hi \\ud800"}')
    assert r.status_code == 400, r.text
    assert r.json["field"] == "message_body"
    assert r.json["error"].startswith("message_body contains U+D800, a lone surrogate")
    assert _balance(bridge_service, demo_account) == before


@pytest.mark.parametrize("name", ["reference", "callback_url", "sender_id", "username"])
def test_lone_surrogate_anywhere_is_400_naming_the_parameter(client, key_headers, name):
    body = '{"numbers": "0701234567", "message_body": "Hi", "%s": ["ok", {"x": "\\udfff"}]}'
    r = _post(client, key_headers, body % name)
    assert r.status_code == 400, r.text
    assert r.json["field"] == name and "U+DFFF, a lone surrogate" in r.json["error"]


def test_lone_surrogate_in_a_parameter_name_is_400(client, key_headers):
    r = _post(client, key_headers, '{"numbers": "0701234567", "message_body": "Hi", "\\ud800": 1}')
    assert r.status_code == 400, r.text
    assert r.json["error"].startswith("A parameter name contains U+D800")


def test_nul_after_a_number_is_an_invalid_number_with_help(
    client, key_headers, bridge_service, demo_account
):
    before = _balance(bridge_service, demo_account)
    r = _post(client, key_headers, '{"numbers": "0701234567\\u0000", "message_body": "Hi"}')
    assert r.status_code == 400, r.text
    assert r.json["error"] == "Invalid phone number format."  # the contract's sentence
    assert r.json["invalid_numbers"] == ["0701234567\x00"]
    assert (
        "numbers entry '0701234567\\x00' contains a control character (U+0000)" in (r.json["help"])
    )
    assert _balance(bridge_service, demo_account) == before


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x0c", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_message_body_are_400(client, key_headers, char):
    r = client.simulate_post(
        "/api/v2/sms/send",
        json={"numbers": "0701234567", "message_body": f"Hello{char}there"},
        headers=key_headers,
    )
    assert r.status_code == 400, r.text
    assert r.json == {
        "error": f"message_body contains a control character (U+{ord(char):04X}) at position 6;"
        " remove it (TAB, LF and CR are allowed).",
        "field": "message_body",
    }


def test_tab_lf_and_cr_are_message_content(client, key_headers):
    r = client.simulate_post(
        "/api/v2/sms/send",
        json={"numbers": "0701234567", "message_body": "Line 1\r\nLine 2\tend\n"},
        headers=key_headers,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name", ["sender_id", "reference", "callback_url"])
def test_no_control_character_at_all_in_other_text_parameters(client, key_headers, name):
    r = client.simulate_post(
        "/api/v2/sms/send",
        json={"numbers": "0701234567", "message_body": "Hi", name: "https://a.example/\t"},
        headers=key_headers,
    )
    assert r.status_code == 400, r.text
    assert r.json["field"] == name
    assert r.json["error"].startswith(f"{name} contains a control character (U+0009)")


def test_control_character_in_credentials_is_400_before_any_lookup(client):
    r = client.simulate_post(
        "/v1/sms/send",
        json={
            "username": "demo\x00",
            "password": "pw",
            "numbers": "0701234567",
            "message_body": "Hi",
        },
    )
    assert r.status_code == 400, r.text
    assert r.json["field"] == "username"
    assert r.json["error"].startswith("username contains a control character (U+0000)")


def test_five_thousand_digit_integer_is_400_in_our_words(client):
    r = client.simulate_post(
        "/api/generate-key",
        body=('{"username": "demo", "password": "x", "expiry_days": ' + "9" * 5000 + "}").encode(),
        headers=JSON,
    )
    assert r.status_code == 400, r.text
    assert r.json == {
        "error": f"expiry_days is a number of 5000 digits; send at most {MAX_INT_DIGITS} digits.",
        "field": "expiry_days",
    }
    assert "sys." not in r.text


# --- item 11: a + lost to form encoding, over a real socket -------------------------------
class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_port(app):
    """The app on a real socket (wsgiref, 127.0.0.1, ephemeral port), stopped after the test."""
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _form_post(port: int, body: bytes) -> tuple[int, dict]:
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/v1/sms/send",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


CREDENTIALS = f"username={DEMO_USERNAME}&password={DEMO_PASSWORD}".encode()


def test_form_plus_that_became_a_space_gets_a_hint(http_port, demo_account):
    status, body = _form_post(
        http_port, b"numbers=0701234567,+447911123456&message_body=Hi&" + CREDENTIALS
    )
    assert status == 400, body
    assert body["error"] == "Invalid phone number format."
    assert body["invalid_numbers"] == ["447911123456"]  # the contract's list, as it arrived
    assert body["help"] == (
        "447911123456 would be valid as +447911123456: a bare + in a query string or form body "
        "means a space, so send it as %2B."
    )


def test_form_plus_sent_as_2b_is_accepted(http_port, demo_account):
    status, body = _form_post(http_port, b"numbers=%2B447911123456&message_body=Hi&" + CREDENTIALS)
    assert status == 200, body
    assert [m["number"] for m in body["messages"]] == ["+447911123456"]


def test_no_plus_hint_for_a_number_that_is_invalid_anyway(http_port, demo_account):
    status, body = _form_post(http_port, b"numbers=+12345&message_body=Hi&" + CREDENTIALS)
    assert status == 400, body
    assert body["invalid_numbers"] == ["12345"] and "help" not in body
