"""Reading a capture: runs, sessions (whole, as heads, as frame columns), summaries.

``CaptureReads`` is the read half of ``CaptureStore`` (a base class: the store
holds the connection). Hot paths query the connection directly (see store.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import sqlite_utils

from wsshadow.replay.capture.identities import credential_names, highest_number
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Handshake,
    Message,
    Provenance,
    Run,
    Session,
    Source,
)
from wsshadow.replay.capture.rows import (
    _FRAMES_FOR_REPLAY,
    FrameColumns,
    SessionHead,
    SessionSummary,
    _decode_frames,
    _first,
    _frame_columns,
    _headers_of,
    _id_pages,
    _strings_of,
)
from wsshadow.replay.capture.schema import (
    _CLOSERS,
    _SESSION_COLUMNS,
    _SOURCES,
    RECORDED_ONLY,
)
from wsshadow.replay.errors import CaptureError

__all__ = ["CaptureReads"]


def _by_number(name: str) -> tuple[str, int]:
    base, _, number = name.partition("#")
    return base, int(number) if number else 0


class CaptureReads:
    """The queries of a capture; ``CaptureStore`` provides ``db`` and ``path``."""

    db: sqlite_utils.Database
    path: Path

    # ---- reading -----------------------------------------------------------

    def runs(self) -> list[Run]:
        """Every run in the capture, oldest first."""
        rows = self.db.conn.execute(
            "SELECT name, target, source, settings, started_at, ended_at, sessions, errors "
            "FROM runs ORDER BY started_at, name"
        ).fetchall()
        return [
            Run(
                name=r[0],
                target=r[1] or "",
                source=Source(r[2] or "replay"),
                settings=json.loads(r[3] or "{}"),
                started_at=r[4],
                ended_at=r[5],
                sessions=r[6] or 0,
                errors=r[7] or 0,
            )
            for r in rows
        ]

    def get_run(self, name: str) -> Run | None:
        """The run called ``name``, or None."""
        return next((r for r in self.runs() if r.name == name), None)

    def session_ids(self, run: str | None = RECORDED_ONLY) -> list[str]:
        """Ids of the recorded sessions (or of a run's sessions), in the order stored."""
        where, args = self._run_filter(run)
        return [
            r[0]
            for r in self.db.conn.execute(
                f"SELECT id FROM sessions WHERE {where} ORDER BY rowid", args
            )
        ]

    def existing_ids(self, session_ids: Sequence[str]) -> set[str]:
        """Which of ``session_ids`` the capture holds (one query per page of ids)."""
        found: set[str] = set()
        for page, marks in _id_pages(session_ids):
            found.update(
                r[0]
                for r in self.db.conn.execute(
                    f"SELECT id FROM sessions WHERE id IN ({marks})", page
                )
            )
        return found

    def count_sessions(self, run: str | None = RECORDED_ONLY) -> int:
        """How many recorded sessions (or sessions of a run) the capture holds."""
        where, args = self._run_filter(run)
        row = self.db.conn.execute(f"SELECT count(*) FROM sessions WHERE {where}", args).fetchone()
        return int(row[0])

    @staticmethod
    def _run_filter(run: str | None) -> tuple[str, tuple[Any, ...]]:
        if run is None:
            return "run IS NULL", ()
        return "run = ?", (run,)

    def get_session(self, session_id: str) -> Session:
        """One session with its messages; raises CaptureError when absent."""
        row = self.db.conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            raise CaptureError(f"{self.path}: no session {session_id!r}")
        return self._session_from_row(row, self._messages(session_id))

    def get_session_head(self, session_id: str, frames: int = 32) -> Session:
        """One session with only its first ``frames`` messages (enough to tell its dialect)."""
        row = self.db.conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            raise CaptureError(f"{self.path}: no session {session_id!r}")
        rows = self.db.conn.execute(
            "SELECT session_id, seq, t, direction, opcode, text, data FROM frames "
            "WHERE session_id = ? ORDER BY seq LIMIT ?",
            (session_id, frames),
        )
        try:
            messages = _decode_frames(rows)
        except (KeyError, ValueError, TypeError) as e:
            raise CaptureError(f"{self.path}: session {session_id!r} is damaged ({e})") from None
        return self._session_from_row(row, messages)

    def find_session(self, prefix: str) -> Session:
        """A session by its id or a unique prefix of it; raises CaptureError otherwise."""
        ids = [
            r[0]
            for r in self.db.conn.execute(
                "SELECT id FROM sessions WHERE id = ? OR substr(id, 1, ?) = ? LIMIT 2",
                (prefix, len(prefix), prefix),
            )
        ]
        if prefix in ids or len(ids) == 1:
            return self.get_session(prefix if prefix in ids else ids[0])
        if not ids:
            raise CaptureError(f"{self.path}: no session {prefix!r}")
        raise CaptureError(f"{self.path}: {prefix!r} names more than one session")

    def iter_sessions(
        self,
        run: str | None = RECORDED_ONLY,
        *,
        ids: Iterable[str] | None = None,
        page: int = 256,
    ) -> Iterator[Session]:
        """Sessions with their messages, one at a time, in the order they were stored.

        Only ``page`` sessions are in memory at once (their frames loaded with
        one query), so a capture of any size can be streamed.
        """
        if ids is not None:
            wanted = list(ids)
            for i in range(0, len(wanted), page):
                # A missing id raises when its turn comes, after the ones before it.
                chunk = wanted[i : i + page]
                try:
                    loaded = self.get_sessions(chunk)
                except CaptureError:
                    for session_id in chunk:
                        yield self.get_session(session_id)
                    continue
                yield from loaded
            return
        yield from self._iter(*self._run_filter(run), page=page)

    def iter_all_sessions(self, page: int = 256) -> Iterator[Session]:
        """Every session in the capture, recorded and replayed, in the order stored."""
        yield from self._iter("1", (), page=page)

    def _iter(self, where: str, args: tuple[Any, ...], page: int) -> Iterator[Session]:
        last = 0
        while True:
            rows = self.db.conn.execute(
                f"SELECT rowid, {_SESSION_COLUMNS} FROM sessions WHERE {where} AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (*args, last, page),
            ).fetchall()
            if not rows:
                return
            yield from self._sessions_from_rows([row[1:] for row in rows])
            last = rows[-1][0]

    def summaries(self, run: str | None = RECORDED_ONLY) -> Iterator[SessionSummary]:
        """One summary row per session, counts computed in SQL, no payloads loaded."""
        where, args = self._run_filter(run)
        query = f"""
            SELECT s.id, s.route, s.started_at, s.close_t, s.status, s.close_code, s.closed_by,
                   s.close_error, s.source, s.run, s.origin,
                   coalesce(f.client, 0), coalesce(f.server, 0), coalesce(f.bytes, 0), f.last_t
            FROM sessions s LEFT JOIN (
                SELECT session_id,
                       sum(direction = 'client' AND opcode IN ('text', 'binary')) AS client,
                       sum(direction = 'server' AND opcode IN ('text', 'binary')) AS server,
                       sum(coalesce(length(CAST(text AS BLOB)), length(data), 0)) AS bytes,
                       max(t) AS last_t
                FROM frames
                WHERE session_id IN (SELECT id FROM sessions WHERE {where})
                GROUP BY session_id
            ) f ON f.session_id = s.id
            WHERE s.{where}
            ORDER BY s.rowid
        """
        # The frames of the other runs are not read: a capture with many runs lists as fast.
        for r in self.db.conn.execute(query, args + args):
            yield SessionSummary(
                id=r[0],
                route=r[1],
                started_at=r[2],
                duration=r[3] if r[3] is not None else r[14],
                status=r[4],
                close_code=r[5],
                closed_by=r[6],
                close_error=r[7],
                source=r[8],
                run=r[9],
                origin=r[10],
                client_messages=r[11],
                server_messages=r[12],
                bytes=r[13],
            )

    def highest_placeholder_number(self) -> int:
        """The highest ``#N`` of the capture's numbered placeholders, runs included (0:
        none). A redactor writing into the capture numbers new values above it."""
        columns = " || ' ' || ".join(
            f"coalesce({c}, '')"
            for c in ("query", "request_headers", "subprotocols", "subprotocol",
                      "response_headers", "close_reason", "close_error")
        )  # fmt: skip
        rows = self.db.conn.execute(
            f"SELECT t FROM (SELECT {columns} AS t FROM sessions) WHERE t LIKE ?",
            ("%${redacted:%#%",),
        )
        high = highest_number(r[0] for r in rows)
        rows = self.db.conn.execute(
            "SELECT coalesce(text, data) FROM frames WHERE instr(coalesce(text, data), ?) > 0",
            (b"${redacted:",),
        )
        return max(high, highest_number(r[0] for r in rows))

    def credentials_needed(self, run: str | None = RECORDED_ONLY) -> dict[str, tuple[str, ...]]:
        """Per session (of the recording, or of ``run``), the credential names its
        placeholders ask for on replay (``authorization#2``; query, request headers,
        subprotocols and client messages), sorted; sessions that need none are left out."""
        where, args = self._run_filter(run)
        found: dict[str, set[str]] = {}
        for sid, *texts in self.db.conn.execute(
            f"SELECT id, query, request_headers, subprotocols FROM sessions WHERE {where}", args
        ):
            names = credential_names(texts)
            if names:
                found[sid] = names
        rows = self.db.conn.execute(
            "SELECT session_id, coalesce(text, data) FROM frames WHERE direction = 'client' "
            f"AND session_id IN (SELECT id FROM sessions WHERE {where}) "
            "AND instr(coalesce(text, data), ?) > 0",
            (*args, b"${redacted:"),
        )
        for sid, payload in rows:
            names = credential_names((payload,))
            if names:
                found.setdefault(sid, set()).update(names)
        return {sid: tuple(sorted(names, key=_by_number)) for sid, names in found.items()}

    def _messages(self, session_id: str) -> tuple[Message, ...]:
        rows = self.db.conn.execute(
            "SELECT session_id, seq, t, direction, opcode, text, data FROM frames "
            "WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        try:
            return _decode_frames(rows)
        except (KeyError, ValueError, TypeError) as e:
            raise CaptureError(f"{self.path}: session {session_id!r} is damaged ({e})") from None

    def _frames_of(self, session_ids: Sequence[str]) -> dict[str, tuple[Message, ...]]:
        """The messages of many sessions, with one query; sessions without frames are absent."""
        marks = ", ".join("?" * len(session_ids))
        rows = self.db.conn.execute(
            "SELECT session_id, seq, t, direction, opcode, text, data FROM frames "
            f"WHERE session_id IN ({marks}) ORDER BY session_id, seq",
            tuple(session_ids),
        )
        out = {}
        # Rows come sorted by session: groupby splits them without a Python step per row.
        # Read from the cursor, not a fetchall() list: each row is gone once decoded.
        for session_id, frames in groupby(rows, _first):
            try:
                out[session_id] = _decode_frames(frames)
            except (KeyError, ValueError, TypeError) as e:
                raise CaptureError(
                    f"{self.path}: session {session_id!r} is damaged ({e})"
                ) from None
        return out

    def _sessions_from_rows(self, rows: Sequence[tuple[Any, ...]]) -> list[Session]:
        frames = self._frames_of([r[0] for r in rows])
        return [self._session_from_row(r, frames.get(r[0], ())) for r in rows]

    def get_sessions(self, session_ids: Sequence[str]) -> list[Session]:
        """Many sessions with their messages, in the order asked, with two queries per page.

        For loading a batch of sessions at once (replay prefetches its
        selection this way); raises CaptureError when one is absent.
        """
        out: list[Session] = []
        for page, marks in _id_pages(session_ids):
            rows = self.db.conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id IN ({marks})", page
            ).fetchall()
            by_id = {s.id: s for s in self._sessions_from_rows(rows)}
            for session_id in page:
                session = by_id.get(session_id)
                if session is None:
                    raise CaptureError(f"{self.path}: no session {session_id!r}")
                out.append(session)
        return out

    def get_session_frames(self, session_ids: Sequence[str]) -> list[tuple[Session, FrameColumns]]:
        """Sessions without their messages, each with its frames as columns, in the order asked.

        What replay loads (see ``FrameColumns``): two queries per page, no
        ``Message`` built. Raises CaptureError when one is absent or damaged.
        """
        out: list[tuple[Session, FrameColumns]] = []
        conn = self.db.conn
        for page, marks in _id_pages(session_ids):
            heads = {
                r[0]: r
                for r in conn.execute(
                    f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id IN ({marks})", page
                )
            }
            rows = conn.execute(_FRAMES_FOR_REPLAY.format(marks=marks), page)
            frames: dict[str, FrameColumns] = {}
            for session_id, group in groupby(rows, _first):
                try:
                    frames[session_id] = _frame_columns(list(group))
                except (KeyError, ValueError, TypeError) as e:
                    raise CaptureError(
                        f"{self.path}: session {session_id!r} is damaged ({e})"
                    ) from None
            for session_id in page:
                head = heads.get(session_id)
                if head is None:
                    raise CaptureError(f"{self.path}: no session {session_id!r}")
                session = self._session_from_row(head, ())
                out.append((session, frames.get(session_id) or FrameColumns()))
        return out

    def read_frames_through(self, session_ids: Sequence[str] | None = None) -> None:
        """Read every frame of these sessions (None: of every recorded one), decoding nothing.

        For commands that are about to write into a capture: damage deep in
        the file raises ``sqlite3.DatabaseError`` here, before they write,
        for a few microseconds per session (SQLite reads every text, as it
        must to measure it).
        """
        query = "SELECT sum(length(text)), count(data) FROM frames WHERE session_id IN "
        conn = self.db.conn
        if session_ids is None:
            conn.execute(query + "(SELECT id FROM sessions WHERE run IS NULL)").fetchall()
            return
        for page, marks in _id_pages(session_ids):
            conn.execute(query + f"({marks})", page).fetchall()

    def matched_replays(self, runs: Sequence[str]) -> Iterator[tuple[str, str, list[str | None]]]:
        """Recorded sessions in capture order: (id, route, [id of its replay in each run or None]).

        One materialized (origin -> first replayed id) table per run, joined
        through an automatic index: linear in the capture, whatever order the
        replays were stored in. A run that replayed a session twice: the first counts.
        """
        ctes = ", ".join(
            f"m{i} AS MATERIALIZED (SELECT origin, id, min(rowid) FROM sessions "
            f"WHERE run = ? GROUP BY origin)"
            for i in range(len(runs))
        )
        joins = " ".join(f"LEFT JOIN m{i} ON m{i}.origin = s.id" for i in range(len(runs)))
        cols = "".join(f", m{i}.id" for i in range(len(runs)))
        query = (
            f"WITH {ctes} SELECT s.id, s.route{cols} FROM sessions s {joins} "
            "WHERE s.run IS NULL ORDER BY s.rowid"
        )
        previous = None
        for row in self.db.conn.execute(query, tuple(runs)):
            if row[0] == previous:
                continue
            previous = row[0]
            yield row[0], row[1], list(row[2:])

    def data_frames_by_session(
        self,
    ) -> Iterator[tuple[str, float, Iterator[tuple[float, str, str | None]]]]:
        """Every recorded session's data messages: ``(id, started_at, frames)``, frames
        ``(t, direction, text)`` in order, ``text`` None for a binary message.

        What link discovery reads (``engine/links.py``): one query, no ``Message``
        built; each session's frames must be consumed before the next session.
        """
        conn = self.db.conn
        starts = dict(conn.execute("SELECT id, started_at FROM sessions WHERE run IS NULL"))
        # The IN list is walked in id order through the primary key: no sort step.
        rows = conn.execute(
            "SELECT session_id, t, direction, text FROM frames WHERE opcode IN ('text', 'binary') "
            "AND session_id IN (SELECT id FROM sessions WHERE run IS NULL) ORDER BY session_id, seq"
        )
        frame = itemgetter(1, 2, 3)
        for session_id, group in groupby(rows, _first):
            yield session_id, starts[session_id], map(frame, group)

    def heads(self, run: str | None = RECORDED_ONLY) -> Iterator[SessionHead]:
        """Id, route and start of every session of ``run``, in stored order; no frame read."""
        where, args = self._run_filter(run)
        for sid, route, started_at in self.db.conn.execute(
            f"SELECT id, route, started_at FROM sessions WHERE {where} ORDER BY rowid", args
        ):
            yield SessionHead(sid, route, started_at)

    def _session_from_row(self, r: tuple[Any, ...], messages: tuple[Message, ...]) -> Session:
        try:
            return self._build_session(r, messages)
        except (ValueError, TypeError) as e:
            raise CaptureError(f"{self.path}: session {r[0]!r} is damaged ({e})") from None

    def _build_session(self, r: tuple[Any, ...], messages: tuple[Message, ...]) -> Session:
        (sid, run, origin, source, tags, started_at, route, query, req_h, protos, status,
         subprotocol, resp_h, code, reason, by, error, close_t) = r  # fmt: skip
        close = None
        if by is not None:
            close = Close(
                code=code,
                reason=reason or "",
                by=_CLOSERS.get(by) or Closer(by),
                error=error,
                t=close_t,
            )
        return Session(
            id=sid,
            started_at=started_at,
            handshake=Handshake(
                route=route,
                query=query or "",
                request_headers=_headers_of(req_h),
                subprotocols=_strings_of(protos),
                status=status,
                subprotocol=subprotocol,
                response_headers=_headers_of(resp_h),
            ),
            messages=messages,
            close=close,
            provenance=Provenance(
                source=_SOURCES.get(source) or Source(source),
                tags=_strings_of(tags),
                run=run,
                origin=origin,
            ),
        )
