"""Issue 14's whole-pipeline batch: 100 photos through every stage, and 10 photos with one and with two workers
(``bench.batch_scale.run_full``; ~40 min here). Run: ``python -m bench.run batch_full``;
``DINAR_BATCH_FULL_PHOTOS=20`` for a shorter run."""

from __future__ import annotations

import os

from bench.batch_scale import run_full


def run() -> dict:
    return run_full(int(os.environ.get("DINAR_BATCH_FULL_PHOTOS", 100)))
