"""Phoenix Channels, the v2 JSON serializer.

Spec (Phoenix.Socket.V2.JSONSerializer, phoenix.js ``vsn=2.0.0``): each text
message is an array ``[join_ref, ref, topic, event, payload]``. The client
joins a topic with ``phx_join`` (its ref becomes the join_ref), pushes
events with a fresh ref, leaves with ``phx_leave``; the server answers each
push with ``phx_reply`` carrying the push's ref and ``{"status", "response"}``,
broadcasts events with a null ref, and signals ``phx_error`` / ``phx_close``.
The client sends ``heartbeat`` on the ``phoenix`` topic, answered by a
``phx_reply`` with that ref. Binary messages (push/reply/broadcast with a
binary payload) carry a kind byte and length-prefixed fields.

Decoded: the event key is ``<topic> <event>``; pushes are correlated by ref
and their ``phx_reply`` is the reply (named ``room:lobby new_msg
phx_reply``), valued by ``{status, response}``; heartbeats and their
replies are control; broadcasts (null ref) are unsolicited events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wsshadow.replay.capture.model import Handshake, Message, Opcode
from wsshadow.replay.diff.dialects.base import CLIENT, Dialect, Event, b64, first_data, loads

__all__ = ["Phoenix"]


def _frame(doc: Any) -> bool:
    return (
        isinstance(doc, list)
        and len(doc) == 5
        and isinstance(doc[2], str)
        and isinstance(doc[3], str)
    )


class Phoenix(Dialect):
    """Phoenix Channels v2 (see the module docstring for the spec)."""

    name = "phoenix"
    title = "Phoenix Channels (v2 JSON serializer)"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        score = 40 if "vsn=2" in handshake.query else 0
        for m in first_data(first, 4):
            if isinstance(m.payload, str) and m.payload.startswith("["):
                try:
                    doc = loads(m.payload)
                except ValueError:
                    return score
                if _frame(doc):
                    return 90 if doc[3].startswith("phx_") or doc[2] == "phoenix" else 70
                return score
        return score

    def decode(self, messages: Iterable[Message]) -> Iterator[tuple[Message, Event]]:
        heartbeats: set[str] = set()
        for m in messages:
            if m.opcode is Opcode.BINARY:
                assert isinstance(m.payload, bytes)
                yield m, Event("<binary>", b64(m.payload))
                continue
            if m.opcode is not Opcode.TEXT:
                continue
            try:
                doc = loads(m.payload)
            except ValueError:
                yield m, Event("<text>", m.payload)
                continue
            if not _frame(doc):
                yield m, Event("<json>", doc)
                continue
            _, ref, topic, event, payload = doc
            corr = f"{topic}#{ref}" if ref is not None else None
            if event == "heartbeat" and topic == "phoenix":
                if corr is not None:
                    heartbeats.add(corr)
                yield m, Event("heartbeat", None, corr, control=True)
            elif event == "phx_reply":
                yield m, Event("phx_reply", payload, corr, reply=True,
                               control=corr in heartbeats)  # fmt: skip
            elif m.direction is CLIENT or ref is None:
                yield m, Event(f"{topic} {event}", payload, corr)
            else:  # a server push with a ref of its own (rare): uncorrelated
                yield m, Event(f"{topic} {event}", payload)

    def decode_message(self, direction: Any, payload: str | bytes) -> list[Event]:
        m = Message(0, 0.0, direction, Opcode.TEXT if isinstance(payload, str) else Opcode.BINARY,
                    payload)  # fmt: skip
        return [e for _, e in self.decode([m])]
