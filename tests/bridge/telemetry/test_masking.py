"""The access log's masking (bridge.telemetry.logs): credentials and a GET send's message text
never reach a log line (docs/operations.md#logs)."""

from __future__ import annotations

from bridge.telemetry.logs import mask_atoms, mask_query, mask_text


def test_the_message_text_of_a_query_is_masked_in_any_case_and_encoding():
    query = "numbers=0701234567&message_body=Hello+there&MESSAGE%5FBODY=again&sender_id=ACME"
    assert mask_query(query) == (
        "numbers=0701234567&message_body=***&MESSAGE%5FBODY=***&sender_id=ACME"
    )


def test_the_request_line_of_a_get_send_carries_no_credential_and_no_text():
    atoms = {
        "r": "GET /api/v2/sms/send?api_key=sb_x_y&numbers=0701234567&message_body=Hi HTTP/1.1",
        "q": "api_key=sb_x_y&numbers=0701234567&message_body=Hi",
    }
    masked = mask_atoms(atoms)
    assert masked["r"] == (
        "GET /api/v2/sms/send?api_key=***&numbers=0701234567&message_body=*** HTTP/1.1"
    )
    assert masked["q"] == "api_key=***&numbers=0701234567&message_body=***"


def test_a_malformed_request_line_in_an_error_line_is_not_logged():
    line = (
        "Invalid request from ip=127.0.0.1: Invalid HTTP Version: "
        "'there&api_key=sb_abcdefgh_secret HTTP/1.1'"  # message_body=Hi there, unencoded
    )
    assert mask_text(line) == (
        "Invalid request from ip=127.0.0.1: Invalid HTTP Version: <41 characters not logged>"
    )
    chunk = "Invalid request body from ip=::1, after its answer: Invalid chunk size: b'text=hi'"
    assert mask_text(chunk).endswith("Invalid chunk size: <7 characters not logged>")


def test_an_error_line_keeps_a_header_name_and_masks_a_uri_s_secrets():
    assert mask_text("Invalid request from ip=1.2.3.4: Invalid HTTP Header: 'CONTENT-LENGTH'") == (
        "Invalid request from ip=1.2.3.4: Invalid HTTP Header: 'CONTENT-LENGTH'"
    )
    assert mask_text("Error handling request GET /x?api%5Fkey=sb_1&Message_Body=hi&numbers=1") == (
        "Error handling request GET /x?api%5Fkey=***&Message_Body=***&numbers=1"
    )
