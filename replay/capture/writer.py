"""``BackgroundWriter``: a capture's inserts on a thread with its own SQLite connection."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from wsshadow.replay.errors import CaptureError

if TYPE_CHECKING:
    from wsshadow.replay.capture.store import CaptureWriter, _Batch

__all__ = ["BackgroundWriter"]


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
