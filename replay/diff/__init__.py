"""The diff, pure: sessions in, findings and the report's parts out.

``normalize`` (parse, ignore, mask) → ``align`` (by event key) →
``compare`` (aligned pairs field by field, handshake, close, timing) →
``noise`` (what also differs between baseline runs) → ``session``
(``diff_session``: one session, with ``fidelity`` against the recording)
→ ``accumulate`` (results folded with flat memory; ``distributions``,
``timing`` and ``verdict`` across sessions) → ``capture`` (``diff_capture``,
which reads sessions through the ``SessionSource`` protocol; the caller
opens the capture). ``dialects/`` decode framed protocols first. ``against_recording``
compares one replay with its recording (the pytest plugin's regression check).
Nothing here does I/O: no store, no sqlite3, no sockets (an import-linter
contract in ``make lint`` keeps it so).
"""
