"""`python -m bench.intent_commit [N]`: what a durable intent costs the event loop, per intent and grouped.

Times N `Journal.record_intent` calls (synchronous=FULL, one fsync each, on the calling thread = the loop), then N
`IntentCommitter.record` calls from 128 concurrent tasks (group commit: WAL fsyncs in a thread), on one disk.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.intents import IntentCommitter
from orchestrator.journal import Journal


def _journal(path: Path) -> tuple[Journal, str]:
    journal = Journal(path)
    run_id = journal.start_run(command="link", inventory_path="/bench", inventory_sha256="-", inventory_rows=0,
                               skipped=0, partner_ids=["1"], options={}, tool_version="bench", operator="bench")
    return journal, run_id


async def _grouped(committer: IntentCommitter, n: int) -> None:
    async def writer(i: int) -> None:
        await asyncio.sleep((i % 128) * 0.002)  # arrivals spread as a run's writes are
        await committer.record(f"k{i}", "link", "1")

    await asyncio.gather(*(writer(i) for i in range(n)))


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 2000
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        journal, run_id = _journal(Path(tmp) / "full.sqlite")
        started = time.perf_counter()
        for i in range(n):
            journal.record_intent(run_id, f"k{i}", "link", "1")
        per_intent = (time.perf_counter() - started) * 1000 / n
        journal.close()
        journal, run_id = _journal(Path(tmp) / "grouped.sqlite")
        committer = IntentCommitter(journal, run_id)
        cpu = time.process_time()
        asyncio.run(_grouped(committer, n))
        grouped_cpu = (time.process_time() - cpu) * 1000 / n
        journal.close()
    print(f"synchronous=FULL per intent: {per_intent:.3f} ms on the loop per intent ({n} intents)")
    print(f"group commit: {n} intents in {committer.syncs} fsyncs, 0 ms on the loop, {grouped_cpu:.3f} ms CPU per "
          "intent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
