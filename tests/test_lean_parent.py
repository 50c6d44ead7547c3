"""A run's parent process stays lean: pandas (~70 MB) is imported only when the reports are rendered, not by the
report-directory check every run makes before any work; the parent of a workers run imports no Azure SDK; and the
heap is handed back before the report phase."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from test_link import write_inventory
from test_reliability_crash import _env, link_argv

from orchestrator import report
from orchestrator.emulator import Emulator
from orchestrator.gctuning import release_memory

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after `code` (this checkout first on the path)."""
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return set(done.stdout.split())


def test_report_dir_check_does_not_import_pandas(tmp_path: Path) -> None:
    """The runner and the CLI import, and the report-directory check a run makes before its work, load neither
    pandas nor any report renderer: the parent of a workers run carries none of them through the run."""
    modules = _modules_after(f"""
        import orchestrator.runner, orchestrator.cli
        from orchestrator.report import check_report_dir
        check_report_dir(__import__("pathlib").Path({str(tmp_path / "reports")!r}))
    """)
    assert "orchestrator.report.files" in modules
    assert not {"pandas", "orchestrator.report.view", "orchestrator.report.write"} & modules


def test_report_names_resolve_on_first_use() -> None:
    """Every public name and submodule of the report package is still reachable as an attribute (lazily)."""
    for name in report.__all__:
        assert getattr(report, name) is not None
    assert report.write.write_reports is report.write_reports
    assert "write" in dir(report) or hasattr(report, "write")


def test_report_lists_each_public_name_once_in_each_of_its_three_places() -> None:
    """The report package names its public symbols three times (type checkers' imports, the lazy map, `__all__`),
    because mypy needs literal imports and a literal `__all__`; the three must agree, name for name and module
    for module, or a name would be importable for mypy and missing at run time (or the reverse)."""
    tree = ast.parse(Path(report.__file__).read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                typed.update({alias.name: "." * imp.level + (imp.module or "") for alias in imp.names})
    assert typed == report._HOMES
    assert sorted(report.__all__) == sorted(report._HOMES)
    assert len(report.__all__) == len(set(report.__all__))


def test_release_memory_is_safe_to_call_twice() -> None:
    """Collecting and trimming the heap between phases has no effect on live objects."""
    kept = [str(i) for i in range(10_000)]
    release_memory()
    release_memory()
    assert kept[-1] == "9999"


_SDK_ROOTS = ("aiohttp", "azure", "msal", "cryptography", "tenacity")


def test_the_parent_of_a_workers_run_imports_no_azure_sdk(emulator: Emulator, tmp_path: Path) -> None:
    """A `link --workers 2` run, reports included, leaves its parent process without aiohttp, the Azure SDKs,
    msal, cryptography or tenacity: the workers sign in and call Azure; the parent only dispatches, journals and
    renders (each SDK stack costs ~45 MB of resident memory per process)."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, emulator.world.identities)
    argv = link_argv(emulator, inv, tmp_path / "journal.sqlite", tmp_path / "reports", "--workers", "2")
    script = textwrap.dedent(f"""
        import sys
        sys.argv = {["pal-orchestrator", *argv[3:]]!r}
        from orchestrator.cli import main
        try:
            main()
        except SystemExit as exit:
            print("EXIT", exit.code)
        print("SDK", sorted(m for m in sys.modules if m.split(".")[0] in {_SDK_ROOTS!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**_env(emulator), "PYTHONPATH": str(ROOT)})
    lines = done.stdout.splitlines()
    assert "EXIT 1" in lines, done.stdout + done.stderr  # the default world's failures: exit 1, the run completed
    assert "SDK []" in lines, lines[-1]
    assert (tmp_path / "reports" / "latest" / "identities.csv").exists()
