"""Replay settings from the configuration file and the command line; the command line wins.

The options themselves are declared once, in ``wsshadow.replay.options``;
this module turns config values plus command-line overrides into the
engine's ``ReplayOptions``.

``replay`` and ``shadow`` share these: every option has a config
equivalent (docs/config.md), and a value given on the command line
replaces the file's. Lists (maps, headers) given on the command line
replace the file's list; credentials and carry-over rules add to the
file's, the command line winning for the same credential name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wsshadow.replay.config import Config
from wsshadow.replay.engine.carryover import CarryRule
from wsshadow.replay.engine.credentials import parse_credential
from wsshadow.replay.engine.pacing import Pace
from wsshadow.replay.engine.run import ReplayOptions, parse_header, parse_shard
from wsshadow.replay.engine.targets import parse_route_map
from wsshadow.replay.errors import BadInput
from wsshadow.replay.options import ReplayOverrides

__all__ = ["ReplayOverrides", "build_replay_options", "parse_carry_rule"]


def parse_carry_rule(text: str) -> CarryRule:
    """``SERVER_PATH=CLIENT_PATH[@EVENT]`` (as given to ``--carry``); raises BadInput."""
    parts = text.split("=")
    if len(parts) != 2 or not all(parts):
        raise BadInput(f"carry-over rule {text!r}: expected SERVER_PATH=CLIENT_PATH[@EVENT]")
    client, _, event = parts[1].partition("@")
    return CarryRule(parts[0], client, event or None)


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

    def pick(name: str) -> Any:
        return cli.get(name, getattr(rc, name, None))

    credentials = dict(config.credentials)
    credentials.update(parse_credential(c) for c in cli.get("credentials", ()))
    ca = cli.get("ca")
    if ca is None and rc.ca:  # relative to the config file, like every path in it
        ca = Path(rc.ca) if config.path is None else config.path.parent / rc.ca
    carry_rules = tuple(
        CarryRule(r.server, r.client, r.event) for r in config.carry_over if r.scope != "capture"
    )
    link_rules = tuple(
        CarryRule(r.server, r.client, r.event) for r in config.carry_over if r.scope == "capture"
    )
    carry_rules += tuple(parse_carry_rule(c) for c in cli.get("carry", ()))
    shard = cli.get("shard")
    return ReplayOptions(
        target=target,
        maps=tuple(parse_route_map(m) for m in pick("maps")),
        pace=Pace(pick("pace")),
        speed=pick("speed"),
        concurrency=pick("concurrency"),
        rate=pick("rate"),
        session_ids=tuple(cli.get("session_ids", ())),
        routes=tuple(cli.get("routes", ())),
        headers=tuple(parse_header(h) for h in pick("headers")),
        credentials=credentials,
        env=dict(env),
        ca=Path(ca) if ca is not None else None,
        causal_timeout=pick("causal_timeout"),
        idle_timeout=pick("idle_timeout"),
        shard=parse_shard(shard) if shard else None,
        follow=cli.follow,
        carry_over=not cli.get("no_carry_over", False),
        carry_rules=carry_rules,
        links=not cli.get("no_links", False),
        link_rules=link_rules,
        event_keys=config.diff.event_keys,
        warmup=pick("warmup"),
    )
