"""The ``wsshadow`` command line: a thin layer over the library.

Each command opens what it needs, makes one library call and renders the
result. Errors are mapped to one line on stderr and an exit code in one
place, ``main()``: 0 equivalent, 1 divergent, 2 bad input or unreachable.
Command modules register themselves on ``app`` when imported below.
"""

from __future__ import annotations

import sqlite3
import sys

import typer

from wsshadow.replay.cli import captures as _captures  # noqa: F401  (registers commands)
from wsshadow.replay.cli import captures_merge as _captures_merge  # noqa: F401
from wsshadow.replay.cli import console
from wsshadow.replay.cli import demo as _demo  # noqa: F401
from wsshadow.replay.cli import diff as _diff  # noqa: F401  (registers commands)
from wsshadow.replay.cli import record as _record  # noqa: F401
from wsshadow.replay.cli import replay_cmd as _replay_cmd  # noqa: F401
from wsshadow.replay.cli import report as _report  # noqa: F401  (registers commands)
from wsshadow.replay.cli import serve as _serve  # noqa: F401
from wsshadow.replay.cli import shadow as _shadow  # noqa: F401
from wsshadow.replay.cli.app import app
from wsshadow.replay.errors import ExitStatus, WsShadowError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one line on stderr and an exit code."""
    try:
        result = app(args=argv, prog_name="wsshadow", standalone_mode=False)
    except WsShadowError as e:
        console.error(str(e))
        code = int(e.exit_status)
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        console.error("interrupted")
        code = 130
    except typer.TyperException as e:
        # Usage errors (a click exception under typer) know how to show themselves.
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            console.error(e.format_message())
        code = ExitStatus.ERROR
    except sqlite3.Error as e:
        # Damage SQLite only notices deep inside a read (a corrupt page).
        console.error(f"capture file is damaged or unreadable ({e})")
        code = ExitStatus.ERROR
    except KeyboardInterrupt:
        console.error("interrupted")
        code = 130
    except BrokenPipeError:
        code = 0
    else:
        code = result if isinstance(result, int) else 0
    if argv is None:
        sys.exit(code)
    return code
