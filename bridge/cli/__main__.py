"""``python -m bridge.cli ...`` == ``smpp-bridge ...`` (children of `run` are started this way)."""

import sys

from bridge.cli import main

sys.exit(main())
