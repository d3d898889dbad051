"""Schemathesis hooks of OneDoor's fuzz run (`cargo xtask fuzz-api`).

Path ids name a real case or referral (`ONEDOOR_FUZZ_IDS`, set by the run
from an application it submits first), so that each operation reaches its
logic rather than a 404.

A scan is uploaded as the raw bytes of the file. The fuzzer sends bytes that
start like a PDF and bytes that do not: the service must keep the first
whole and refuse the second by their content, never answer 5xx.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

_IDS = {name: value for name, value in json.loads(os.environ.get("ONEDOOR_FUZZ_IDS", "{}")).items() if value}


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters:
        for name in path_parameters.keys() & _IDS.keys():
            path_parameters[name] = _IDS[name]
    return path_parameters


def _scans(magic: bytes):
    anything = st.binary(max_size=4096)
    return st.one_of(anything, anything.map(lambda rest: magic + rest))


schemathesis.openapi.media_type("application/pdf", _scans(b"%PDF-1.7\n"))
