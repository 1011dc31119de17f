"""``python -m replay``: the ``wsshadow`` command line."""

from replay.cli import main

main()
