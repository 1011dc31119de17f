"""Helpers for the dialect tests: diff two sessions of frames, name what differs."""

from __future__ import annotations

from typing import Any

from tests.diff.diffkit import C, S, session
from wsshadow.replay.config import DiffConfig, RouteOverride
from wsshadow.replay.diff.capture import diff_session
from wsshadow.replay.diff.compare import Finding
from wsshadow.replay.diff.dialects import detect_dialect

__all__ = ["C", "S", "detected", "diff", "names", "session"]


def diff(
    base: list[tuple[str, Any, float]],
    cand: list[tuple[str, Any, float]],
    *,
    route: str = "/ws",
    subprotocol: str | None = None,
    dialect: str | None = None,
    noise: list[list[tuple[str, Any, float]]] = (),  # type: ignore[assignment]
) -> tuple[str | None, list[Finding]]:
    """(dialect used, findings) of a baseline and a candidate built from frames."""
    routes = {route: RouteOverride(dialect=dialect)} if dialect else {}
    config = DiffConfig(routes=routes).for_route(route)  # type: ignore[arg-type]
    b = session("b", base, route=route, subprotocol=subprotocol)
    c = session("c", cand, route=route, subprotocol=subprotocol)
    others = [session(f"n{i}", n, route=route, subprotocol=subprotocol)
              for i, n in enumerate(noise)]  # fmt: skip
    r = diff_session("s", route, b, c, others, config)
    per_session = r.noise.signatures if r.noise is not None else set()
    return r.dialect, [f for f in r.findings if f.signature(route) not in per_session]


def names(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    """(kind, event, path) of each finding, sorted."""
    return sorted((f.kind, f.event, f.path) for f in findings)


def detected(items: list[tuple[str, Any, float]], **kw: Any) -> str:
    """The dialect detected for a session of these frames."""
    return detect_dialect(session("d", items, **kw)).name
