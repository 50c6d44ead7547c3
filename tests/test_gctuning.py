"""A link run collects garbage in batches: the CLI raises the collector's thresholds before the work starts."""

from __future__ import annotations

import gc

from orchestrator.gctuning import BATCH_THRESHOLDS, tune_for_batch


def test_tune_for_batch_sets_thresholds_and_freezes() -> None:
    """After tuning, gen-0 waits for 20,000 allocations and the objects alive then are out of full collections."""
    before = gc.get_threshold()
    try:
        tune_for_batch()
        assert gc.get_threshold() == BATCH_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
