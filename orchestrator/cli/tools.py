"""The emulator and the demo (`make run`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

from ..journal import DEFAULT_JOURNAL
from .app import _errors, _invoke, app, err, examples
from .options import JournalOpt, Output, OutputOpt, ReportDirOpt

#: The demo's own journal, beside the real one and kept like it (a second `make run` is compared with the first).
_DEMO_JOURNAL = Path(DEFAULT_JOURNAL).with_name("demo-journal.sqlite")


@app.command(epilog=examples(
    "pal-orchestrator emulator --world inventory/demo-world.yaml",
    "pal-orchestrator emulator --latency-ms 50 --wire not_linked=generic",
))
def emulator(
    world: Annotated[
        Path | None, typer.Option("--world", help="World YAML seeding tenants, apps, vaults, links.")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 = any free port).")] = 0,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Latency added to every request.")] = 0.0,
    faults: Annotated[Path | None, typer.Option("--faults", help="Fault injection YAML.")] = None,
    ca_dir: Annotated[Path | None, typer.Option("--ca-dir", help="Where to write the generated CA.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for fault randomness.")] = 0,
    wire: Annotated[
        list[str] | None,
        typer.Option("--wire", metavar="NAME=VALUE",
                     help="A ManagementPartner wire variant (repeatable), e.g. --wire not_linked=flat."),
    ] = None,
) -> None:
    """Run the built-in Azure emulator (Entra ID, Key Vault, ManagementPartner, IMDS) on 127.0.0.1 over HTTPS.

    Prints `PAL-EMULATOR READY url=… ca=…` and the options that point pal-orchestrator at it; serves until
    Ctrl-C. See orchestrator/emulator/README.md for the world, fault and wire formats.
    """
    from ..emulator import WireError, WorldError, parse_wire_args
    from ..emulator.process import run_emulator

    try:
        run_emulator(world_path=world, port=port, latency_ms=latency_ms, faults_path=faults, ca_dir=ca_dir, seed=seed,
                     wire=parse_wire_args(wire))
    except (WorldError, WireError, OSError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


@app.command(epilog=examples(
    "make run",
    "pal-orchestrator demo --report-dir /tmp/pal-demo",
))
def demo(
    inventory: Annotated[Path, typer.Option("--inventory", help="Demo inventory.")] = Path("inventory/demo.csv"),
    world: Annotated[Path, typer.Option("--world", help="Demo world.")] = Path("inventory/demo-world.yaml"),
    report_dir: ReportDirOpt = Path("reports"),
    journal: JournalOpt = _DEMO_JOURNAL,
    output: OutputOpt = Output.table,
) -> None:
    """The main job, rehearsed: start the emulator with the demo world and bulk-link the demo inventory."""
    from ..demo import run_demo

    with _errors():
        code = run_demo(inventory=inventory, world=world, report_dir=report_dir, journal=journal,
                        run=lambda argv: _invoke([*argv, "--output", output.value]))
    latest = report_dir / "latest"
    err.print(
        f"demo finished: open {latest / 'summary.html'} (one page for management) or {latest / 'coverage.html'} "
        f"and {latest / 'coverage.xlsx'} (every identity); each run also keeps its own folder {report_dir}/<run_id>/; "
        f"the journal {journal} keeps the history the next run is compared with.",
        markup=False,
    )
    raise typer.Exit(code)


