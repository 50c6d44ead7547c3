"""A run raises the open-file limit (`ulimit -n`) to fit its --concurrency, before any socket.

Each case runs in its own interpreter, started with the limits it describes (a lowered hard limit cannot be raised
again, and this test process must keep its own), and reads the limits back from the kernel: nothing is faked.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from test_reliability_crash import _env, link_argv
from test_reliability_faults import make_world, write_rows

from orchestrator.emulator import Emulator
from orchestrator.errors import UsageError
from orchestrator.journal import Journal
from orchestrator.openfiles import MOST_FILES, SOCKETS_PER_SLOT, SPARE_FILES, ensure_open_files

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE")

_PROBE = """
import json, resource, sys
from orchestrator.errors import UsageError
from orchestrator.openfiles import ensure_open_files
try:
    now = ensure_open_files(int(sys.argv[1]))
except UsageError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"returned": now, "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))
"""

#: Sets the limits, then becomes the given command (no preexec_fn: the in-thread emulator makes this process
#: multi-threaded, where forking then running Python before exec is unsafe).
_LIMITED = (
    "import os, resource, sys; "
    "soft, hard = int(sys.argv[1]), int(sys.argv[2]) or resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def _limited(argv: list[str], soft: int, hard: int | None = None) -> list[str]:
    return [sys.executable, "-c", _LIMITED, str(soft), str(hard or 0), *argv]


def _probe(concurrency: int, soft: int, hard: int | None = None) -> dict[str, object]:
    argv = _limited([sys.executable, "-c", _PROBE, str(concurrency)], soft, hard)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return sys.maxsize if hard == resource.RLIM_INFINITY else hard


def _needs_hard_limit(files: int) -> None:
    if _hard_limit() < files:
        pytest.skip(f"this machine's hard limit on open files is below {files}")


def test_a_low_soft_limit_is_raised_to_the_hard_limit_when_that_is_within_reason() -> None:
    _needs_hard_limit(SOCKETS_PER_SLOT * 200 + SPARE_FILES)
    expected = min(_hard_limit(), max(MOST_FILES, SOCKETS_PER_SLOT * 200 + SPARE_FILES))
    if _hard_limit() == sys.maxsize:
        expected = SOCKETS_PER_SLOT * 200 + SPARE_FILES
    assert _probe(200, soft=100) == {"returned": expected, "soft": expected}


def test_a_hard_limit_between_the_sockets_in_flight_and_the_most_is_taken_whole() -> None:
    """About 3 sockets per slot is what a run may hold; one per slot is what it needs: 200 + 64 ≤ 300."""
    assert _probe(200, soft=100, hard=300) == {"returned": 300, "soft": 300}


def test_a_hard_limit_below_one_socket_per_identity_in_flight_is_a_usage_error_naming_the_option_and_the_fix() -> None:
    message = str(_probe(200, soft=100, hard=150)["error"])
    assert "--concurrency 200" in message and "only 150" in message
    assert f"lower --concurrency to {150 - SPARE_FILES} or less" in message and "ulimit -Hn" in message


def test_a_hard_limit_too_small_for_any_run_says_to_raise_it_not_to_lower_the_concurrency() -> None:
    message = str(_probe(1, soft=40, hard=40)["error"])
    assert "raise the hard limit" in message and "lower --concurrency" not in message


def test_a_refused_raise_keeps_the_limit_in_force_and_judges_the_run_by_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the system refuses setrlimit (macOS above OPEN_MAX, some containers), the run goes on when the limit
    in force has room for it, and is refused by name when it has not; never a traceback."""
    def refuse(*_: object) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft != resource.RLIM_INFINITY and soft > SPARE_FILES + 1
    assert ensure_open_files(soft - SPARE_FILES) == soft
    with pytest.raises(UsageError, match=f"--concurrency {soft} needs"):
        ensure_open_files(soft)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_link_started_with_a_small_soft_limit_runs_its_concurrency_without_running_out_of_files(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, workers: str
) -> None:
    """A soft limit of 32 files cannot hold 120 sockets (without the raise, connections fail with EMFILE: retried
    attempts and a failed identity): every identity is linked with no attempt retried, one write each, in one
    process and with worker processes (which inherit the raised limit)."""
    _needs_hard_limit(120 + SPARE_FILES)
    em = emulator_factory(make_world(120))
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    journal = tmp_path / "journal.sqlite"
    argv = link_argv(em, inv, journal, tmp_path / "reports", "--concurrency", "120", "--workers", workers,
                     "--no-recognition")
    proc = subprocess.run(_limited(argv, 32), env=_env(em), capture_output=True, text=True, timeout=150, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Journal(journal) as j:
        outcomes = j.outcomes(j.runs()[-1].run_id)
    assert {o.status.value for o in outcomes} == {"linked"}
    # A clean new link is 5 requests (Key Vault, token, read, write, read-back), each counted once when not retried.
    assert {o.attempts for o in outcomes} == {5}
    assert all(em.writes(r.tenant_id, r.object_id) == 1 for r in em.world.identities)
