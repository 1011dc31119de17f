"""Replay settings from the configuration file and the command line; the command line wins.

``replay`` and ``shadow`` share these: every option has a config
equivalent (docs/config.md), and a value given on the command line
replaces the file's. Lists (maps, headers) given on the command line
replace the file's list; credentials and carry-over rules add to the
file's, the command line winning for the same credential name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from wsshadow.replay.config import Config
from wsshadow.replay.engine.carryover import CarryRule
from wsshadow.replay.engine.credentials import parse_credential
from wsshadow.replay.engine.pacing import Pace
from wsshadow.replay.engine.run import ReplayOptions, parse_header, parse_shard
from wsshadow.replay.engine.targets import parse_route_map
from wsshadow.replay.errors import BadInput

__all__ = ["ReplayOverrides", "build_replay_options", "parse_carry_rule"]


@dataclass(frozen=True)
class ReplayOverrides:
    """What the command line said; ``None`` (or empty) means "take the config's value"."""

    maps: tuple[str, ...] | None = None
    pace: Pace | None = None
    speed: float | None = None
    concurrency: int | None = None
    rate: float | None = None
    headers: tuple[str, ...] | None = None
    credentials: tuple[str, ...] = ()
    ca: Path | None = None
    causal_timeout: float | None = None
    idle_timeout: float | None = None
    carry: tuple[str, ...] = ()
    no_carry_over: bool = False
    session_ids: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    shard: str | None = None
    follow: bool = False


def parse_carry_rule(text: str) -> CarryRule:
    """``SERVER_PATH=CLIENT_PATH[@EVENT]`` (as given to ``--carry``); raises BadInput."""
    parts = text.split("=")
    if len(parts) != 2 or not all(parts):
        raise BadInput(f"carry-over rule {text!r}: expected SERVER_PATH=CLIENT_PATH[@EVENT]")
    client, _, event = parts[1].partition("@")
    return CarryRule(parts[0], client, event or None)


T = TypeVar("T")


def _pick(cli: T | None, configured: T) -> T:
    return configured if cli is None else cli


def build_replay_options(
    config: Config,
    target: str,
    cli: ReplayOverrides,
    env: Mapping[str, str],
) -> ReplayOptions:
    """The ReplayOptions for ``target`` from ``config`` with the command line's overrides.

    Raises BadInput (or ConfigError) naming the bad value.
    """
    rc = config.replay
    maps = cli.maps if cli.maps is not None else rc.maps
    headers = cli.headers if cli.headers is not None else rc.headers
    credentials = dict(config.credentials)
    credentials.update(parse_credential(c) for c in cli.credentials)
    ca = cli.ca
    if ca is None and rc.ca:  # relative to the config file, like every path in it
        ca = Path(rc.ca) if config.path is None else config.path.parent / rc.ca
    carry_rules = tuple(CarryRule(r.server, r.client, r.event) for r in config.carry_over)
    carry_rules += tuple(parse_carry_rule(c) for c in cli.carry)
    return ReplayOptions(
        target=target,
        maps=tuple(parse_route_map(m) for m in maps),
        pace=_pick(cli.pace, Pace(rc.pace)),
        speed=_pick(cli.speed, rc.speed),
        concurrency=_pick(cli.concurrency, rc.concurrency),
        rate=_pick(cli.rate, rc.rate),
        session_ids=cli.session_ids,
        routes=cli.routes,
        headers=tuple(parse_header(h) for h in headers),
        credentials=credentials,
        env=dict(env),
        ca=ca,
        causal_timeout=_pick(cli.causal_timeout, rc.causal_timeout),
        idle_timeout=_pick(cli.idle_timeout, rc.idle_timeout),
        shard=parse_shard(cli.shard) if cli.shard else None,
        follow=cli.follow,
        carry_over=not cli.no_carry_over,
        carry_rules=carry_rules,
        event_keys=config.diff.event_keys,
    )
