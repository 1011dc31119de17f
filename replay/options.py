"""Every replay option, declared once.

Each ``OptionSpec`` names an option's field, flag, type, default, help and
whether ``[replay]`` in the config file may set it. Everything else is
derived from this table: the ``replay`` and ``shadow`` commands' options
(``cli/options.py``), the pytest plugin's ``--wsshadow-*`` options, the
validation of the config file's ``[replay]`` table (``config.py``), and
``ReplayOverrides``, the values a command line gave. A new option is one
entry here plus the line in ``engine/options.py`` that hands it to the engine.

Pure: no typer, no pytest, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["NO_OVERRIDES", "REPLAY_OPTIONS", "OptionSpec", "ReplayOverrides", "replay_option"]

Kind = Literal["float", "int", "str", "path", "choice", "bool"]
_VALUE_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "path": Path}


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option: ``--FLAG`` on the command line, ``[replay] NAME`` in the config when ``config``.

    ``many`` options repeat on the command line and are lists in the config;
    ``default`` is the built-in value (shown in help), ``None`` for "none".
    ``minimum`` bounds numbers (``above``: strictly greater).
    """

    name: str
    flag: str
    kind: Kind
    help: str
    metavar: str
    default: Any = None
    many: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    above: bool = False
    config: bool = True
    pattern: str = ""
    """A character every value must contain (``=`` in FROM=TO), checked in the config too."""
    pytest: bool = True
    """Also a ``--wsshadow-<flag>`` option of the pytest plugin (False: the plugin cannot
    honour it, so it does not offer it)."""

    @property
    def value_type(self) -> type | None:
        """The Python type of one value (None for a flag or a choice)."""
        return _VALUE_TYPES.get(self.kind)

    def help_text(self) -> str:
        """The help line, with the default and the config key when there is one."""
        extra = []
        if self.default is not None and self.default != () and self.default is not False:
            extra.append(f"default: {self.default}")
        if self.config:
            extra.append(f"config: [replay] {self.name}")
        return self.help + (f" [{'; '.join(extra)}]" if extra else "")


REPLAY_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "maps", "--map", "str", "Route map FROM=TO, like /ws/factory=/ws?mode=factory "
        "(repeatable; replaces the config's list).", "FROM=TO", default=(), many=True, pattern="=",
    ),
    OptionSpec(
        "pace", "--pace", "choice", "When to send client messages: causal (after the server "
        "messages that preceded them), recorded (the recorded gaps) or asap.", "MODE",
        default="causal", choices=("causal", "recorded", "asap"),
    ),
    OptionSpec(
        "speed", "--speed", "float", "Time scale for --pace recorded (2: twice as fast).", "X",
        default=1.0, minimum=0.0, above=True,
    ),
    OptionSpec(
        "concurrency", "--concurrency", "int", "Sessions replayed at once (a multi-user "
        "scenario counts as one).", "N",
        default=50, minimum=1,
    ),
    OptionSpec(
        "rate", "--rate", "float", "Sessions started per second (0: unlimited).", "PER_SECOND",
        default=0.0, minimum=0.0,
    ),
    OptionSpec(
        "causal_timeout", "--causal-timeout", "float",
        "Seconds past the recorded gap to wait for the server before sending anyway.", "SECONDS",
        default=2.0, minimum=0.0,
    ),
    OptionSpec(
        "idle_timeout", "--idle-timeout", "float",
        "A server silent this long after the last client message ends the session.", "SECONDS",
        default=1.0, minimum=0.0,
    ),
    OptionSpec(
        "warmup", "--warmup", "int", "Replay the first N sessions once before the measured "
        "replay, stored nowhere, so cold caches and pools of a fresh target do not count "
        "[default: 5 in shadow, 0 in replay].", "N", minimum=0,
    ),
    OptionSpec(
        "headers", "--header", "str", "'Name: value' replacing a recorded request header "
        "(repeatable; replaces the config's list).", "'NAME: VALUE'", default=(), many=True,
        pattern=":",
    ),
    OptionSpec(
        "ca", "--ca", "path", "CA certificates (PEM) for a wss:// target; in the config, "
        "relative to the config file.", "FILE",
    ),
    OptionSpec(
        "credentials", "--credential", "str", "NAME=VALUE filling the ${redacted:KIND:NAME} "
        "placeholders (NAME#N: only those of recorded value N, one user; plain NAME: every "
        "N); VALUE may be ${ENV_VAR} (repeatable; adds to [credentials]).",
        "NAME=VALUE", default=(), many=True, config=False, pattern="=",
    ),
    OptionSpec(
        "carry", "--carry", "str", "Explicit carry-over rule SERVER_PATH=CLIENT_PATH[@EVENT] "
        "(repeatable; adds to [[carry_over]]).", "SERVER=CLIENT", default=(), many=True,
        config=False, pattern="=",
    ),
    OptionSpec(
        "no_carry_over", "--no-carry-over", "bool",
        "Replay client messages exactly as recorded (no server-issued values carried over).",
        "", default=False, config=False,
    ),
    OptionSpec(
        "no_links", "--no-links", "bool", "Replay every session alone (no scenarios: values "
        "and waits do not cross sessions).", "", default=False, config=False,
    ),
    OptionSpec(
        "session_ids", "--session", "str", "Only this session id or id prefix, with the "
        "other sessions of its scenario (repeatable).",
        "ID", default=(), many=True, config=False,
    ),
    OptionSpec(
        "routes", "--route", "str", "Only sessions whose recorded route matches this glob "
        "(repeatable).", "GLOB", default=(), many=True, config=False,
    ),
    OptionSpec(
        "shard", "--shard", "str", "I/N: replay a stable 1/N of the sessions (CI sharding).",
        "I/N", config=False, pattern="/",
    ),
)  # fmt: skip

_BY_NAME = MappingProxyType({s.name: s for s in REPLAY_OPTIONS})


def replay_option(name: str) -> OptionSpec:
    """The declaration of option ``name``; raises KeyError for an unknown one."""
    return _BY_NAME[name]


@dataclass(frozen=True, slots=True)
class ReplayOverrides:
    """What a command line said, by option name; an absent name means "take the config's value".

    Built by the CLI and the pytest plugin from ``REPLAY_OPTIONS``; ``follow``
    is the ``replay`` command's own switch.
    """

    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    follow: bool = False

    @classmethod
    def of(cls, follow: bool = False, **values: Any) -> ReplayOverrides:
        """Overrides from keyword values; ``None`` (and a bool left False) counts as "not given"."""
        for name in values:
            replay_option(name)  # an unknown name is a programming error: fail loudly
        given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}
        given = {k: v for k, v in given.items() if v is not None}
        given = {k: v for k, v in given.items() if not (v is False and _BY_NAME[k].kind == "bool")}
        return cls(MappingProxyType(given), follow)

    def get(self, name: str, default: Any = None) -> Any:
        """The command line's value for ``name``, or ``default`` when it gave none."""
        return self.values.get(name, default)


NO_OVERRIDES = ReplayOverrides()
"""A command line that said nothing."""
