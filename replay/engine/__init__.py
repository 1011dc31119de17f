"""Replay: a capture's client side played against a target.

- ``run``: ``replay_capture``, a capture's sessions scheduled and stored as a run.
- ``session``: ``replay_session``, one session (prepare, connect, drive, finish).
- ``model``: ``ReplayOptions``, ``SessionOutcome``, ``RunResult``, ``ReplayObserver``.
- ``links`` and ``scenarios``: sessions that interact, found and replayed together.
- ``options``: config file, command line and pytest options (each declared
  once, in ``wsshadow.replay.options``) folded into ``ReplayOptions``.
- ``pacing`` (causal / recorded / asap), ``carryover`` (server-issued values
  the client echoes), ``credentials`` (placeholders filled from the
  environment), ``targets`` (route maps): pure planning, no sockets.
"""
