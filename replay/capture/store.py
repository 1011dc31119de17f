"""The capture store: one SQLite file per capture, browsable with sqlite-utils.

Tables: ``meta`` (format version and facts about the file), ``sessions``
(one row per WebSocket connection, handshake and close inline), ``frames``
(one row per message; text payloads in ``text``, others in ``data``) and
``runs`` (replays and mirrors). Recorded sessions have ``run`` NULL; a
replayed session names its run and the recorded session it came from.

Every write path redacts with the store's ``Redactor`` first, so no way
into a capture can skip it. Files are created mode 0600, in WAL mode.

sqlite-utils does what it is good at: creating the schema, migrating,
introspecting (``Database``, ``table.exists()``, ``columns_dict``), and it
keeps the file browsable with its CLI and Datasette. The hot paths (loading
a session's frames for replay, inserting a recorder's batches, pairing
replays with recordings) use the ``sqlite3`` connection directly with
prepared statements (``schema.py``, ``rows.py``): one ``executemany`` or a
64-row ``INSERT`` costs a fraction of sqlite-utils' per-row dict handling,
measured in bench/store_write.py.

Split for size: ``schema.py`` (SQL), ``rows.py`` (row encoding and
decoding), ``writer.py`` (transactions and the background writer thread).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import sqlite_utils

from wsshadow.replay.capture.model import (
    Run,
    Session,
)
from wsshadow.replay.capture.reads import CaptureReads
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.rows import (
    FrameColumns,
    SessionHead,
    SessionSummary,
    _close_row,
    _dump,
    _frame_row,
    _insert_frames,
    _session_row,
    _split_rows,
)
from wsshadow.replay.capture.schema import (
    _INSERT_SESSION,
    _SCHEMA,
    _UPDATE_CLOSE,
    RECORDED_ONLY,
)
from wsshadow.replay.capture.writer import BackgroundWriter, CaptureWriter, _Transaction
from wsshadow.replay.errors import CaptureError, NewerFormat

__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "RECORDED_ONLY",
    "BackgroundWriter",
    "CaptureStore",
    "CaptureWriter",
    "FrameColumns",
    "SessionHead",
    "SessionSummary",
]

FORMAT_VERSION = 1
"""The capture file format this wsshadow writes; older files are migrated on open."""

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}
"""Converters from format version N to N+1, applied in a chain on open."""


def _remove_capture_files(path: Path) -> None:
    """Remove a capture and its SQLite side files (those missing are fine)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            Path(str(path) + suffix).unlink()


def _connect_readonly(
    path: Path,
) -> tuple[sqlite3.Connection, tempfile.TemporaryDirectory[str] | None]:
    """A connection that cannot change the capture or add files beside it.

    Without side files nobody has the capture open and the file is the whole
    truth: it is opened ``immutable`` (a read-only open of a WAL file would
    otherwise create ``-wal`` and ``-shm`` and leave them behind). With a
    ``-wal`` (a live writer, or one that was killed), ``mode=ro`` reads the
    log through the writer's ``-shm``. Where neither works (a ``-wal`` but no
    ``-shm`` in a directory we cannot write), a temporary copy is read, with
    its log; the second value is that copy's directory, removed on close.
    """
    side = [Path(f"{path}{s}").exists() for s in ("-wal", "-shm", "-journal")]
    uri = f"file:{quote(str(path.absolute()))}?mode=ro" + ("" if any(side) else "&immutable=1")
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        if "unable to open" not in str(e):
            return conn, None  # damage: reported by the checks that follow
        conn.close()
    except sqlite3.DatabaseError:
        return conn, None
    else:
        return conn, None
    copy = tempfile.TemporaryDirectory(prefix="wsshadow-read-")
    try:
        for suffix in ("", "-wal", "-journal"):  # a hot journal is rolled back in the copy
            if Path(f"{path}{suffix}").exists():
                shutil.copyfile(f"{path}{suffix}", Path(copy.name) / f"capture.db{suffix}")
        conn = sqlite3.connect(
            Path(copy.name) / "capture.db", check_same_thread=False, isolation_level=None
        )
    except (OSError, sqlite3.Error) as e:
        copy.cleanup()
        raise CaptureError(f"{path}: cannot open ({e})") from None
    return conn, copy


