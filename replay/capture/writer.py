"""Writing captures: ``CaptureWriter`` batches a recorder's or a replay's rows, redacted;
``BackgroundWriter`` runs those batches' SQL on a thread with a connection of its own."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from wsshadow.replay.capture.model import (
    Close,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
)
from wsshadow.replay.capture.rows import (
    _FRAME_COLUMNS,
    FrameColumns,
    _close_row,
    _frame_row,
    _FrameTuple,
    _insert_frames,
    _same,
    _session_row,
    _split_rows,
)
from wsshadow.replay.capture.schema import (
    _DIRECTION_TEXT,
    _INSERT_SESSION,
    _OPCODE_TEXT,
    _UPDATE_CLOSE,
)
from wsshadow.replay.errors import CaptureError

if TYPE_CHECKING:
    from wsshadow.replay.capture.store import CaptureStore

__all__ = ["BackgroundWriter", "CaptureWriter"]


class _Transaction:
    """BEGIN / COMMIT around a block, ROLLBACK on error; SQLite errors become CaptureError."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN")
        except sqlite3.Error as e:
            raise CaptureError(f"{self.path}: cannot write ({e})") from None
        return self.conn

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error as e:
                self._rollback()  # SQLite may have rolled back already (disk full)
                raise CaptureError(f"{self.path}: cannot write ({e})") from None
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise CaptureError(f"{self.path}: cannot write ({exc})") from None


