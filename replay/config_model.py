"""The configuration's values: frozen dataclasses for ``[replay]``, ``[diff]``, ``[routes]``,
``[verdict]``, ``[targets]`` and the whole file. ``config.py`` reads and validates the file
into them (and re-exports them). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

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
    "parse_ordering",
]

BUILTIN_MASKS = ("uuid", "iso8601", "epoch", "hex")
"""Mask names understood without a regex of their own."""


@dataclass(frozen=True, slots=True)
class Ordering:
    """How strictly the order of server messages counts.

    ``strict``: every reordering is a difference; ``per-key``: only the
    order among messages with the same event key; ``window``: moves of up to
    ``window`` positions are tolerated.
    """

    mode: Literal["strict", "per-key", "window"] = "strict"
    window: int = 0

    def __str__(self) -> str:
        return f"window:{self.window}" if self.mode == "window" else self.mode


def parse_ordering(value: str) -> Ordering:
    """``strict`` / ``per-key`` / ``window:N`` as an Ordering; raises ValueError."""
    if value in ("strict", "per-key"):
        return Ordering(value)  # type: ignore[arg-type]
    m = re.fullmatch(r"window:(\d+)", value)
    if m:
        return Ordering("window", int(m.group(1)))
    raise ValueError(value)


@dataclass(frozen=True, slots=True)
class BackgroundRule:
    """A background event (heartbeat, ping): may race (unordered) and/or be absent (optional)."""

    unordered: bool = False
    optional: bool = False


@dataclass(frozen=True, slots=True)
class TimingConfig:
    """When a latency difference is a finding (``[diff.timing]``, ``diff/timing.py``).

    The candidate's median must be ``ratio`` x the baseline's and ``floor_ms``
    slower, a one-sided Mann-Whitney U test over at least ``min_samples``
    samples per side must give p < ``significance``, and the shift must be
    more than ``noise_margin`` x the noise runs' own shift from the baseline.
    """

    ratio: float = 2.0
    floor_ms: float = 50.0
    min_samples: int = 20
    significance: float = 0.01
    noise_margin: float = 2.0


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """Thresholds a noisy signature's candidate rate must pass to be reported."""

    relative: float = 0.2
    absolute: float = 0.03
    significance: float = 0.01


@dataclass(frozen=True, slots=True)
class EventOverride:
    """Extra ignore rules for one event key of one route."""

    ignore: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteOverride:
    """Per-route overrides of ``[diff]`` keys; None means "as in [diff]"."""

    event_keys: tuple[str, ...] | None = None
    ordering: Ordering | None = None
    ignore: tuple[str, ...] = ()
    masks: tuple[str, ...] | None = None
    control_frames: Literal["ignore", "compare"] | None = None
    compare_headers: tuple[str, ...] | None = None
    background: Mapping[str, BackgroundRule] | None = None
    events: Mapping[str, EventOverride] = field(default_factory=lambda: MappingProxyType({}))
    dialect: str | None = None


@dataclass(frozen=True, slots=True)
class RouteDiffConfig:
    """The diff settings in force for one route, overrides resolved.

    ``ignore`` is the ``[diff]`` list plus the route's; ``event_ignore``
    adds rules for single event keys.
    """

    event_keys: tuple[str, ...]
    ordering: Ordering
    ignore: tuple[str, ...]
    masks: tuple[str, ...]
    custom_masks: Mapping[str, str]
    control_frames: Literal["ignore", "compare"]
    compare_headers: tuple[str, ...]
    background: Mapping[str, BackgroundRule]
    timing: TimingConfig
    event_ignore: Mapping[str, tuple[str, ...]]
    dialect: str | None = None
    """A dialect name (``socketio``, ``raw``, ...), or None to detect it per session."""


