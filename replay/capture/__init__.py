"""Captures: the one data model and where it is kept.

- ``model``: ``Session``, ``Message``, ``Handshake``, ``Close``, ``Run`` (pure values).
- ``store``: ``CaptureStore`` and ``CaptureWriter``, the SQLite capture file.
- ``jsonl``: the portable, versioned JSONL form (pure codec).
- ``redact``: ``Redactor``, credentials out of everything stored.
- ``merge``: several capture files into one.
"""
