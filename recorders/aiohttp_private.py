"""Every aiohttp attribute the recorders use beyond aiohttp's documented API, in one place.

The recording relay takes over both TCP connections after the handshakes
the way aiohttp's own WebSocket support does, and the live mirror aborts a
client WebSocket without a closing handshake. Both need these private
parts, which is why ``aiohttp`` is capped below the next minor release in
pyproject.toml. ``missing_private_api()`` names any that an installed
aiohttp lacks; a test calls it (tests/recorders/test_aiohttp_private.py),
so an upgrade that removes one fails with its name instead of deep inside
a relay.
"""

from __future__ import annotations

import importlib
import inspect

__all__ = ["PRIVATE_API", "missing_private_api"]

PRIVATE_API: tuple[tuple[str, str, str], ...] = (
    ("aiohttp.web_protocol", "RequestHandler", "set_parser"),
    ("aiohttp.web_protocol", "RequestHandler", "writing_paused"),
    ("aiohttp.web_protocol", "RequestHandler", "_drain_helper"),
    ("aiohttp.web_protocol", "RequestHandler", "keep_alive"),
    ("aiohttp.client_proto", "ResponseHandler", "set_parser"),
    ("aiohttp.client_proto", "ResponseHandler", "writing_paused"),
    ("aiohttp.client_proto", "ResponseHandler", "_drain_helper"),
    ("aiohttp.client_reqrep", "ClientResponse", "connection"),
    ("aiohttp.client_ws", "ClientWebSocketResponse", "_set_closed"),
    ("aiohttp.client_ws", "ClientWebSocketResponse", "_response"),
)
"""(module, class, attribute) for each private part used: relay.py (``set_parser``,
``writing_paused``, ``_drain_helper``), proxy.py (``keep_alive``, the response's
``connection`` transport and protocol), mirror.py (``_set_closed``, ``_response``)."""


def missing_private_api(
    entries: tuple[tuple[str, str, str], ...] = PRIVATE_API,
) -> list[str]:
    """``module.Class.attribute`` for each entry the installed aiohttp does not have."""
    missing = []
    for module_name, class_name, attribute in entries:
        cls = getattr(importlib.import_module(module_name), class_name, None)
        has = cls is not None and (
            hasattr(cls, attribute)
            or attribute in getattr(cls, "__slots__", ())
            or attribute in getattr(cls, "__annotations__", {})
            or any(attribute in vars(base) for base in getattr(cls, "__mro__", ()))
            or _assigned_in_init(cls, attribute)
        )
        if not has:
            missing.append(f"{module_name}.{class_name}.{attribute}")
    return missing


def _assigned_in_init(cls: type, attribute: str) -> bool:
    """Whether ``__init__`` (or a base's) sets ``self.<attribute>`` (instance attributes)."""
    for base in cls.__mro__:
        init = vars(base).get("__init__")
        if init is None:
            continue
        try:
            source = inspect.getsource(init)
        except (OSError, TypeError):
            continue
        if f"self.{attribute} =" in source or f"self.{attribute}:" in source:
            return True
    return False
