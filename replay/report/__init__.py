"""Reports: the JSON report (``build``) is the contract; every format is rendered from it.

- ``build``: ``build_report`` from the diff's parts, ``exit_status``.
- ``render``: ``render`` / ``write_report`` / ``load_report`` by format name.
- ``schema``: validation of a loaded report; ``terminal``, ``markdown``,
  ``junit``, ``html``: one renderer each (``common`` holds what they share).
"""
