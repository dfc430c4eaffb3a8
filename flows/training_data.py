"""Preparing a multi-view dataset for `dinar train first_stage` (``tasks/training_data.py``): the persons that hold
no ground-truth body (imported real captures) are fitted by the pipeline, each person's views as one person of
several frames (one shared shape, each view its own pose and camera), up to the fit, into a runs folder. Stages
are cached by their manifests as in `dinar run`, so a second training run on the same data fits nothing again. A
person that fails is recorded and the others are prepared; training then names it."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.pipeline import process_person
from tasks.training_data import needs_fitting
from tasks.workspace import DONE, Workspace


@flow(name="dinar-train-data", log_prints=True)
def prepare_training_data(data: str, out: str, config: dict | None = None) -> dict:
    """Fit every person of the multi-view dataset `data` without a ground-truth body into the runs folder `out`.
    Returns {"prepared": [person, ...], "failed": [[person, message], ...]}."""
    prepared, failed = [], []
    for person in needs_fitting(Path(data)):
        process_person(photos=str(person.root / "views"), out=out, person=person.name, config=config, until="fit")
        record = Workspace(Path(out) / person.name).stage_record("fit")
        if record.get("status") == DONE:
            prepared.append(person.name)
        else:
            failed.append([person.name, (record.get("error") or {}).get("message") or record.get("status", "")])
    return {"prepared": prepared, "failed": failed}


__all__ = ["prepare_training_data"]
