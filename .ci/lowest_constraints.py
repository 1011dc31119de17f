"""Print pip constraints pinning every runtime dependency to the lowest version pyproject allows.

Used by `make test-lowest` (run by .ci/run) so that the floors in
pyproject.toml stay true: the suite runs against exactly those versions.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        spec, _, marker = requirement.partition(";")
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(.*)", spec)
        if m is None:
            continue
        name, versions = m.group(1), m.group(2)
        floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", versions)
        if floor is None:
            print(f"{requirement}: no >= floor", file=sys.stderr)
            return 2
        print(f"{name}=={floor.group(1)}" + (f"; {marker.strip()}" if marker else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
