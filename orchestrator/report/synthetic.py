"""A synthetic run of any size, and the timing of rendering it: the benchmark's entry points for reports."""

from __future__ import annotations

import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..journal import Journal
from ..models import COVERED_STATUSES, Command, Outcome, Recognition, RecognitionResult, Status
from .files import check_report_dir
from .write import write_reports


def synthetic_run(journal: Journal, n: int, *, customers: int | None = None, seed: int = 7) -> str:
    """Record a finished run of `n` varied identities (for the benchmark and scale checks)."""
    rng = random.Random(seed)
    customers = customers or max(1, n // 3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    statuses = [Status.LINKED] * 6 + [Status.ALREADY_LINKED] * 6 + [
        Status.CREDENTIAL_EXPIRED,
        Status.SIGN_IN_FAILED,
        Status.LINKED_ELSEWHERE,
        Status.SKIPPED,
    ]
    run_id = journal.start_run(
        command=Command.LINK.value,
        inventory_path="synthetic.csv",
        inventory_sha256="0" * 64,
        inventory_rows=n,
        skipped=0,
        partner_ids=["1234567"],
        options={"expiry_warning_days": 120},
        tool_version="bench",
        operator="bench",
        started_at=start,
    )
    for i in range(n):
        status = rng.choice(statuses)
        covered = status in COVERED_STATUSES
        journal.record_outcome(
            run_id,
            Outcome(
                key=f"{i:08x}-0000-4000-8000-000000000000|{i:08x}-1111-4000-8000-000000000000",
                customer=f"Customer {rng.randrange(customers):06d}",
                tenant_id=f"{i:08x}-0000-4000-8000-000000000000",
                client_id=f"{i:08x}-1111-4000-8000-000000000000",
                target_partner_id="1234567",
                status=status,
                credential_type="secret",
                linked_partner_id="1234567" if covered else None,
                partner_name="Contoso Partner" if covered else None,
                error_code="AADSTS7000215" if status is Status.SIGN_IN_FAILED else None,
                error_message="AADSTS7000215: Invalid client secret provided."
                if status is Status.SIGN_IN_FAILED
                else None,
                attempts=1,
                credential_expires_on=start + timedelta(days=rng.randrange(-30, 400)),
                checked_at=start + timedelta(seconds=i),
                recognition=RecognitionResult(Recognition.ELIGIBLE if i % 5 else Recognition.NO_ROLES, 2)
                if covered
                else None,
                extra=(("region", "emea"), ("owner", f"owner{i % 97}@example.com")),
            ),
        )
    journal.finish_run(run_id, 1, finished_at=start + timedelta(hours=1))
    return run_id


def bench_render(n: int, workdir: str | Path) -> dict[str, float]:
    """Time rendering every format of an `n`-identity run; returns seconds and peak RSS (MiB).

    Called by the project benchmark (`orchestrator.bench`): reports must render 100,000 identities in
    under 30 s and 1 GiB. The journal is built first and not timed.
    """
    work = Path(workdir)
    check_report_dir(work)
    with Journal(work / "bench-journal.sqlite") as journal:
        run_id = synthetic_run(journal, n)
        started = time.perf_counter()
        write_reports(journal, run_id, work / "reports", now=datetime(2025, 1, 2, tzinfo=UTC))
        elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"identities": float(n), "render_s": round(elapsed, 2), "peak_rss_mib": round(peak_mib, 1)}