class BackgroundWriter:
    """Runs ``CaptureWriter`` batches' SQL on a thread, with a connection of its own.

    The calling thread still builds and redacts the rows (``CaptureWriter.take``);
    this thread inserts them, one transaction per batch, in the order
    submitted. sqlite3 lets go of the GIL while SQLite works, so an event
    loop goes on meanwhile: replay writes a run this way. At most ``depth``
    batches wait; ``submit`` blocks beyond that. The first error is kept,
    later batches are not written, and ``submit``/``wait``/``close`` raise it
    as CaptureError.
    """

    def __init__(self, path: Path, depth: int = 4) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise CaptureError(f"{path}: cannot write ({e})") from None
        self._jobs: queue.Queue[_Batch | None] = queue.Queue(maxsize=depth)
        self._error: CaptureError | None = None
        self._thread = threading.Thread(target=self._run, name="wsshadow-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._jobs.get()
            try:
                if batch is None:
                    return
                if self._error is None:
                    with _Transaction(self._conn, self.path) as conn:
                        batch.write(conn)
            except CaptureError as e:
                self._error = e
            except Exception as e:  # never die silently: the caller hears of it
                self._error = CaptureError(f"{self.path}: cannot write ({e})")
            finally:
                self._jobs.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, writer: CaptureWriter) -> None:
        """Queue everything ``writer`` holds (taken from it now) for the thread to write."""
        self._raise()
        self._jobs.put(writer.take())

    def wait(self) -> None:
        """Return once every submitted batch is written (or raise what went wrong)."""
        self._jobs.join()
        self._raise()

    def close(self) -> None:
        """Write what is queued, stop the thread, close its connection (or raise)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
            self._conn.close()
        self._raise()


class CaptureWriter:
    """Batched appends for recorders: many live sessions, one writer.

    Calls queue rows in memory; ``flush()`` (called automatically every
    ``batch_size`` frames) writes them in one transaction. Redaction happens
    here, before anything is queued (for ``add_session``'s frames: as they
    are written). Not thread-safe: one writer task or thread owns it.
    ``flush()`` raises ``sqlite3.Error`` subclasses wrapped in CaptureError
    when the disk refuses; the queued rows are kept, so a caller that fails
    open can count them as dropped or retry.
    """

    def __init__(self, store: CaptureStore, batch_size: int = 2000) -> None:
        self.store = store
        self.batch_size = batch_size
        self._sessions: list[tuple[Any, ...]] = []
        self._frames: list[tuple[Any, ...]] = []
        self._closes: list[tuple[Any, ...]] = []
        # add_session's frames, turned into rows only while flush() writes them
        self._later: list[tuple[str, Iterable[_FrameTuple]]] = []
        self._later_count = 0
        self.written_frames = 0
        self.written_sessions = 0

    @property
    def pending(self) -> int:
        """Frames queued and not yet written (``add_session``'s when they have a length)."""
        return len(self._frames) + self._later_count

    def open_session(
        self,
        session_id: str,
        started_at: float,
        handshake: Handshake,
        provenance: Provenance | None = None,
    ) -> None:
        """Queue a new session's row (its handshake is redacted)."""
        self._sessions.append(
            _session_row(
                session_id,
                started_at,
                self.store.redactor.handshake(handshake),
                provenance or Provenance(),
            )
        )

    def append(self, session_id: str, message: Message) -> None:
        """Queue one message of an open session (redacted); may flush."""
        self._frames.append(_frame_row(session_id, self.store.redactor.message(message)))
        if len(self._frames) >= self.batch_size:
            self.flush()

    def append_frames(
        self, frames: Iterable[tuple[str, int, float, Direction, Opcode, Any]]
    ) -> None:
        """Queue frames of open sessions in one go; does not flush.

        ``frames`` are ``(session_id, seq, t, direction, opcode, payload)``;
        a text payload may be UTF-8 bytes (invalid sequences are replaced).
        Redacted as ``append`` redacts. For recorders that see frames by
        the thousand: this skips building a ``Message`` per frame.
        """
        redactor = self.store.redactor
        redact = redactor.text if redactor.enabled else None
        text_op = Opcode.TEXT
        directions, opcodes = _DIRECTION_TEXT, _OPCODE_TEXT
        rows = self._frames
        for session_id, seq, t, direction, opcode, payload in frames:
            if opcode is text_op:
                if type(payload) is not str:
                    payload = str(payload, "utf-8", "replace")
                if redact is not None:
                    payload = redact(payload)
                rows.append((session_id, seq, t, directions[direction], "text", payload))
            else:
                if type(payload) is not bytes:
                    payload = bytes(payload)
                if redact is not None:
                    payload = redactor.data(opcode, payload)
                rows.append((session_id, seq, t, directions[direction], opcodes[opcode], payload))

    def close_session(self, session_id: str, close: Close) -> None:
        """Queue how a session ended (its reason redacted)."""
        self._closes.append(_close_row(session_id, self.store.redactor.close(close)))

    def add_session(
        self,
        session_id: str,
        started_at: float,
        handshake: Handshake,
        provenance: Provenance,
        frames: Iterable[_FrameTuple],
        close: Close | None,
    ) -> None:
        """Queue a finished session in one go; does not flush.

        ``frames`` are ``(seq, t, direction, opcode, payload)`` tuples, with
        the payload types a ``Message`` requires; direction and opcode may be
        the enum members or their values. A ``FrameColumns`` is written fastest. Redacted exactly as
        ``CaptureStore.put_sessions`` redacts (the handshake, text payloads);
        the id must not be in the capture yet (see ``CaptureStore.existing_ids``).
        For writers that hold whole sessions, such as replay, this skips
        building a ``Message`` per frame.

        ``frames`` is read when ``flush()`` writes it, one row at a time, so
        no row outlives its insert (thousands of queued row tuples would make
        the garbage collector's passes slower); an iterator is read once, so
        a retry after a failed flush needs a list or another collection.
        """
        redactor = self.store.redactor
        row = _session_row(session_id, started_at, redactor.handshake(handshake), provenance)
        if close is not None:
            close = redactor.close(close)
            row = (*row[:13], close.code, close.reason, close.by.value, close.error, close.t)
        self._sessions.append(row)
        self._later.append((session_id, frames))
        if isinstance(frames, Sized):
            self._later_count += len(frames)

    def _later_params(self, texts: list[Any], others: list[Any]) -> None:
        """Append the column values of ``add_session``'s frames, redacted, to the
        text-frame and other-frame parameters (see ``_FRAME_COLUMNS``)."""
        redactor = self.store.redactor
        redact = redactor.text if redactor.enabled else _same
        # Plain str values, not the enum members: sqlite3 binds an exact str directly
        # but tries (and fails) two adaptation protocols on a str subclass first.
        dir_text, op_text = _DIRECTION_TEXT, _OPCODE_TEXT
        for session_id, frames in self._later:
            if type(frames) is FrameColumns and frames.opcode.count("text") == len(frames.opcode):
                # All text (replay's usual case): the rows are put together in C.
                redacted = redactor.texts(cast("Sequence[str]", frames.payload))
                texts.extend(
                    chain.from_iterable(
                        zip(
                            repeat(session_id),
                            frames.seq,
                            frames.t,
                            map(dir_text.__getitem__, frames.direction),
                            repeat("text"),
                            redacted,
                        )
                    )
                )
                continue
            for seq, t, direction, opcode, payload in frames:
                if op_text[opcode] == "text":
                    texts.extend((session_id, seq, t, dir_text[direction], "text", redact(payload)))  # type: ignore[arg-type]
                else:
                    op = op_text[opcode]
                    if redactor.enabled:
                        payload = redactor.data(op, payload)  # type: ignore[arg-type]
                    others.extend((session_id, seq, t, dir_text[direction], op, payload))

    def _batch(self) -> _Batch:
        """Everything queued, as SQL parameters (redacted); the queue is left as it is."""
        # In (session, seq) order: multi-row inserts of interleaved sessions
        # cost more than they save; in index order, half of executemany.
        texts, others = _split_rows(sorted(self._frames))
        if self._later:
            self._later_params(texts, others)
        return _Batch(list(self._sessions), texts, others, list(self._closes))

    def flush(self) -> int:
        """Write everything queued in one transaction; returns frames written."""
        if not (self._sessions or self._frames or self._closes or self._later):
            return 0
        batch = self._batch()
        with self.store._transaction() as conn:
            written = batch.write(conn)
        self._written(batch)
        self.discard()
        return written

    def take(self) -> _Batch:
        """Everything queued, as a batch for ``BackgroundWriter``; the queue is emptied."""
        batch = self._batch()
        self._written(batch)
        self.discard()
        return batch

    def _written(self, batch: _Batch) -> None:
        self.written_frames += (len(batch.texts) + len(batch.others)) // _FRAME_COLUMNS
        self.written_sessions += len(batch.sessions)

    def discard(self) -> tuple[int, int]:
        """Drop everything queued (after a failed flush); returns (sessions, frames) dropped."""
        dropped = (len(self._sessions), self.pending)
        self._sessions.clear()
        self._frames.clear()
        self._closes.clear()
        self._later.clear()
        self._later_count = 0
        return dropped


@dataclass(frozen=True, slots=True)
class _Batch:
    """Rows for one transaction: session rows, text-frame and other-frame parameters
    (flat, see ``_FRAME_COLUMNS``), close updates."""

    sessions: list[tuple[Any, ...]]
    texts: list[Any]
    others: list[Any]
    closes: list[tuple[Any, ...]]

    def write(self, conn: sqlite3.Connection) -> int:
        """Insert the rows (inside the caller's transaction); returns frames written."""
        conn.executemany(_INSERT_SESSION, self.sessions)
        written = _insert_frames(conn, "text", self.texts)
        written += _insert_frames(conn, "data", self.others)
        conn.executemany(_UPDATE_CLOSE, self.closes)
        return written
