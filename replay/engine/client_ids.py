"""A client id of its own for each replay (pure): MQTT's CONNECT.

An MQTT broker holds one session per client id and takes it over from the
connection that had it when another CONNECT names the same id (MQTT 3.1.1
section 3.1.4, 5.0 section 3.1.4). ``shadow`` replays the baseline, its noise
runs and the candidate at once, often against one broker: sent as recorded,
the runs would cut each other off. So each run sends an id derived from the
recorded one and the run's name: the recorded id's letters and digits (at
most 15), then 8 hex digits of a hash, at most 23 characters of
``[0-9a-zA-Z]``, the set every MQTT 3.1.1 broker accepts. Sessions of one run
that shared an id share the new one (a persistent session goes on as
recorded); an empty id (the broker assigns one) stays empty. Only what the
client sends changes: the diff compares what the server sent.
"""

from __future__ import annotations

import hashlib

from wsshadow.replay.capture.mqtt import with_client_id

__all__ = ["MAX_CLIENT_ID", "replay_client_id", "unique_client_ids"]

MAX_CLIENT_ID = 23
"""The longest client id every MQTT 3.1.1 broker accepts (section 3.1.3.1)."""


def replay_client_id(recorded: str, run: str) -> str:
    """The client id run ``run`` sends for ``recorded``: unique to the run, still
    recognisable, and valid for MQTT 3.1.1 and 5.0. Empty stays empty."""
    if not recorded:
        return recorded
    stem = "".join(c for c in recorded if c.isascii() and c.isalnum())[: MAX_CLIENT_ID - 8]
    digest = hashlib.sha256(f"{run}\x00{recorded}".encode()).hexdigest()[:8]
    return stem + digest


def unique_client_ids(payloads: list[str | bytes], run: str) -> list[str | bytes]:
    """The session's client payloads with the MQTT CONNECT that opens them (if one
    does) sending ``replay_client_id``; the same list when nothing changes.

    Call it on what will be sent, after credentials are filled: the CONNECT is
    rebuilt with its lengths encoded again."""
    if not payloads or type(payloads[0]) is not bytes:
        return payloads
    new = with_client_id(payloads[0], lambda recorded: replay_client_id(recorded, run))
    if new is None:
        return payloads
    return [new, *payloads[1:]]
