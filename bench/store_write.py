"""Frames written per second: batched appends of 100-byte frames, 100 interleaved sessions.

Compares the store's CaptureWriter (redaction on) with raw sqlite3
executemany of the same rows (the floor) and with a naive writer that
inserts each frame through sqlite-utils with a commit per frame. Prints
medians of several runs and the ratio to the raw baseline, plus capture
bytes per message.

    .venv/bin/python bench/store_write.py [--frames 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlite_utils

from bench._table import median_spread, print_table, summary
from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode, Provenance, Source
from wsshadow.replay.capture.store import CaptureStore

PAYLOAD = '{"type":"agent_thinking","run_id":"run_000001","thread_id":"t-42","seq":%06d,"x":""}'
SESSIONS = 100


def messages(n: int) -> list[tuple[str, Message]]:
    out = []
    for i in range(n):
        text = PAYLOAD % i
        text = text[:-2] + "y" * (100 - len(text)) + '"}'
        out.append(
            (
                f"sess{i % SESSIONS:04d}",
                Message(
                    i // SESSIONS,
                    i * 1e-4,
                    Direction.SERVER if i % 2 else Direction.CLIENT,
                    Opcode.TEXT,
                    text,
                ),
            )
        )
    return out


def run_writer(path: Path, msgs: list[tuple[str, Message]]) -> float:
    with CaptureStore.open(path, create=True) as store:
        start = time.perf_counter()
        w = store.writer(batch_size=2000)
        for s in range(SESSIONS):
            w.open_session(f"sess{s:04d}", 1.0, Handshake("/ws"), Provenance(Source.PROXY))
        for sid, m in msgs:
            w.append(sid, m)
        w.flush()
        return len(msgs) / (time.perf_counter() - start)


def run_frames(path: Path, msgs: list[tuple[str, Message]]) -> float:
    """The recording proxy's path: frames as tuples, text as UTF-8 bytes, in batches."""
    frames = [(sid, m.seq, m.t, m.direction, m.opcode, str(m.payload).encode()) for sid, m in msgs]
    with CaptureStore.open(path, create=True) as store:
        start = time.perf_counter()
        w = store.writer()
        for s in range(SESSIONS):
            w.open_session(f"sess{s:04d}", 1.0, Handshake("/ws"), Provenance(Source.PROXY))
        for i in range(0, len(frames), 2000):
            w.append_frames(frames[i : i + 2000])
            w.flush()
        return len(msgs) / (time.perf_counter() - start)


def run_raw(path: Path, msgs: list[tuple[str, Message]]) -> float:
    with CaptureStore.open(path, create=True):
        pass  # same schema and pragmas
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    rows = [
        (sid, m.seq, m.t, m.direction.value, m.opcode.value, m.payload, None) for sid, m in msgs
    ]
    start = time.perf_counter()
    for i in range(0, len(rows), 2000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, ?)", rows[i : i + 2000])
        conn.execute("COMMIT")
    rate = len(rows) / (time.perf_counter() - start)
    conn.close()
    return rate


def run_naive(path: Path, msgs: list[tuple[str, Message]]) -> float:
    db = sqlite_utils.Database(path)
    db.enable_wal()
    start = time.perf_counter()
    frames = db.table("frames")
    for sid, m in msgs:
        frames.insert(
            {
                "session_id": sid,
                "seq": m.seq,
                "t": m.t,
                "direction": m.direction.value,
                "opcode": m.opcode.value,
                "text": m.payload,
            }
        )
    rate = len(msgs) / (time.perf_counter() - start)
    db.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--naive-frames", type=int, default=5_000)
    args = ap.parse_args()
    msgs = messages(args.frames)
    results: dict[str, list[float]] = {"raw": [], "writer": [], "frames": [], "naive": []}
    size_per_msg = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for name, fn, data in (
                ("raw", run_raw, msgs),
                ("writer", run_writer, msgs),
                ("frames", run_frames, msgs),
                ("naive", run_naive, msgs[: args.naive_frames]),
            ):
                path = Path(tmp) / f"{name}{r}.db"
                results[name].append(fn(path, data))
                if name == "writer" and r == 0:
                    conn = sqlite3.connect(path)
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    conn.execute("VACUUM")
                    conn.close()
                    size_per_msg = os.path.getsize(path) / len(data)
                for p in Path(tmp).glob(f"{name}{r}.db*"):
                    p.unlink()
    raw, _ = median_spread(results["raw"])
    rows = []
    for name, label in (
        ("raw", "raw sqlite3 executemany (floor)"),
        ("writer", "CaptureWriter.append (Message per frame), batched, redaction on"),
        ("frames", "CaptureWriter.append_frames (the proxy's path), redaction on"),
        ("naive", "sqlite-utils insert per frame (naive)"),
    ):
        med, spread = median_spread(results[name])
        rows.append((label, f"{med:,.0f}", f"±{spread * 50:.0f}%", f"{med / raw:.2f}x"))
    print_table(
        f"Store: 100-byte frames, {SESSIONS} interleaved sessions, median of {args.runs}",
        ["writer", "frames/s", "spread", "vs raw"],
        rows,
    )
    print(f"capture bytes per 100-byte message (after VACUUM): {size_per_msg:.0f}")
    writer, _ = median_spread(results["writer"])
    frames, _ = median_spread(results["frames"])
    summary(
        "store",
        "CaptureWriter frames/s (vs raw executemany)",
        f"{writer:,.0f} ({writer / raw:.2f}x)",
    )
    summary(
        "store",
        "CaptureWriter.append_frames frames/s, the proxy's path (vs raw)",
        f"{frames:,.0f} ({frames / raw:.2f}x)",
        ">= 150,000",
        frames >= 150_000,
    )
    summary("store", "capture bytes per 100-byte message", f"{size_per_msg:.0f}")


if __name__ == "__main__":
    main()
