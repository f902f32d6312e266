"""The operator token `smpp-bridge run` makes when none is configured: ``<var>/operator-token``.

Made once (random, 0600, before anything is written to it) and reused on every start, so a
NOC script or the status page keeps working across restarts. ``run`` prints the file's path,
never the token; ``BRIDGE_OPERATOR_TOKEN`` (or ``operator_token`` in the config file), when
set, wins and no file is made.
"""

from __future__ import annotations

from pathlib import Path

from bridge.storage.files import EmptySecretFile, secret_file

TOKEN_FILE = "operator-token"
TOKEN_BYTES = 32  # random bytes of a new token (urlsafe base64: 43 characters)


class TokenFileError(Exception):
    """The token file cannot be used; the sentence says what to do."""


def operator_token_file(var_dir: str | Path) -> tuple[str, Path]:
    """(token, path) of ``<var_dir>/operator-token``, made on first use. A file other users
    could read is narrowed to its owner first."""
    path = Path(var_dir) / TOKEN_FILE
    try:
        return secret_file(path, TOKEN_BYTES, "operator token"), path
    except EmptySecretFile as exc:
        raise TokenFileError(str(exc)) from None
