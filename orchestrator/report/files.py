"""The report directory: refuse an unsafe one, and write each file privately (0600) and atomically.

Knows nothing about what a report holds; `write` hands it paths and writer callbacks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ReportError


def check_report_dir(path: Path) -> None:
    """Create the report directory 0700 if new; refuse one others can write to (they could swap files)."""
    path = Path(path)
    try:
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
            os.chmod(path, 0o700)
        st = path.stat()
    except OSError as exc:
        raise ReportError(f"cannot create the report directory {path}: {exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ReportError(f"the report directory {path} is not a directory; choose another --report-dir")
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ReportError(
            f"the report directory {path} is group- or world-writable (mode {mode:04o}); "
            f"run `chmod go-w {path}` or choose another --report-dir"
        )


@contextmanager
def private_output(path: Path) -> Iterator[Path]:
    """Yield a 0600 temporary path beside `path`; on success it atomically replaces `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report {path}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