class CaptureStore(CaptureReads):
    """A capture file: sessions, their frames, and runs.

    Open with ``CaptureStore.open(path)``; use as a context manager. One
    connection, used by one thread at a time. Raises ``CaptureError`` for a
    missing, corrupt or foreign file and ``NewerFormat`` for a newer one.
    """

    def __init__(self, db: sqlite_utils.Database, path: Path, redactor: Redactor) -> None:
        self.db = db
        self.path = path
        self.redactor = redactor
        self._background: BackgroundWriter | None = None
        self._background_users = 0
        self.created = False
        """True when ``open`` created the file (a failed command then removes it, if empty)."""
        self.readonly = False
        """True when opened with ``readonly=True``: nothing this store does changes the file."""
        self.upgraded_from: int | None = None
        """The older format version a read-only open upgraded in a temporary copy, if any."""
        self._temporary: tempfile.TemporaryDirectory[str] | None = None

    # ---- opening -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        redactor: Redactor | None = None,
        readonly: bool = False,
    ) -> CaptureStore:
        """Open a capture; with ``create=True`` a missing file is created (mode 0600).

        ``readonly=True`` is for commands that only read: the file, its side
        files and its directory are left exactly as they were (no pragma that
        writes, no checkpoint on close), and a file of an older format is
        upgraded in a temporary in-memory copy, never in place
        (``upgraded_from`` says from which version). Writing raises.
        """
        path = Path(path)
        if readonly and create:
            raise ValueError("a capture opened read-only cannot be created")
        redactor = redactor if redactor is not None else Redactor()
        exists = path.exists()
        if not exists and not create:
            raise CaptureError(f"{path}: no such capture file")
        if exists and path.is_dir():
            raise CaptureError(f"{path}: is a directory, not a capture file")
        if exists and not create and path.stat().st_size == 0:
            # Opening it would write a schema into a file a read-only command was given.
            raise CaptureError(f"{path}: an empty file, not a wsshadow capture")
        if not exists:
            if not path.parent.exists():
                raise CaptureError(f"{path}: directory {path.parent} does not exist")
            # Create the file ourselves so that it is owner-only before any byte lands.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        temporary = None
        try:
            if readonly:
                conn, temporary = _connect_readonly(path)
            else:
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:
            raise CaptureError(f"{path}: cannot open ({e})") from None
        try:
            store = cls(sqlite_utils.Database(conn), path, redactor)
            store.created = not exists
            store.readonly = readonly
            store._temporary = temporary
            if readonly:
                store._prepare_readonly()
            else:
                store._prepare(fresh=not exists or path.stat().st_size == 0)
                if redactor.enabled and exists:
                    # New secret values are numbered above those already in the capture
                    # (read when the first one needs a number), so a user recorded now
                    # never shares a number with a different user recorded before.
                    redactor.start_above(store._placeholder_floor)
        except sqlite3.DatabaseError as e:
            if temporary is not None:
                temporary.cleanup()
            conn.close()
            raise CaptureError(f"{path}: not a readable wsshadow capture ({e})") from None
        except CaptureError:
            if temporary is not None:
                temporary.cleanup()
            conn.close()
            raise
        except BaseException:
            if temporary is not None:
                temporary.cleanup()
            conn.close()
            if not exists:
                _remove_capture_files(path)
            raise
        return store

    def _placeholder_floor(self) -> int:
        try:
            return self.highest_placeholder_number()
        except sqlite3.Error:  # closed before a value needed a number: nothing to avoid
            return 0

    def _check_format(self) -> int:
        """The file's format version, after checking it is a capture this wsshadow reads."""
        tables = set(self.db.table_names())
        if "meta" not in tables or "sessions" not in tables:
            raise CaptureError(f"{self.path}: an SQLite file, but not a wsshadow capture")
        version = self._format_version()
        if version > FORMAT_VERSION:
            raise NewerFormat(
                f"{self.path} is capture format version {version}; this wsshadow reads up "
                f"to version {FORMAT_VERSION}: upgrade wsshadow to open it"
            )
        return version

    def _prepare_readonly(self) -> None:
        version = self._check_format()
        if version < FORMAT_VERSION:
            # Upgraded in memory: the file keeps its format until a command writes to it.
            memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self.db.conn.backup(memory)
            self.db.conn.close()
            self.db = sqlite_utils.Database(memory)
            self._migrate(version)
            self.upgraded_from = version

    def _prepare(self, fresh: bool) -> None:
        conn = self.db.conn
        if fresh:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            self._set_meta(
                format_version=str(FORMAT_VERSION),
                created_at=str(time.time()),
                redaction="on" if self.redactor.enabled else "off",
            )
        else:
            version = self._check_format()
            if version < FORMAT_VERSION:
                self._migrate(version)
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")

    def _format_version(self) -> int:
        row = self.db.conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise CaptureError(f"{self.path}: capture has no valid format_version") from None

    def _migrate(self, version: int) -> None:
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            while version < FORMAT_VERSION:
                step = MIGRATIONS.get(version)
                if step is None:
                    raise CaptureError(
                        f"{self.path}: no migration from capture format version {version}"
                    )
                step(conn)
                version += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(version),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _set_meta(self, **values: str) -> None:
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )

    def meta(self) -> dict[str, str]:
        """The ``meta`` table as a dict."""
        return dict(self.db.conn.execute("SELECT key, value FROM meta").fetchall())

    def close(self) -> None:
        """Checkpoint the write-ahead log into the file and close it (read-only: just close)."""
        if not self.readonly:
            with contextlib.suppress(sqlite3.Error):
                self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.conn.close()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        # Damage SQLite only notices deep inside a read: name the file it is in. With
        # several captures open (merge) the error passes each one; only the damaged
        # one claims it (checked on this error path only).
        damaged = type(exc) is sqlite3.DatabaseError and not self._healthy()
        if exc is not None:
            self.discard_if_unused()
        else:
            self.close()
        if damaged:
            raise CaptureError(
                f"{self.path}: capture file is damaged or unreadable ({exc})"
            ) from None

    def discard_if_unused(self) -> bool:
        """Close; and when this open created the file and nothing was stored in it (a
        command that failed), remove it with its ``-wal`` and ``-shm``. True if removed."""
        empty = False
        if self.created:
            try:
                empty = not self.db.conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM sessions) OR EXISTS (SELECT 1 FROM runs)"
                ).fetchone()[0]
            except sqlite3.Error:
                empty = False  # unreadable: keep it, whatever it holds
        self.close()
        if empty:
            _remove_capture_files(self.path)
        return empty

    def _healthy(self) -> bool:
        try:
            row = self.db.conn.execute("PRAGMA quick_check(1)").fetchone()
        except sqlite3.Error:
            return False
        return row is not None and row[0] == "ok"

    # ---- writing -----------------------------------------------------------

    @contextlib.contextmanager
    def background_writer(self) -> Iterator[BackgroundWriter]:
        """A ``BackgroundWriter`` on this capture, shared by every caller inside at once.

        Runs replayed together (shadow) share one thread and one transaction
        order. Closed, with everything written, when the last caller leaves;
        a write error is raised as CaptureError there too.
        """
        self._writable()
        if self._background is None:
            self._background = BackgroundWriter(self.path)
        background = self._background
        self._background_users += 1
        try:
            yield background
        finally:
            self._background_users -= 1
            if self._background_users == 0:
                self._background = None
                background.close()

    def _writable(self) -> None:
        if self.readonly:
            raise CaptureError(f"{self.path}: opened read-only, cannot write")

    def writer(self, batch_size: int = 2000) -> CaptureWriter:
        """A batched writer for recorders that interleave many live sessions."""
        self._writable()
        return CaptureWriter(self, batch_size=batch_size)

    def put_sessions(
        self,
        sessions: Iterable[Session],
        on_conflict: Literal["error", "replace", "skip"] = "error",
    ) -> int:
        """Store whole sessions (redacted), in one transaction per 500; returns the count.

        A session whose id is already in the capture raises CaptureError, or
        replaces or skips the stored one as ``on_conflict`` says.
        """
        count = 0
        with self._transaction() as conn:
            for session in sessions:
                session = self.redactor.session(session)
                exists = conn.execute(
                    "SELECT 1 FROM sessions WHERE id = ?", (session.id,)
                ).fetchone()
                if exists:
                    if on_conflict == "skip":
                        continue
                    if on_conflict == "error":
                        raise CaptureError(
                            f"{self.path}: session {session.id} is already in the capture"
                        )
                    self._delete_sessions(conn, [session.id])
                conn.execute(
                    _INSERT_SESSION,
                    _session_row(
                        session.id, session.started_at, session.handshake, session.provenance
                    ),
                )
                texts, others = _split_rows(_frame_row(session.id, m) for m in session.messages)
                _insert_frames(conn, "text", texts)
                _insert_frames(conn, "data", others)
                if session.close is not None:
                    conn.execute(_UPDATE_CLOSE, _close_row(session.id, session.close))
                count += 1
                if count % 500 == 0:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN")
        return count

    def put_session(self, session: Session) -> None:
        """Store one whole session (redacted)."""
        self.put_sessions([session])

    def put_run(self, run: Run) -> None:
        """Create or update a run's row."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (name, target, source, settings, started_at, "
                "ended_at, sessions, errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.name,
                    run.target,
                    run.source.value,
                    _dump(run.settings),
                    run.started_at,
                    run.ended_at,
                    run.sessions,
                    run.errors,
                ),
            )

    def delete_run(self, name: str) -> int:
        """Delete a run and its sessions; returns how many sessions went."""
        with self._transaction() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM sessions WHERE run = ?", (name,))]
            self._delete_sessions(conn, ids)
            conn.execute("DELETE FROM runs WHERE name = ?", (name,))
        return len(ids)

    @staticmethod
    def _delete_sessions(conn: sqlite3.Connection, ids: list[str]) -> None:
        conn.executemany("DELETE FROM frames WHERE session_id = ?", [(i,) for i in ids])
        conn.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in ids])

    def _transaction(self) -> _Transaction:
        self._writable()
        return _Transaction(self.db.conn, self.path)
