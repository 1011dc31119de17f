"""Route maps and target URLs."""

from __future__ import annotations

import pytest

from wsshadow.replay.engine.targets import RouteMap, build_url, map_route, parse_route_map
from wsshadow.replay.errors import BadInput


def test_parse_route_map_splits_path_and_query() -> None:
    assert parse_route_map("/ws/factory=/ws?mode=factory") == RouteMap(
        "/ws/factory", "/ws", "mode=factory"
    )
    assert str(parse_route_map("/a=/b")) == "/a=/b"


@pytest.mark.parametrize("bad", ["/ws", "ws=/x", "/ws=x", "=/x"])
def test_parse_route_map_rejects_malformed(bad: str) -> None:
    with pytest.raises(BadInput):
        parse_route_map(bad)


def test_longest_matching_map_wins_and_subpaths_follow() -> None:
    maps = (parse_route_map("/ws=/v2"), parse_route_map("/ws/factory=/ws?mode=factory"))
    assert map_route("/ws/factory", maps) == ("/ws", "mode=factory")
    assert map_route("/ws/other", maps) == ("/v2/other", "")
    assert map_route("/wsx", maps) == ("/wsx", "")


def test_build_url_merges_queries_map_wins() -> None:
    maps = (parse_route_map("/ws/factory=/ws?mode=factory"),)
    url = build_url("ws://127.0.0.1:9002", "/ws/factory", "mode=old&user=alice", maps)
    assert url == "ws://127.0.0.1:9002/ws?user=alice&mode=factory"


def test_build_url_keeps_target_prefix_and_converts_http_schemes() -> None:
    assert build_url("https://h:1/api/", "/ws", "") == "wss://h:1/api/ws"
    assert build_url("ws://h:1?x=1", "/ws", "y=2") == "ws://h:1/ws?x=1&y=2"


@pytest.mark.parametrize("bad", ["ftp://h/", "127.0.0.1:9000", "ws://h/#frag"])
def test_bad_targets(bad: str) -> None:
    with pytest.raises(BadInput):
        build_url(bad, "/ws", "")
