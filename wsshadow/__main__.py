"""``python -m wsshadow``: the ``wsshadow`` command line."""

from wsshadow.replay.cli import main

main()
