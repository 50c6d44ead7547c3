"""Garbage-collector settings for a long batch: fewer, cheaper collections.

A run keeps a few hundred identities in flight, each allocating thousands of short-lived SDK objects, so CPython's
default gen-0 threshold (700 allocations) runs a collection every few requests: about a thousand collections and
~10 % of the CPU of a 2,000-identity link. Reference counting frees almost all of those objects anyway; the
collector is only needed for cycles (SDK exceptions with their tracebacks, futures). A gen-0 threshold of 20,000
keeps the cycles it finds to tens of MB at most, and `gc.freeze()` moves what is alive after the imports (modules,
classes, the loaded inventory or world) out of every later full collection.
"""

from __future__ import annotations

import ctypes
import gc
import sys

#: gen-0 allocations between collections, then gen-0 collections per gen-1, gen-1 per gen-2 (CPython: 700, 10, 10)
BATCH_THRESHOLDS = (20_000, 20, 20)

_frozen = False


def tune_for_batch(*, freeze: bool = True) -> None:
    """Call once the long-lived objects exist (imports done), before the work starts.

    The heap is frozen once per process: a process that runs several commands (a test session calling the CLI
    in-process) would otherwise freeze the cycles that became garbage between them, for good.
    """
    global _frozen
    gc.set_threshold(*BATCH_THRESHOLDS)
    if freeze and not _frozen:
        gc.freeze()
        _frozen = True


def release_memory() -> None:
    """Collect, then hand the heap's free pages back to the system (glibc `malloc_trim`) before a new phase.

    A run's per-identity objects die in small pieces between live ones; glibc keeps the freed arenas mapped, so
    the report phase, rendered afterwards in the same process, would stack its own peak on the run's. Elsewhere
    (no glibc) only the collection happens.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim: nothing to give back
        return
