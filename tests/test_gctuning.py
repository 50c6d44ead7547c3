"""A link run collects garbage in batches: the CLI raises the collector's thresholds before the work starts."""

from __future__ import annotations

import gc

import pytest

from orchestrator import gctuning
from orchestrator.gctuning import BATCH_THRESHOLDS, tune_for_batch


def test_tune_for_batch_sets_thresholds_and_freezes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After tuning, gen-0 waits for 20,000 allocations and the objects alive then are out of full collections;
    a second call in the same process (another in-process command) freezes nothing more."""
    monkeypatch.setattr(gctuning, "_frozen", False)
    gc.unfreeze()  # an in-process CLI test before this one may have frozen the heap: start from none
    before = gc.get_threshold()
    try:
        tune_for_batch(freeze=False)
        assert gc.get_freeze_count() == 0
        tune_for_batch()
        assert gc.get_threshold() == BATCH_THRESHOLDS
        frozen = gc.get_freeze_count()
        assert frozen > 0
        garbage = [[] for _ in range(1000)]
        tune_for_batch()
        assert gc.get_freeze_count() == frozen
        del garbage
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
