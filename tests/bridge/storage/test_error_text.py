"""A database error's text never carries the statement's values: the bridge logs such errors
(``database unavailable ...: <error>``, at ERROR), and the values of a send's INSERT are its
message text and numbers (docs/operations.md#logs: message text is never logged)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

SECRET_TEXT = "the message text must not be logged"


def test_a_failed_statement_s_error_names_no_parameter_value(db):
    with pytest.raises(DBAPIError) as caught, db.connect() as conn:
        conn.execute(
            text("SELECT no_such_column FROM accounts WHERE username = :u"), {"u": SECRET_TEXT}
        )
    shown = str(caught.value)
    assert "no_such_column" in shown  # the statement is still named, to find the fault
    assert SECRET_TEXT not in shown
