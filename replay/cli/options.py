"""Options shared by several commands, declared once as ``Annotated`` aliases."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

import typer

from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import console
from wsshadow.replay.config import DiffConfig, RouteOverride
from wsshadow.replay.diff.dialects import get_dialect
from wsshadow.replay.errors import BadInput
from wsshadow.replay.options import REPLAY_OPTIONS, OptionSpec, ReplayOverrides

__all__ = [
    "CaptureArg",
    "ConfigOpt",
    "DialectOpt",
    "NoRedact",
    "RedactField",
    "ReportFileOpt",
    "ReportFormat",
    "ReportFormatOpt",
    "ReportOutputOpt",
    "RunOpt",
    "make_redactor",
    "read_capture",
    "repeatable",
    "with_dialects",
    "with_replay_options",
]

CaptureArg = Annotated[Path, typer.Argument(help="Capture file (SQLite).", show_default=False)]


def read_capture(path: Path) -> CaptureStore:
    """Open a capture for a command that only reads it: the file is never changed.

    An older format is read through a temporary upgrade, said in one line on stderr.
    """
    store = CaptureStore.open(path, readonly=True)
    if store.upgraded_from is not None:
        console.note(
            f"{path} is capture format version {store.upgraded_from}: read through a "
            f"temporary upgrade to version {store.meta()['format_version']}, the file is unchanged "
            f"(wsshadow captures upgrade {path} upgrades it in place)"
        )
    return store

NoRedact = Annotated[
    bool,
    typer.Option(
        "--no-redact",
        help="Store credentials as they came. Redaction, on without it, replaces with "
        "placeholders: the Authorization, Proxy-Authorization, Cookie and Set-Cookie headers "
        "and headers named *-api-key, *-token, *-secret or *-password; token-bearing "
        "subprotocols; query parameters, JSON fields and name=value pairs with secret-looking "
        "names (token, password, secret, api_key, ...) in text and binary messages and in "
        "close reasons.",
    ),
]
RedactField = Annotated[
    list[str] | None,
    typer.Option(
        "--redact-field",
        help="Another JSON field / query parameter name to redact (repeatable).",
        show_default=False,
    ),
]
RunOpt = Annotated[
    str | None,
    typer.Option(
        "--run", metavar="NAME", help="A replay run's sessions instead of the recorded ones."
    ),
]

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration file (default: ./wsshadow.toml, else [tool.wsshadow] in ./pyproject.toml).",
        show_default=False,
    ),
]


class ReportFormat(StrEnum):
    """The formats ``--format`` accepts."""

    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    HTML = "html"


ReportFormatOpt = Annotated[
    ReportFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="Report format [default: text, or the --output file's extension].",
        case_sensitive=False,
        show_default=False,
    ),
]
ReportOutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the report to this file instead of stdout."),
]
ReportFileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--report",
        help="Also write the report to FILE, format from the extension: "
        ".json .xml (JUnit) .md .html .txt (repeatable).",
        show_default=False,
    ),
]


DialectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dialect",
        metavar="ROUTE=NAME",
        help="ROUTE=NAME: decode ROUTE's messages as NAME (socketio, graphql, jsonrpc, stomp, "
        "phoenix, signalr, actioncable, mqtt, generic, json, raw) instead of detecting it "
        "per session; NAME alone for every route (repeatable).",
        show_default=False,
    ),
]


def with_dialects(diff: DiffConfig, items: list[str] | None) -> DiffConfig:
    """``diff`` with ``--dialect ROUTE=NAME`` overrides; raises BadInput for an unknown name."""
    if not items:
        return diff
    routes = dict(diff.routes)
    default = diff.dialect
    for item in items:
        route, sep, name = item.rpartition("=")
        get_dialect(name)
        if not sep:
            default = name
            continue
        if not route.startswith("/"):
            raise BadInput(f"--dialect {item!r}: expected ROUTE=NAME with ROUTE starting with /")
        routes[route] = replace(routes.get(route, RouteOverride()), dialect=name)
    return replace(diff, routes=MappingProxyType(routes), dialect=default)


# ---- replay options, derived from their one declaration (wsshadow.replay.options) ----

def _choices(spec: OptionSpec) -> type[StrEnum]:
    """An enum of the spec's choices, which typer shows as ``[causal|recorded|asap]``."""
    members = {c.upper(): c for c in spec.choices}
    return StrEnum(spec.name.title(), members)  # type: ignore[return-value]


def _annotation(spec: OptionSpec) -> Any:
    if spec.kind == "bool":
        return Annotated[bool, typer.Option(spec.flag, help=spec.help_text())]
    value: Any = spec.value_type
    if spec.kind == "choice":
        value = _choices(spec)
    if spec.many:
        value = list.__class_getitem__(value)
    return Annotated[
        value | None,
        typer.Option(
            spec.flag, help=spec.help_text(), metavar=spec.metavar, show_default=False,
            case_sensitive=False,
        ),
    ]  # fmt: skip


F = TypeVar("F", bound=Callable[..., Any])


def with_replay_options(command: F) -> F:
    """Give a typer command every option of ``REPLAY_OPTIONS``.

    The command declares a keyword parameter ``overrides: ReplayOverrides``
    in place of the options, and receives what the command line said there.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "overrides"]
    added = [
        inspect.Parameter(
            s.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_annotation(s),
            default=False if s.kind == "bool" else None,
        )
        for s in REPLAY_OPTIONS
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        values = {s.name: kwargs.pop(s.name) for s in REPLAY_OPTIONS}
        values = {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in values.items()}
        return command(**kwargs, overrides=ReplayOverrides.of(**values))

    params = own + added
    setattr(wrapper, "__signature__", signature.replace(parameters=params))  # noqa: B010
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    wrapper.__annotations__["return"] = signature.return_annotation
    del wrapper.__wrapped__
    return wrapper  # type: ignore[return-value]


def repeatable(flag: str, metavar: str, help: str) -> Any:
    """A repeatable option's declaration (its value ``None`` when not given)."""
    return typer.Option(flag, metavar=metavar, help=help, show_default=False)


def make_redactor(no_redact: bool, fields: list[str] | None) -> Redactor:
    """The redactor the redaction options ask for."""
    return Redactor(enabled=not no_redact, extra_fields=tuple(fields or ()))
