"""Targets and route maps: which URL a recorded session is replayed against, with which headers.

A route map ``FROM=TO`` sends sessions recorded on path ``FROM`` (or below
it) to path ``TO``; a query string on ``TO`` is merged into the recorded one,
its parameters winning (``/ws/factory=/ws?mode=factory``). The target URL
gives scheme, host, port and an optional path prefix and query.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wsshadow.replay.capture.model import Headers
from wsshadow.replay.errors import BadInput

__all__ = [
    "DROPPED_HEADERS",
    "RouteMap",
    "build_url",
    "map_route",
    "parse_route_map",
    "parse_target",
    "request_headers",
]

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


@dataclass(frozen=True, slots=True)
class RouteMap:
    """Sessions recorded on ``source`` (or a path below it) go to ``path``, plus ``query``."""

    source: str
    path: str
    query: str = ""

    def matches(self, route: str) -> bool:
        """True when ``route`` is ``source`` or a path below it."""
        src = self.source.rstrip("/")
        return route == self.source or route == src or route.startswith(src + "/")

    def __str__(self) -> str:
        return f"{self.source}={self.path}" + (f"?{self.query}" if self.query else "")


def parse_route_map(text: str) -> RouteMap:
    """Parse ``FROM=TO[?QUERY]``; raises BadInput on anything else."""
    source, sep, to = text.partition("=")
    source, to = source.strip(), to.strip()
    if not sep or not source.startswith("/") or not to.startswith("/"):
        raise BadInput(
            f"route map {text!r}: expected FROM=TO with two paths, like /ws/a=/ws?mode=a"
        )
    path, _, query = to.partition("?")
    return RouteMap(source, path, query)


def parse_target(url: str) -> tuple[str, str, str, str]:
    """Split a target URL into (scheme, netloc, path prefix, query); raises BadInput."""
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise BadInput(f"target {url!r}: expected ws://HOST:PORT or wss://HOST:PORT")
    if parts.fragment:
        raise BadInput(f"target {url!r}: a WebSocket URL has no #fragment")
    return scheme, parts.netloc, parts.path.rstrip("/"), parts.query


def _merge_query(*queries: str) -> str:
    """Merge raw query strings; a later one's parameters replace earlier ones of that name."""
    merged: dict[str, list[str]] = {}
    for query in queries:
        if not query:
            continue
        fresh: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            fresh.setdefault(key, []).append(value)
        for key, values in fresh.items():
            merged.pop(key, None)
            merged[key] = values
    return urlencode([(k, v) for k, vs in merged.items() for v in vs], safe="${}:")


def map_route(route: str, maps: tuple[RouteMap, ...]) -> tuple[str, str]:
    """The (path, extra query) a recorded route is sent to; the longest matching map wins."""
    best: RouteMap | None = None
    for m in maps:
        if m.matches(route) and (best is None or len(m.source) > len(best.source)):
            best = m
    if best is None:
        return route, ""
    rest = route[len(best.source.rstrip("/")) :] if route != best.source else ""
    path = best.path.rstrip("/") + rest if rest else best.path
    return path, best.query


def build_url(target: str, route: str, query: str, maps: tuple[RouteMap, ...] = ()) -> str:
    """The URL to replay a session recorded on ``route?query`` against ``target``.

    Path: the target's path prefix plus the mapped route. Query: the target's,
    then the recorded one, then the map's, later parameters replacing earlier
    ones of the same name.
    """
    scheme, netloc, prefix, target_query = parse_target(target)
    path, map_query = map_route(route or "/", maps)
    if not path.startswith("/"):
        path = "/" + path
    return urlunsplit(
        (scheme, netloc, prefix + path, _merge_query(target_query, query, map_query), "")
    )


# Request headers never replayed: hop-by-hop, or computed by the client library.
DROPPED_HEADERS = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "content-length",
        "user-agent",
    }
)


def request_headers(recorded: Headers, overrides: Headers) -> tuple[Headers, str | None]:
    """Headers to send (recorded minus hop-by-hop, with overrides), and the User-Agent."""
    overridden = {name.lower() for name, _ in overrides}
    headers = [
        (k, v)
        for k, v in recorded
        if k.lower() not in DROPPED_HEADERS
        and not k.lower().startswith("sec-websocket-")
        and k.lower() not in overridden
    ]
    user_agent = next((v for k, v in recorded if k.lower() == "user-agent"), None)
    for name, value in overrides:
        if name.lower() == "user-agent":
            user_agent = value or None
        elif value:
            headers.append((name, value))
    return tuple(headers), user_agent
