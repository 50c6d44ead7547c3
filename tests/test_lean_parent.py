"""A run's parent process stays lean: pandas (~70 MB) is imported only when the reports are rendered, not by the
report-directory check every run makes before any work; and the heap is handed back before the report phase."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from orchestrator import report
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


def test_release_memory_is_safe_to_call_twice() -> None:
    """Collecting and trimming the heap between phases has no effect on live objects."""
    kept = [str(i) for i in range(10_000)]
    release_memory()
    release_memory()
    assert kept[-1] == "9999"
