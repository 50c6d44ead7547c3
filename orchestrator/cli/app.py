"""The Typer app, the two consoles, logging, run-level errors → exit codes, and the console entry point."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from .. import __version__
from ..errors import PalError

app = typer.Typer(
    name="pal-orchestrator",
    help="Link Partner Admin Link (PAL) across many customer tenants at once, and report coverage.",
    epilog=("Exit codes: 0 every row succeeded; 1 the run completed but some identity failed or was skipped; "
            "2 usage error or nothing ran; 3 stopped early: a shared cause (a rejected partner ID, a vault the "
            "operator cannot read, an unreachable endpoint) failed the first identities alike — fix it, then "
            "--resume; 4 work done but the reports could not be written (`report RUN_ID` writes them); 130 "
            "interrupted (--resume continues)."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no "<bool>" after flags, readable in CI logs and narrow terminals
)


def examples(*lines: str) -> str:
    """A command's help epilog: the command lines a user would type, kept as written (click's \\b)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages stay one line, whole
# Piped stdout (CI logs, `| less`) gets a wide table instead of rich's 80-column default.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def _configure_logging(debug: bool) -> None:
    """See logs.configure_logging (worker processes configure their logging with it too)."""
    from ..logs import configure_logging

    configure_logging(debug)


@contextmanager
def _errors(error_exit: int | None = None) -> Iterator[None]:
    """Run-level errors become one clear line and an exit code (`error_exit` overrides it); no traceback."""
    from ..runner import Interrupted

    try:
        yield
    except PalError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))  # user text is never parsed as markup
        raise typer.Exit(error_exit if error_exit is not None else exc.exit_code) from None
    except Interrupted as exc:
        err.print(f"[yellow]interrupted[/]: results so far are in the journal; {escape(exc.hint)}")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def _invoke(argv: list[str]) -> int:
    """Run one CLI command in-process and return its exit code (used by the demo)."""
    try:
        app(argv, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    return 0


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"pal-orchestrator {__version__}")
        raise typer.Exit(0)


def main() -> None:
    """Console entry point. With `plan --detailed-exitcode`, any error (a usage error too) exits 1, so that a
    pipeline reading 2 as "writes pending" never mistakes a failure for changes (Terraform's convention)."""
    argv = sys.argv[1:]
    signal.signal(signal.SIGTERM, _terminate)  # a cancelled CI job ends like Ctrl-C (exit 130), from the start
    try:
        code = app(args=argv, prog_name="pal-orchestrator", standalone_mode=False)
    except typer.Abort:
        err.print("[yellow]interrupted[/]")
        code = 130
    except typer.TyperException as exc:  # a usage error (typer's click): shown as click shows it
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        code = 1 if _detailed(argv) else int(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _detailed(argv: list[str]) -> bool:
    return "--detailed-exitcode" in argv and "plan" in argv
