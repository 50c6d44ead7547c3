"""The process's limit on open files (`ulimit -n`), raised before a run to what its `--concurrency` may use.

Each identity in flight holds one socket; aiohttp also keeps idle keep-alive sockets in a pool per host (Entra,
Key Vault, ARM), each as large as that host's peak, which its connection limit does not count. A run at
`--concurrency C` may therefore hold up to about 3 × C sockets. Many systems start a process with a soft limit of
1,024 files, which `--concurrency 512` would exceed: every new connection would then fail with EMFILE ("Too many
open files") in the middle of the run. The soft limit may be raised up to the hard limit without privileges, so a
run raises it first (worker processes inherit it), and refuses to start only when even the hard limit leaves no
room for one socket per identity in flight.
"""

from __future__ import annotations

import sys

from .errors import UsageError

#: Sockets per unit of --concurrency at most: the one in flight, and idle keep-alive sockets of the other hosts.
SOCKETS_PER_SLOT = 3
#: Files a run holds besides its sockets: the journal and its WAL, logs, reports, pipes to workers, the interpreter.
SPARE_FILES = 64


def files_needed(concurrency: int) -> int:
    """The open files a run at `concurrency` may hold at most."""
    return SOCKETS_PER_SLOT * concurrency + SPARE_FILES


def ensure_open_files(concurrency: int) -> int:
    """Raise the soft limit on open files toward `files_needed(concurrency)`, up to the hard limit; return the
    soft limit now in force (0: no such limit on this platform).

    Raises UsageError naming --concurrency and the fix when the hard limit is below one socket per identity in
    flight plus `SPARE_FILES`: such a run would fail connections for want of file descriptors."""
    if sys.platform == "win32":  # no RLIMIT_NOFILE; sockets are not counted against a per-process file limit
        return 0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = files_needed(concurrency)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if target < concurrency + SPARE_FILES:
        room = max(1, target - SPARE_FILES)
        raise UsageError(
            f"--concurrency {concurrency} needs up to {need} open files (a socket per identity in flight and the "
            f"idle keep-alive ones), but this process may open only {hard} (the hard `ulimit -n`): lower "
            f"--concurrency to {room} or less, or raise the hard limit (e.g. `ulimit -Hn {need}` as root, or "
            f"LimitNOFILE= in a systemd unit)"
        )
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target
