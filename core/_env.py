"""Switches read once at import time."""

import os

#: Set ``LLMTAP_NO_EXTENSIONS=1`` to use the pure-Python twins instead of the
#: compiled core (default: compiled). The test suite refuses to run on the
#: twins unless this is set explicitly, so CI can never silently test Python.
NO_EXTENSIONS: bool = bool(os.environ.get("LLMTAP_NO_EXTENSIONS"))
