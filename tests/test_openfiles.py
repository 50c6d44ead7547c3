"""A run raises the open-file limit (`ulimit -n`) to what its --concurrency may use, before any socket.

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
from orchestrator.journal import Journal
from orchestrator.openfiles import SOCKETS_PER_SLOT, SPARE_FILES

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


def _limited(soft: int, hard: int | None = None) -> Callable[[], None]:
    def apply() -> None:
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))
    return apply


def _probe(concurrency: int, soft: int, hard: int | None = None) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(concurrency)], capture_output=True, text=True,
                          timeout=60, check=True, preexec_fn=_limited(soft, hard))
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _hard_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_a_low_soft_limit_is_raised_to_what_the_concurrency_may_use() -> None:
    need = SOCKETS_PER_SLOT * 200 + SPARE_FILES
    if _hard_limit() != resource.RLIM_INFINITY and _hard_limit() < need:
        pytest.skip(f"this machine's hard limit is below {need}")
    assert _probe(200, soft=100) == {"returned": need, "soft": need}


def test_a_soft_limit_already_large_enough_is_left_alone() -> None:
    assert _probe(10, soft=1000) == {"returned": 1000, "soft": 1000}


def test_a_hard_limit_between_the_sockets_in_flight_and_the_most_is_taken_whole() -> None:
    """Up to 3 sockets per slot is the most a run may hold; one per slot is what it needs: 200 + 64 ≤ 300."""
    assert _probe(200, soft=100, hard=300) == {"returned": 300, "soft": 300}


def test_a_hard_limit_below_one_socket_per_identity_in_flight_is_a_usage_error_naming_the_option_and_the_fix() -> None:
    result = _probe(200, soft=100, hard=150)
    message = str(result["error"])
    assert "--concurrency 200" in message and "only 150" in message
    assert f"lower --concurrency to {150 - SPARE_FILES} or less" in message and "ulimit -Hn" in message


@pytest.mark.timeout(180)
def test_a_link_started_with_a_small_soft_limit_runs_its_concurrency_without_running_out_of_files(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """A soft limit of 32 files cannot hold 120 sockets (without the raise, connections fail with EMFILE: retried
    attempts and a failed identity): every identity is linked at the first attempt of each request, one write each."""
    em = emulator_factory(make_world(120))
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    journal = tmp_path / "journal.sqlite"
    argv = link_argv(em, inv, journal, tmp_path / "reports", "--concurrency", "120", "--workers", "1",
                     "--no-recognition")
    proc = subprocess.run(argv, env=_env(em), capture_output=True, text=True, timeout=150, check=False,
                          preexec_fn=_limited(32))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Journal(journal) as j:
        outcomes = j.outcomes(j.runs()[-1].run_id)
    assert {o.status.value for o in outcomes} == {"linked"}
    assert len({o.attempts for o in outcomes}) == 1  # no attempt retried: no connection failed for want of files
    assert all(em.writes(r.tenant_id, r.object_id) == 1 for r in em.world.identities)
