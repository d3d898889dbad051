"""Schemathesis hooks of OneDoor's fuzz run (`cargo xtask fuzz-api`).

A scan is uploaded as the raw bytes of the file. The fuzzer sends bytes that
start like a PDF and bytes that do not: the service must keep the first
whole and refuse the second by their content, never answer 5xx.
"""

import schemathesis
from hypothesis import strategies as st


def _scans(magic: bytes):
    anything = st.binary(max_size=4096)
    return st.one_of(anything, anything.map(lambda rest: magic + rest))


schemathesis.openapi.media_type("application/pdf", _scans(b"%PDF-1.7\n"))
