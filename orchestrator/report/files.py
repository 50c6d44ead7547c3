"""The report directory: refuse an unsafe one, and swap in one run's complete set of files.

Every file of a write goes into a private temporary directory inside the report directory
(`.tmp-<run_id>-<pid>`, 0700, files 0600; xlsxwriter's scratch files too), and only when all of them are
written are they moved into place one `os.replace` each. A failed or killed write therefore leaves the
previous set whole; what a killed writer left behind is removed by the next write (`clean_stale`).
Knows nothing about what a report holds: `write` hands it names and writes the files.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import ReportError, ReportWriteError

#: The folder (under the report directory) holding a copy of the last finished run's files.
LATEST = "latest"
#: Name prefix of the per-write temporary directories.
STAGING_PREFIX = ".tmp-"
#: Per-file temporary names of earlier versions (`.identities.csv.<pid>.tmp`), cleaned like staging dirs.
_LEGACY_TMP = re.compile(r"\.(identities\.csv|customers\.csv|summary\.json|coverage\.xlsx|coverage\.html)\.(\d+)\.tmp")


def write_error(directory: Path, exc: OSError) -> ReportWriteError:
    """One line naming the directory, what the OS said and the fix."""
    reason = (exc.strerror or type(exc).__name__).lower()
    return ReportWriteError(
        f"cannot write the reports into {directory}: {reason} — make the directory writable for this user "
        f"(e.g. `chmod u+w {directory}`, free space) or choose another --report-dir"
    )


def check_report_dir(path: Path) -> None:
    """Create the report directory 0700 if new; refuse one others can write to (they could swap files)."""
    path = Path(path)
    try:
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
            os.chmod(path, 0o700)
        st = path.stat()
    except OSError as exc:
        raise write_error(path, exc) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ReportError(f"the report directory {path} is not a directory; choose another --report-dir")
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ReportError(
            f"the report directory {path} is group- or world-writable (mode {mode:04o}); "
            f"run `chmod go-w {path}` or choose another --report-dir"
        )


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The writer's PID a temporary name ends with, or None when it does not parse."""
    legacy = _LEGACY_TMP.fullmatch(name)
    tail = legacy.group(2) if legacy else name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def clean_stale(directory: Path) -> None:
    """Remove the temporary directories (and legacy temporary files) of writers that are no longer running."""
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise write_error(directory, exc) from exc
    for entry in entries:
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            pid = _owner_pid(entry.name)
            if pid is None or not _alive(pid):
                shutil.rmtree(entry.path, ignore_errors=True)
        elif _LEGACY_TMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            pid = _owner_pid(entry.name)
            if pid is None or not _alive(pid):
                Path(entry.path).unlink(missing_ok=True)


@contextmanager
def staging_dir(directory: Path, run_id: str) -> Iterator[Path]:
    """A private (0700) temporary directory inside `directory` for one write, removed afterwards whatever happens.

    An OSError inside the block (a file that cannot be written) becomes a ReportWriteError.
    """
    stage = directory / f"{STAGING_PREFIX}{run_id}-{os.getpid()}"
    try:
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(mode=0o700)
        os.chmod(stage, 0o700)
    except OSError as exc:
        raise write_error(directory, exc) from exc
    try:
        yield stage
    except OSError as exc:
        raise write_error(directory, exc) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 (whatever the umask; never through a symlink) and return it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def swap_in(stage: Path, directory: Path, names: Iterable[str]) -> None:
    """Move every named file of `stage` into `directory`, each atomically replacing the old one."""
    for name in names:
        os.replace(stage / name, directory / name)


def publish(stage: Path, run_dir: Path, names: Sequence[str], run_id: str, latest_dir: Path | None = None) -> None:
    """Swap the staged files into the run's folder and, when `latest_dir` is given, a copy into it too; the copy is
    staged before either swap, so a failed write leaves both folders as they were. Other files there stay."""
    if latest_dir is None:
        swap_in(stage, run_dir, names)
        return
    check_report_dir(latest_dir)
    clean_stale(latest_dir)
    with staging_dir(latest_dir, run_id) as copy:
        for name in names:
            shutil.copyfile(stage / name, private_file(copy / name))
        swap_in(stage, run_dir, names)
        swap_in(copy, latest_dir, names)
