"""The operator token `smpp-bridge run` makes when none is configured: ``<var>/operator-token``.

Made once (random, 0600, before anything is written to it) and reused on every start, so a
NOC script or the status page keeps working across restarts. ``run`` prints the file's path,
never the token; ``BRIDGE_OPERATOR_TOKEN`` (or ``operator_token`` in the config file), when
set, wins and no file is made.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_FILE = "operator-token"
TOKEN_BYTES = 32  # random bytes of a new token (urlsafe base64: 43 characters)


class TokenFileError(Exception):
    """The token file cannot be used; the sentence says what to do."""


def operator_token_file(var_dir: str | Path) -> tuple[str, Path]:
    """(token, path) of ``<var_dir>/operator-token``, made on first use. A file other users
    could read is narrowed to its owner first."""
    path = Path(var_dir) / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        token = path.read_text().strip()
        if not token:
            raise TokenFileError(
                f"{path} is empty; delete it and a new operator token is made on the next start"
            ) from None
        return token, path
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, path
