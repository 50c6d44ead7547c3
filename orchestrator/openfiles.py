"""The process's limit on open files (`ulimit -n`), raised before a run to what its `--concurrency` may use.

Each identity in flight holds one socket; aiohttp also keeps idle keep-alive sockets in a pool per host (Entra,
Key Vault, ARM), each as large as that host's peak, which its connection limit does not count. A run at
`--concurrency C` may therefore hold about 3 × C sockets, more when its identities' vaults or endpoints are spread
over more hosts. Many systems start a process with a soft limit of 1,024 files, which `--concurrency 512` would
exceed: every new connection would then fail with EMFILE ("Too many open files") in the middle of the run.
The soft limit may be raised up to the hard limit without privileges, so a run raises it first (worker processes
inherit it), and refuses to start only when the limit it could get leaves no room for one socket per identity in
flight.
"""

from __future__ import annotations

import sys

from .errors import UsageError

#: Sockets per unit of --concurrency with three hosts: the one in flight, and the other hosts' idle keep-alive ones.
SOCKETS_PER_SLOT = 3
#: Files a run holds besides its sockets: the journal and its WAL, logs, reports, pipes to workers, the interpreter.
SPARE_FILES = 64
#: The soft limit a run raises to when the hard limit allows it, whatever its concurrency.
MOST_FILES = 65_536
#: macOS refuses a soft limit above OPEN_MAX (10,240) even when the hard limit is unlimited.
_MACOS_OPEN_MAX = 10_240


def files_needed(concurrency: int) -> int:
    """The open files a run at `concurrency` usually holds at most (three hosts: Entra, one vault, ARM)."""
    return SOCKETS_PER_SLOT * concurrency + SPARE_FILES


def ensure_open_files(concurrency: int) -> int | None:
    """Raise the soft limit on open files to at least `files_needed(concurrency)`, and to the hard limit when that
    is finite and larger (raising it costs nothing, and an inventory spread over many vaults or endpoints keeps more
    than three pools); return the soft limit now in force (None: unlimited, or no such limit on this platform).

    Raises UsageError naming --concurrency and the fix when the limit in force leaves no room for one socket per
    identity in flight plus `SPARE_FILES`: such a run would fail connections for want of file descriptors."""
    if sys.platform == "win32":  # no RLIMIT_NOFILE; sockets are not counted against a per-process file limit
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = files_needed(concurrency)
    target = need if hard == resource.RLIM_INFINITY else max(min(need, hard), min(hard, MOST_FILES))
    if soft != resource.RLIM_INFINITY and soft < target:
        for attempt in (target, min(target, _MACOS_OPEN_MAX)):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (attempt, hard))
                break
            except (ValueError, OSError):  # macOS refuses more than OPEN_MAX; some containers refuse any change
                continue
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    if soft < concurrency + SPARE_FILES:
        raise UsageError(_too_few(concurrency, need, soft))
    return soft


def _too_few(concurrency: int, need: int, limit: int) -> str:
    fix = (f"lower --concurrency to {limit - SPARE_FILES} or less, or raise the hard limit"
           if limit > SPARE_FILES else "raise the hard limit")
    return (f"--concurrency {concurrency} needs up to {need} open files (a socket per identity in flight and the "
            f"idle keep-alive ones), but this process may open only {limit} (`ulimit -n`): {fix} (e.g. "
            f"`ulimit -Hn {need}` as root, or LimitNOFILE= in a systemd unit)")
