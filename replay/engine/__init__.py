"""Replay: a capture's client side played against a target.

- ``run``: ``replay_capture`` / ``replay_session`` and ``ReplayOptions``.
- ``options``: the one declaration of every replay option, and how config
  file, command line and pytest options are folded into ``ReplayOptions``.
- ``pacing`` (causal / recorded / asap), ``carryover`` (server-issued values
  the client echoes), ``credentials`` (placeholders filled from the
  environment), ``targets`` (route maps): pure planning, no sockets.
"""
