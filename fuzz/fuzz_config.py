"""atheris harness: the config loader gives a Config or a ConfigError on any bytes.

make fuzz            # every harness, bounded time each
.venv/bin/python fuzz/fuzz_config.py -max_total_time=30 fuzz/seeds
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from wsshadow.replay.config import Config, load_config
    from wsshadow.replay.errors import ConfigError

_DIR = tempfile.mkdtemp(prefix="wsshadow-fuzz-config-")
_PATH = os.path.join(_DIR, "wsshadow.toml")


def test_one_input(data: bytes) -> None:
    # load_config reads a file: the real path, bytes and all (bad UTF-8 included).
    with open(_PATH, "wb") as f:
        f.write(data)
    try:
        assert isinstance(load_config(_PATH), Config)
    except ConfigError as e:
        assert str(e).startswith(_PATH + ": "), e


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
