"""Person x stage status, read from the manifests (what `dinar status` prints and the flows summarise)."""

from __future__ import annotations

from pathlib import Path

from tasks.discover import find_workspaces
from tasks.stages import stage_names
from tasks.workspace import BLOCKED, DONE, FAILED, PENDING, Workspace


def person_status(ws: Workspace, stages: list[str] | None = None) -> dict:
    """{"person", "stages": {stage: {"status", "error", "warnings", "seconds", "executions"}}} for one workspace."""
    manifest = ws.read_manifest()
    out = {"person": ws.person, "path": str(ws.root), "stages": {}}
    for name in stages or stage_names():
        rec = manifest["stages"].get(name)
        if not rec:
            out["stages"][name] = {"status": PENDING}
            continue
        err = rec.get("error")
        out["stages"][name] = {
            "status": rec.get("status", PENDING),
            "error": f"{err['type']}: {err['message']}" if err else None,
            "warnings": rec.get("warnings", []),
            "seconds": rec.get("seconds"),
            "executions": rec.get("executions", 0),
        }
    return out


def runs_status(runs: Path, stages: list[str] | None = None) -> list[dict]:
    return [person_status(ws, stages) for ws in find_workspaces(runs)]


def summarize(statuses: list[dict]) -> dict:
    """Counts of persons fully done / with a failure, and the failures themselves, for the end of a run."""
    failed = []
    for st in statuses:
        for stage, rec in st["stages"].items():
            if rec["status"] == FAILED:
                failed.append({"person": st["person"], "stage": stage, "error": rec["error"]})
    done = sum(1 for st in statuses if all(r["status"] == DONE for r in st["stages"].values()))
    blocked = sum(1 for st in statuses if any(r["status"] == BLOCKED for r in st["stages"].values()))
    return {"persons": len(statuses), "complete": done, "with_failures": len({f["person"] for f in failed}),
            "blocked": blocked, "failures": failed}
