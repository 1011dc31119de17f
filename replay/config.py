"""The configuration file: ``wsshadow.toml`` or ``[tool.wsshadow]`` in ``pyproject.toml``.

``load_config(path)`` reads and validates one file; ``discover_config()``
finds the file a command should use. Every key and type is checked against
docs/config.md: an unknown key or a wrong value raises ``ConfigError``
naming the file and the key. The result is a tree of frozen dataclasses;
credentials keep their ``${VAR}`` references unexpanded (replay expands
them when it needs them, so secrets never pass through here).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from wsshadow.replay.config_model import (
    BUILTIN_MASKS,
    BackgroundRule,
    CarryOverRule,
    Config,
    DiffConfig,
    EventOverride,
    NoiseConfig,
    Ordering,
    ReplayConfig,
    RouteDiffConfig,
    RouteOverride,
    Targets,
    TimingConfig,
    VerdictConfig,
    parse_ordering,
)
from wsshadow.replay.errors import ConfigError
from wsshadow.replay.options import REPLAY_OPTIONS

__all__ = [
    "BUILTIN_MASKS",
    "BackgroundRule",
    "CarryOverRule",
    "Config",
    "DiffConfig",
    "EventOverride",
    "NoiseConfig",
    "Ordering",
    "ReplayConfig",
    "RouteDiffConfig",
    "RouteOverride",
    "Targets",
    "TimingConfig",
    "VerdictConfig",
    "discover_config",
    "load_config",
    "parse_config",
    "parse_ordering",
]

_T = TypeVar("_T")


# ---- validation --------------------------------------------------------------


class _Reader:
    """Checks one table's keys and types, naming the file and the dotted key on error."""

    def __init__(self, file: str, table: Mapping[str, Any], prefix: str) -> None:
        self.file = file
        self.table = table
        self.prefix = prefix

    def name(self, key: str) -> str:
        if self.prefix.endswith("]"):
            return f"{self.prefix}.{key}" if key else self.prefix
        return f"[{self.prefix}].{key}" if self.prefix else key

    def fail(self, key: str, expected: str, got: Any = ...) -> ConfigError:
        got_text = "" if got is ... else f", got {got!r}"
        return ConfigError(f"{self.file}: {self.name(key)}: expected {expected}{got_text}")

    def only(self, *allowed: str) -> None:
        for key in self.table:
            if key not in allowed:
                raise ConfigError(
                    f"{self.file}: {self.name(key)}: unknown key "
                    f"(expected one of {', '.join(allowed)})"
                )

    def get(self, key: str, check: Callable[[Any], bool], expected: str, default: _T) -> _T:
        if key not in self.table:
            return default
        value = self.table[key]
        if not check(value):
            raise self.fail(key, expected, value)
        return value  # type: ignore[no-any-return]

    def string(self, key: str, default: _T) -> str | _T:
        return self.get(key, lambda v: isinstance(v, str), "a string", default)

    def choice(self, key: str, choices: tuple[str, ...], default: _T) -> str | _T:
        return self.get(key, lambda v: v in choices, f"one of {', '.join(choices)}", default)

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(
            key,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= minimum,
            f"a number >= {minimum:g}",
            default,
        )
        return float(value)

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        return self.get(
            key,
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
            f"an integer >= {minimum}",
            default,
        )

    def strings(self, key: str, default: _T) -> tuple[str, ...] | _T:
        value = self.get(
            key,
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "a list of strings",
            None,
        )
        return default if value is None else tuple(value)

    def subtables(self, key: str) -> list[tuple[str, _Reader]]:
        """``(name, reader)`` for each table inside table ``key`` (none when absent)."""
        table = self.table_at(key)
        if table is None:
            return []
        out = []
        for name in table.table:
            sub = table.table_at(name)
            assert sub is not None
            out.append((name, sub))
        return out

    def string_table(self, key: str, expected: str) -> dict[str, str]:
        """A table whose every value is a string (``{}`` when absent)."""
        table = self.table_at(key)
        if table is None:
            return {}
        for name, value in table.table.items():
            if not isinstance(value, str):
                raise table.fail(name, expected, value)
        return dict(table.table)

    def table_at(self, key: str) -> _Reader | None:
        if key not in self.table:
            return None
        value = self.table[key]
        if not isinstance(value, dict):
            raise self.fail(key, "a table", value)
        return _Reader(self.file, value, self._sub(key))

    def _sub(self, key: str) -> str:
        if self.prefix.endswith("]"):
            return f"{self.prefix}.{_quote(key)}"
        return f"{self.prefix}.{_quote(key)}" if self.prefix else _quote(key)


