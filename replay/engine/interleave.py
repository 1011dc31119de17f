"""Fair interleaving of concurrent replay runs: every session starts on every target together.

``shadow`` replays the same sessions to the baseline, the candidate and the
noise runs at once. Left alone, each run starts its sessions as fast as its
own target answers, so a faster target races ahead and the machine's load
falls unevenly on the targets. ``Lockstep`` holds each run's session *i*
until every run still going has reached session *i*, then releases them
together, in an order that rotates with *i* (run k goes first for sessions
i with i mod n == k), so no target is always first or always last.

A scenario (sessions linked through the server's state: ``engine/scenarios.py``)
is the exception: two runs replaying it to the *same* target at once (the
baseline and a noise run) would meet in that state, a replayed player joining
the other run's game, a message broadcast to both runs' members. So runs take
turns with a scenario on one target (``Lockstep.turn``); other sessions and
other targets stay in lockstep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

__all__ = ["Lockstep"]


class Lockstep:
    """A start gate shared by concurrent runs (one event loop)."""

    def __init__(self, runs: Sequence[str]) -> None:
        self.order = list(runs)
        self.active = set(runs)
        self.waiting: dict[int, dict[str, asyncio.Future[None]]] = {}
        self.released = 0
        self._turns: dict[tuple[str, str], asyncio.Lock] = {}
        self.turns_waited = 0

    def describe(self) -> str:
        """How the runs were interleaved, for the report."""
        if len(self.order) == 1:
            return "one run (the candidate only): nothing to interleave"
        text = (
            f"lockstep: each session started on all {len(self.order)} runs at the same moment, "
            "the first run rotating from one session to the next"
        )
        if self.turns_waited:
            text += (
                f"; runs replaying a scenario to the same target took turns "
                f"({self.turns_waited} waited)"
            )
        return text

    @contextlib.asynccontextmanager
    async def turn(self, target: str, scenario: str) -> AsyncIterator[None]:
        """Replay ``scenario`` to ``target`` while no other run does (see the module doc)."""
        lock = self._turns.setdefault((target, scenario), asyncio.Lock())
        if lock.locked():
            self.turns_waited += 1
        async with lock:
            yield

    async def ready(self, run: str, index: int) -> None:
        """Wait until every active run is ready to start its session ``index``."""
        if run not in self.active:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(index, {})[run] = future
        self._release(index)
        await future

    def done(self, run: str) -> None:
        """``run`` starts no more sessions (finished, or failed): nobody waits for it."""
        if run in self.active:
            self.active.discard(run)
            for index in sorted(self.waiting):
                self._release(index)

    def _release(self, index: int) -> None:
        ready = self.waiting.get(index)
        if ready is None or not self.active <= ready.keys():
            return
        del self.waiting[index]
        k = index % len(self.order)
        order = [run for run in self.order[k:] + self.order[:k] if run in ready]
        # Woken on the next loop turn, so that the run that arrived last (and
        # released the others) waits its turn like everyone else.
        asyncio.get_running_loop().call_soon(self._wake, [ready[run] for run in order])
        self.released += 1

    @staticmethod
    def _wake(futures: list[asyncio.Future[None]]) -> None:
        for future in futures:
            if not future.done():
                future.set_result(None)
