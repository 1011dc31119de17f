"""``python -m wsshadow.replay``: the ``wsshadow`` command line."""

from wsshadow.replay.cli import main

main()