def _quote(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


def _check_paths(r: _Reader, key: str, paths: tuple[str, ...]) -> None:
    for p in paths:
        if not p or any(not part for part in p.split(".")):
            raise r.fail(key, "dotted paths such as data.id, *.id or **.timestamp", p)


def _ordering(r: _Reader, key: str) -> Ordering | None:
    value = r.string(key, None)
    if value is None:
        return None
    try:
        return parse_ordering(value)
    except ValueError:
        raise r.fail(key, "one of strict, per-key, window:N", value) from None


def _masks(r: _Reader, key: str, custom: Mapping[str, str]) -> tuple[str, ...] | None:
    masks = r.strings(key, None)
    if masks is None:
        return None
    for m in masks:
        if m not in BUILTIN_MASKS and m not in custom:
            raise r.fail(
                key,
                f"mask names among {', '.join(BUILTIN_MASKS)} or [diff.custom_masks]",
                m,
            )
    return masks


def _background(r: _Reader | None) -> Mapping[str, BackgroundRule] | None:
    if r is None:
        return None
    out: dict[str, BackgroundRule] = {}
    for event, value in r.table.items():
        if not (isinstance(value, list) and all(v in ("unordered", "optional") for v in value)):
            raise r.fail(event, 'a list of "unordered" and/or "optional"', value)
        out[event] = BackgroundRule(unordered="unordered" in value, optional="optional" in value)
    return MappingProxyType(out)


_DIFF_COMMON = (
    "event_keys",
    "ordering",
    "ignore",
    "masks",
    "control_frames",
    "compare_headers",
    "background",
    "dialect",
)


def _diff(r: _Reader | None) -> DiffConfig:
    if r is None:
        return DiffConfig()
    r.only(*_DIFF_COMMON, "custom_masks", "timing", "noise")
    custom = r.string_table("custom_masks", "a regular expression string")
    cm = r.table_at("custom_masks")
    for name, regex in custom.items():
        try:
            re.compile(regex)
        except re.error as e:
            assert cm is not None
            raise cm.fail(name, f"a valid regular expression ({e})", regex) from None
    timing = TimingConfig()
    t = r.table_at("timing")
    if t is not None:
        t.only("ratio", "floor_ms", "min_samples", "significance", "noise_margin")
        timing = TimingConfig(
            t.number("ratio", 2.0, 1.0),
            t.number("floor_ms", 50.0),
            t.integer("min_samples", 20, 2),
            t.number("significance", 0.01),
            t.number("noise_margin", 2.0),
        )
        if not 0 < timing.significance < 1:
            raise t.fail("significance", "a number between 0 and 1", timing.significance)
    noise = NoiseConfig()
    n = r.table_at("noise")
    if n is not None:
        n.only("relative", "absolute", "significance")
        noise = NoiseConfig(
            n.number("relative", 0.2),
            n.number("absolute", 0.03),
            n.number("significance", 0.01),
        )
        if noise.absolute > 1 or noise.significance > 1:
            raise n.fail("absolute" if noise.absolute > 1 else "significance", "a value <= 1")
    ignore = r.strings("ignore", ())
    _check_paths(r, "ignore", ignore)
    keys = r.strings("event_keys", ("type", "event"))
    _check_paths(r, "event_keys", keys)
    masks = _masks(r, "masks", custom)
    return DiffConfig(
        event_keys=keys,
        ordering=_ordering(r, "ordering") or Ordering(),
        ignore=ignore,
        masks=masks if masks is not None else BUILTIN_MASKS,
        custom_masks=MappingProxyType(custom),
        control_frames=r.choice("control_frames", ("ignore", "compare"), "ignore"),  # type: ignore[arg-type]
        compare_headers=r.strings("compare_headers", ()),
        background=_background(r.table_at("background")) or MappingProxyType({}),
        timing=timing,
        noise=noise,
        dialect=_dialect(r),
    )


_VERDICT_SHARES = ("min_session_fidelity", "min_reproduced", "max_noise_share")


def _verdict(r: _Reader | None) -> VerdictConfig:
    """``[verdict]``: shares between 0 and 1."""
    if r is None:
        return VerdictConfig()
    r.only(*_VERDICT_SHARES, "timing")
    default = VerdictConfig()
    values = {name: r.number(name, getattr(default, name)) for name in _VERDICT_SHARES}
    for name, value in values.items():
        if value > 1:
            raise r.fail(name, "a share between 0 and 1", value)
    timing = r.choice("timing", ("gate", "report"), default.timing)
    return VerdictConfig(**values, timing=timing)  # type: ignore[arg-type]


def _dialect(r: _Reader) -> str | None:
    # Names are checked against the installed dialects when the diff starts: plug-ins
    # register theirs by entry point, which the configuration does not load.
    name = r.get("dialect", lambda v: isinstance(v, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", v)),
                 "a dialect name such as socketio, jsonrpc or raw", None)  # fmt: skip
    return name


def _route(r: _Reader, custom: Mapping[str, str]) -> RouteOverride:
    r.only(*_DIFF_COMMON, "events")
    events: dict[str, EventOverride] = {}
    for name, e in r.subtables("events"):
        e.only("ignore")
        ignore = e.strings("ignore", ())
        _check_paths(e, "ignore", ignore)
        events[name] = EventOverride(ignore)
    ignore = r.strings("ignore", ())
    _check_paths(r, "ignore", ignore)
    return RouteOverride(
        event_keys=r.strings("event_keys", None),
        ordering=_ordering(r, "ordering"),
        ignore=ignore,
        masks=_masks(r, "masks", custom),
        control_frames=r.choice("control_frames", ("ignore", "compare"), None),  # type: ignore[arg-type]
        compare_headers=r.strings("compare_headers", None),
        background=_background(r.table_at("background")),
        events=MappingProxyType(events),
        dialect=_dialect(r),
    )


def _replay_table(rp: _Reader) -> ReplayConfig:
    """``[replay]``, checked against the declarations in ``options.py``."""
    specs = [s for s in REPLAY_OPTIONS if s.config]
    rp.only(*(s.name for s in specs))
    values: dict[str, Any] = {}
    for s in specs:
        if s.name not in rp.table:
            continue
        if s.many:
            items = rp.strings(s.name, ())
            for item in items:
                if s.pattern and s.pattern not in item:
                    raise rp.fail(s.name, f"entries of the form {s.metavar}", item)
            values[s.name] = items
        elif s.kind == "choice":
            values[s.name] = rp.choice(s.name, s.choices, s.default)
        elif s.kind in ("float", "int"):
            low = s.minimum if s.minimum is not None else float("-inf")
            value = (
                rp.integer(s.name, s.default, int(low)) if s.kind == "int"
                else rp.number(s.name, s.default, low)
            )  # fmt: skip
            if s.above and value <= low:
                raise rp.fail(s.name, f"a number > {low:g}", value)
            values[s.name] = value
        elif s.kind == "bool":
            values[s.name] = rp.get(s.name, lambda v: isinstance(v, bool), "true or false", False)
        else:
            values[s.name] = rp.string(s.name, None)
    return ReplayConfig(**values)


def parse_config(data: Mapping[str, Any], file: str, path: Path | None = None) -> Config:
    """Validate an already-parsed TOML table; ``file`` names it in errors."""
    top = _Reader(file, data, "")
    top.only("targets", "replay", "credentials", "carry_over", "diff", "routes", "verdict")
    targets = Targets()
    t = top.table_at("targets")
    if t is not None:
        t.only("baseline", "candidate")
        targets = Targets(t.string("baseline", None), t.string("candidate", None))
    replay = ReplayConfig()
    rp = top.table_at("replay")
    if rp is not None:
        replay = _replay_table(rp)
    credentials = top.string_table("credentials", "a string (use ${VAR} for environment variables)")
    rules: list[CarryOverRule] = []
    if "carry_over" in data:
        items = data["carry_over"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise top.fail("carry_over", "an array of tables ([[carry_over]])", items)
        for i, item in enumerate(items):
            cr = _Reader(file, item, f"[carry_over][{i}]")
            cr.only("server", "client", "event", "scope")
            server, client = cr.string("server", None), cr.string("client", None)
            if server is None or client is None:
                raise cr.fail("server" if server is None else "client", "a dotted path (required)")
            _check_paths(cr, "server", (server,))
            _check_paths(cr, "client", (client,))
            scope = cr.string("scope", None) or "session"
            if scope not in ("session", "capture"):
                raise cr.fail("scope", '"session" or "capture"', scope)
            rules.append(CarryOverRule(server, client, cr.string("event", None), scope))
    diff = _diff(top.table_at("diff"))
    routes = {route: _route(sub, diff.custom_masks) for route, sub in top.subtables("routes")}
    if routes:
        diff = replace(diff, routes=MappingProxyType(routes))
    return Config(
        path=path,
        targets=targets,
        replay=replay,
        credentials=MappingProxyType(credentials),
        carry_over=tuple(rules),
        diff=diff,
        verdict=_verdict(top.table_at("verdict")),
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a ``wsshadow.toml`` (or a ``pyproject.toml``'s ``[tool.wsshadow]``).

    Raises ConfigError for a missing or unreadable file, bad TOML, an
    unknown key or a wrong value, always naming the file and the key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        section = tool.get("wsshadow", {}) if isinstance(tool, dict) else {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [tool.wsshadow]: expected a table")
        return parse_config(section, f"{path} [tool.wsshadow]", path)
    return parse_config(data, str(path), path)


def discover_config(explicit: str | Path | None = None, cwd: str | Path = ".") -> Config:
    """The configuration a command uses: ``explicit``, else ./wsshadow.toml, else
    ``[tool.wsshadow]`` in ./pyproject.toml, else the built-in defaults."""
    if explicit is not None:
        return load_config(explicit)
    here = Path(cwd)
    if (here / "wsshadow.toml").is_file():
        return load_config(here / "wsshadow.toml")
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return Config()  # someone else's broken pyproject is not our config
        tool = data.get("tool")
        if isinstance(tool, dict) and "wsshadow" in tool:
            return load_config(pyproject)
    return Config()
