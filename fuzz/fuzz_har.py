"""atheris harness: the HAR importer raises only documented errors on any bytes.

make fuzz            # every harness, bounded time each
.venv/bin/python fuzz/fuzz_har.py -max_total_time=30 fuzz/seeds
"""

from __future__ import annotations

import contextlib
import io
import sys

import atheris

with atheris.instrument_imports():
    from wsshadow.recorders.har import read_har
    from wsshadow.replay.errors import WsShadowError


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(WsShadowError):
        read_har(io.BytesIO(data), "fuzz.har")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
