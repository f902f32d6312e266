"""The access log's masking (bridge.telemetry.logs): credentials and a GET send's message text
never reach a log line (docs/operations.md#logs)."""

from __future__ import annotations

from bridge.telemetry.logs import mask_atoms, mask_query


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
