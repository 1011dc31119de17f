"""atheris harness: the JSONL importer raises only documented errors on any bytes.

make fuzz            # every harness, bounded time each
.venv/bin/python fuzz/fuzz_jsonl.py -max_total_time=30
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from wsshadow.replay.capture.jsonl import read_jsonl
    from wsshadow.replay.errors import WsShadowError


def test_one_input(data: bytes) -> None:
    try:
        for _ in read_jsonl(io.BytesIO(data), "fuzz.jsonl"):
            pass
    except WsShadowError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