@dataclass(frozen=True, slots=True)
class DiffConfig:
    """The ``[diff]`` table and the ``[routes]`` overrides."""

    event_keys: tuple[str, ...] = ("type", "event")
    ordering: Ordering = Ordering()
    ignore: tuple[str, ...] = ()
    masks: tuple[str, ...] = BUILTIN_MASKS
    custom_masks: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    control_frames: Literal["ignore", "compare"] = "ignore"
    compare_headers: tuple[str, ...] = ()
    background: Mapping[str, BackgroundRule] = field(default_factory=lambda: MappingProxyType({}))
    timing: TimingConfig = TimingConfig()
    noise: NoiseConfig = NoiseConfig()
    routes: Mapping[str, RouteOverride] = field(default_factory=lambda: MappingProxyType({}))
    dialect: str | None = None

    def for_route(self, route: str) -> RouteDiffConfig:
        """The settings for ``route`` (the recorded path), its overrides applied."""
        o = self.routes.get(route, RouteOverride())
        return RouteDiffConfig(
            event_keys=o.event_keys if o.event_keys is not None else self.event_keys,
            ordering=o.ordering if o.ordering is not None else self.ordering,
            ignore=self.ignore + o.ignore,
            masks=o.masks if o.masks is not None else self.masks,
            custom_masks=self.custom_masks,
            control_frames=o.control_frames or self.control_frames,
            compare_headers=(
                o.compare_headers if o.compare_headers is not None else self.compare_headers
            ),
            background=o.background if o.background is not None else self.background,
            timing=self.timing,
            event_ignore=MappingProxyType({k: v.ignore for k, v in o.events.items()}),
            dialect=o.dialect if o.dialect is not None else self.dialect,
        )


@dataclass(frozen=True, slots=True)
class VerdictConfig:
    """The ``[verdict]`` table: what an ``equivalent`` verdict needs besides no difference.

    A session is reproduced when its baseline replay produced at least
    ``min_session_fidelity`` of its recorded server events; the verdict is
    ``equivalent`` only when at least ``min_reproduced`` of the sessions are
    reproduced and no route had more than ``max_noise_share`` of its compared
    values suppressed as noise. ``timing`` says whether timing findings gate
    the verdict (docs/timing.md).
    """

    min_session_fidelity: float = 0.9
    min_reproduced: float = 0.95
    max_noise_share: float = 0.2
    timing: Literal["gate", "report"] = "report"
    """``report``: timing findings are listed in their own section, the verdict
    unchanged; ``gate``: a timing finding makes the verdict divergent."""


@dataclass(frozen=True, slots=True)
class CarryOverRule:
    """A value a server message issues and a later client message echoes."""

    server: str
    client: str
    event: str | None = None
    scope: str = "session"
    """``session``: within one session; ``capture``: issued to one session, sent by another
    (links sessions into a scenario, docs/scenarios.md)."""


class ReplayConfig:
    """The ``[replay]`` table: each option of ``REPLAY_OPTIONS`` that the config may set.

    Read as attributes (``config.replay.pace``); an option the file does not
    set has its declared default. Maps and headers keep their command-line
    string forms.
    """

    __slots__ = ("values",)

    def __init__(self, **values: Any) -> None:
        defaults = {s.name: s.default for s in REPLAY_OPTIONS if s.config}
        unknown = set(values) - set(defaults)
        if unknown:
            raise TypeError(f"not [replay] options: {', '.join(sorted(unknown))}")
        defaults.update(values)
        self.values: Mapping[str, Any] = MappingProxyType(defaults)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplayConfig) and dict(self.values) == dict(other.values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.values.items())))

    def __repr__(self) -> str:
        return f"ReplayConfig({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"


@dataclass(frozen=True, slots=True)
class Targets:
    """The ``[targets]`` table: URLs, or ``recorded`` for the baseline."""

    baseline: str | None = None
    candidate: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A whole configuration file; ``path`` is None for the built-in defaults."""

    path: Path | None = None
    targets: Targets = Targets()
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    credentials: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    carry_over: tuple[CarryOverRule, ...] = ()
    diff: DiffConfig = DiffConfig()
    verdict: VerdictConfig = VerdictConfig()
