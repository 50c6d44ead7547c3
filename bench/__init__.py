"""`make bench`: throughput, client CPU and peak memory of `pal-orchestrator link` against the emulator.

A developer tool, kept out of the installed package (pyproject's package discovery includes `orchestrator*` only);
run it from the repository root: `python -m bench --n 1000 --out reports/bench.json`.

Everything runs as separate processes on 127.0.0.1 only, so the figures are the ones an operator would see:
the emulator (50 ms added per request) in one process, each `pal-orchestrator` command in another, measured
from outside with `os.wait4` (wall time, user+sys CPU, peak RSS of exactly that process). Requests and the
emulator's own CPU come from its `/_emulator/stats` counters before and after each step. The seeds' way (the
Azure CLI, one process per call) runs from its own virtualenv, pointed at the emulator as a registered cloud.

Steps (see docs/performance.md): link N, re-run N, sequential 200, CPU per credential type, the concurrency
sweep, the seeds' way for 20, the inventory/report scale checks (each in its own child process), the realistic
step, and `lighthouse` over 1,000 delegated subscriptions (`bench.lighthouse`, its own emulator).

Every subprocess gets dead-loopback proxy variables (`http://127.0.0.1:9`, `NO_PROXY=127.0.0.1`): a client
that tried to reach any host but the emulator would fail at once instead of leaving the machine.

Modules, in the order data flows: `measure` (a child process measured from outside), `worlds` (the emulator's
world and the CSV inventories), `steps` (the emulator process and the link steps), `seeds` (the Azure CLI way),
`scale` (inventory and report checks in child processes), `figures` (ratios, targets, the recommendation),
`run` (every step in order → the bench.json document), `table` (the tables on stdout), `cli` (arguments).
"""
