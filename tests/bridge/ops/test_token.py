"""The operator token file `smpp-bridge run` keeps in var/ (bridge.ops.token)."""

from __future__ import annotations

import os

import pytest

from bridge.ops.token import TokenFileError, operator_token_file


def test_made_once_private_and_reused(tmp_path):
    token, path = operator_token_file(tmp_path)
    assert len(token) >= 40 and path == tmp_path / "operator-token"
    assert path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o644)  # loosened by someone: narrowed again, same token
    assert operator_token_file(tmp_path) == (token, path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_empty_file_says_what_to_do(tmp_path):
    (tmp_path / "operator-token").write_text("\n")
    with pytest.raises(TokenFileError, match="delete it"):
        operator_token_file(tmp_path)
