"""Ignore rules: dotted paths, with ``*`` for one level and ``**`` for any depth,
dropped from JSON values before they are compared (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["IgnoreRules", "get_path"]


def get_path(value: Any, path: str | None) -> Any:
    """The value at a dotted path (list indexes as numbers), or None when absent."""
    if path is None:
        return value
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                return None
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class IgnoreRules:
    """Dotted paths to drop from a JSON value: ``*`` is one level, ``**`` any depth."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[tuple[str, ...], ...] = tuple(
            tuple(p.split(".")) for p in dict.fromkeys(patterns)
        )
        self.start = self._closure({(i, 0) for i in range(len(self.patterns))})

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _closure(self, states: set[tuple[int, int]]) -> frozenset[tuple[int, int]]:
        out = set(states)
        todo = list(states)
        while todo:
            pi, pos = todo.pop()
            pat = self.patterns[pi]
            if pos < len(pat) and pat[pos] == "**" and pos + 1 < len(pat):
                nxt = (pi, pos + 1)
                if nxt not in out:
                    out.add(nxt)
                    todo.append(nxt)
        return frozenset(out)

    def step(
        self, states: frozenset[tuple[int, int]], key: str
    ) -> tuple[bool, frozenset[tuple[int, int]]]:
        """Descend into ``key``: (the key is ignored, the states below it)."""
        nxt: set[tuple[int, int]] = set()
        for pi, pos in states:
            pat = self.patterns[pi]
            seg = pat[pos]
            if seg == "**":
                if pos + 1 == len(pat):
                    return True, frozenset()
                nxt.add((pi, pos))
            elif seg == "*" or seg == key:
                if pos + 1 == len(pat):
                    return True, frozenset()
                nxt.add((pi, pos + 1))
        return False, self._closure(nxt) if nxt else frozenset()

    def apply(self, value: Any) -> Any:
        """A copy of ``value`` without the ignored paths (``value`` is not changed)."""
        if not self.patterns:
            return value
        return self._walk(value, self.start)

    def _walk(self, value: Any, states: frozenset[tuple[int, int]]) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                dropped, nxt = self.step(states, k)
                if not dropped:
                    out[k] = self._walk(v, nxt) if nxt else v
            return out
        if isinstance(value, list):
            items: list[Any] = []
            for i, v in enumerate(value):
                dropped, nxt = self.step(states, str(i))
                if not dropped:
                    items.append(self._walk(v, nxt) if nxt else v)
            return items
        return value
