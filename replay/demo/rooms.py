"""Shared threads of the demo chat backend: invites, joins and broadcasts.

The "Shared threads" part of the demo protocol (``docs/demo.md``), the
same on both servers and every route:

- ``create_invite`` ``{"payload": {"thread_id": ...}}``: the server answers
  ``invite_created`` with a random ten-character ``code`` and the
  ``thread_id``; the inviting connection becomes a member of the thread;
- ``join_thread`` ``{"payload": {"code": ...}}`` from any connection (any
  route, any user): ``thread_joined`` with the ``thread_id`` and the
  ``members`` (user ids, in joining order); an unknown code gets the
  route's error ``INVITE_NOT_FOUND``;
- an agent run on a shared thread by a member: every *other* member
  connection first receives ``thread_message`` (``thread_id``, ``from``:
  the sender's user id, ``text``), then the sender's run goes as usual.

Membership is per connection, not per user: two tabs of one user are two
members (the real system's multi-tab flow), so a replay that runs several
recorded users as one replay user still broadcasts to each of them. Each
message is shaped by the recipient's own dialect. Codes are upper-case
letters and digits, drawn from the server's random source.
"""

from __future__ import annotations

import contextlib
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsshadow.replay.demo.dialects import Dialect
    from wsshadow.replay.demo.protocol import Connection

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "Member",
    "Rooms",
    "create_invite",
    "join_thread",
    "share_message",
]

CODE_ALPHABET = string.ascii_uppercase + string.digits
CODE_LENGTH = 10


@dataclass(frozen=True, eq=False)
class Member:
    """One member connection of a shared thread, with the dialect it speaks."""

    conn: Connection
    dialect: Dialect

    async def push(self, kind: str, fields: dict[str, Any]) -> None:
        """Send a shared-thread message in this member's own envelope (gone: dropped)."""
        # The member may be closing at this very moment: its loss, not the sender's.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.conn.send(self.dialect.shared(self.conn, kind, fields))


@dataclass
class Rooms:
    """The shared threads of one server: open invites and each thread's member connections."""

    invites: dict[str, str] = field(default_factory=dict)
    """Invite code -> thread id (a code stays valid while the server runs)."""
    members: dict[str, list[Member]] = field(default_factory=dict)
    """Thread id -> member connections, in joining order."""

    def add(self, thread_id: str, member: Member) -> None:
        """Make ``member``'s connection a member of ``thread_id`` (once)."""
        current = self.members.setdefault(thread_id, [])
        if all(m.conn is not member.conn for m in current):
            current.append(member)

    def users(self, thread_id: str) -> list[str]:
        """The user ids of a thread's member connections, in joining order."""
        return [m.conn.user_id for m in self.members.get(thread_id, ())]

    def others(self, conn: Connection, thread_id: str) -> list[Member]:
        """The thread's other member connections, or none when ``conn`` is not a member."""
        current = self.members.get(thread_id, [])
        if all(m.conn is not conn for m in current):
            return []
        return [m for m in current if m.conn is not conn]

    def leave(self, conn: Connection) -> None:
        """Forget a closed connection in every thread."""
        for thread_id in [t for t, ms in self.members.items() if any(m.conn is conn for m in ms)]:
            remaining = [m for m in self.members[thread_id] if m.conn is not conn]
            if remaining:
                self.members[thread_id] = remaining
            else:
                del self.members[thread_id]


def _payload(message: dict[str, Any]) -> dict[str, Any]:
    payload = message.get("payload")
    return payload if isinstance(payload, dict) else {}


async def create_invite(conn: Connection, dialect: Dialect, message: dict[str, Any]) -> None:
    """Answer ``create_invite``: a new code for the thread; the inviter joins it."""
    thread_id = _payload(message).get("thread_id")
    if not isinstance(thread_id, str) or not thread_id:
        await conn.send(dialect.refused("INVALID_REQUEST", "create_invite needs a thread_id"))
        return
    rooms = conn.state.rooms
    code = "".join(conn.state.rng.choices(CODE_ALPHABET, k=CODE_LENGTH))
    rooms.invites[code] = thread_id
    rooms.add(thread_id, Member(conn, dialect))
    await conn.send(dialect.shared(conn, "invite_created", {"code": code, "thread_id": thread_id}))


async def join_thread(conn: Connection, dialect: Dialect, message: dict[str, Any]) -> None:
    """Answer ``join_thread``: the thread and its members, or the route's error for an
    unknown code."""
    rooms = conn.state.rooms
    code = _payload(message).get("code")
    thread_id = rooms.invites.get(code) if isinstance(code, str) else None
    if thread_id is None:
        await conn.send(dialect.refused("INVITE_NOT_FOUND", f"Unknown invite code: {code}"))
        return
    rooms.add(thread_id, Member(conn, dialect))
    fields = {"thread_id": thread_id, "members": rooms.users(thread_id)}
    await conn.send(dialect.shared(conn, "thread_joined", fields))


async def share_message(conn: Connection, thread_id: str, text: str) -> None:
    """Broadcast a member's message on a shared thread to the thread's other members."""
    for member in conn.state.rooms.others(conn, thread_id):
        await member.push(
            "thread_message", {"thread_id": thread_id, "from": conn.user_id, "text": text}
        )
