"""The `pal-orchestrator` command: parse, call the library once, translate its errors into exit codes.

Business logic lives in runner/linker/report; this package only wires options to them. Results go to stdout
(`--output table|json`), progress and the recap to stderr. Exit codes: 0 all rows succeeded, 1 the run
completed with failures/skipped rows, 2 usage error or nothing ran, 3 stopped early because a shared cause
(a rejected partner ID, an unreadable vault, an unreachable endpoint) made every identity fail (resumable),
130 interrupted (resume with --resume).

    app.py       the Typer app, consoles, run-level errors → exit codes, main()
    options.py   the shared options, declared once (run_options gives them to each run command)
    terminal.py  progress, the results table and JSON output, read from the journal
    runs.py      link, plan, audit, unlink
    reading.py   validate, report, runs
    tools.py     emulator, demo
    lighthouse.py  lighthouse (Azure Lighthouse delegations)
    federation.py  federation-check (secretless sign-in through a managed identity)
"""

# isort: off
# importing a module registers its commands; `--help` lists them in this order
from . import runs  # noqa: F401
from . import reading  # noqa: F401
from . import lighthouse  # noqa: F401
from . import federation  # noqa: F401
from . import tools  # noqa: F401

# isort: on
from .app import app, main

__all__ = ["app", "main"]
