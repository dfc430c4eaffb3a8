"""The evaluation flow (`dinar eval`): for each person of a multi-view dataset, the real pipeline makes the avatar
from one view and the protocol scores it in every other view (``tasks/evaluate.py``, ``docs/evaluation.md``).

Per person, in order: (1) every view through ingest -> keypoints (``EVAL/probe/<person>/<camera>/``: the most
frontal view is chosen from them, and on real data their masks are the real person masks); (2) the source view,
warped to DINAR's camera model, through the whole pipeline up to the avatar (``EVAL/runs/<person>/``) with the
source camera's focal length; (3) the scoring task, cached in ``EVAL/results/<person>.json``. Pipeline stages are
cached by their manifests as in `dinar run`, so a second `dinar eval` recomputes only what changed. A person that
fails is recorded and the others are evaluated. Then the tables, plots and grids (``tasks/eval_report.py``).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE

from dinar_core.errors import DinarError, EvalDataError
from tasks.config import PipelineConfig, from_dict, override, to_dict
from tasks.eval_data import EvalPerson, read_people
from tasks.eval_report import write_outputs
from tasks.eval_results import cached_result, result_key, write_result
from tasks.evaluate import choose_source, score_person, write_source_photo
from tasks.workspace import DONE, Workspace
from flows.pipeline import process_folder, process_person


def _lpips(cfg: PipelineConfig):
    if not cfg.eval.lpips_weights:
        return None
    from dinar_core.avatar.lpips import load_lpips_vgg

    return load_lpips_vgg(cfg.eval.lpips_weights)


@task(name="eval-person", task_run_name="eval:{person_name}", cache_policy=NONE, persist_result=False)
def eval_person_task(person_root: str, person_name: str, ws_root: str, probe_root: str, source: str,
                     config: dict, out: str) -> dict:
    """Score one person's avatar in its other views; returns {"person", "result" (path), "cached"}."""
    from tasks.eval_data import read_person

    cfg = from_dict(config)
    person = read_person(Path(person_root))
    ws = Workspace(Path(ws_root))
    methods = list(cfg.eval.methods)
    key = result_key(person, ws, cfg, source, methods)
    path = Path(out) / "results" / f"{person.name}.json"
    if cached_result(path, key) is not None:
        return {"person": person.name, "result": str(path), "cached": True}
    probe = lambda cam: Workspace(Path(probe_root) / cam)  # noqa: E731
    result = score_person(person, ws, probe, source, cfg, methods, Path(out), _lpips(cfg))
    result.key = key
    write_result(path, result)
    return {"person": person.name, "result": str(path), "cached": False}


def _stage_error(ws: Workspace) -> str | None:
    for name, rec in ws.read_manifest()["stages"].items():
        if rec.get("status") != DONE:
            err = rec.get("error") or {}
            return f"{name}: {err.get('type', rec.get('status'))}: {err.get('message', '')}"
    return None


def _avatar_of(person: EvalPerson, cfg: PipelineConfig, out: Path) -> tuple[str, Workspace, Path]:
    """Steps 1-2 for one person: the probe of every view, the source choice, the avatar. Returns (source, avatar
    workspace, probe folder); EvalDataError when no avatar could be made."""
    probe_root = out / "probe" / person.name
    probe_cfg = to_dict(cfg)
    process_folder(photos=str(person.root / "views"), out=str(probe_root), config=probe_cfg, until="keypoints")
    source, _ = choose_source(person, lambda cam: Workspace(probe_root / cam), cfg.eval.source)
    photo = out / "photos" / f"{person.name}.png"
    focal = write_source_photo(person, source, photo)
    person_cfg = override(cfg, {"fit": {"focal": focal}})
    process_person(photos=str(photo), out=str(out / "runs"), person=person.name, config=to_dict(person_cfg),
                   until="avatar")
    ws = Workspace(out / "runs" / person.name)
    problem = _stage_error(ws)
    if problem is not None:
        raise EvalDataError(f"{person.name}: no avatar from view {source} ({problem})",
                            fix=f"see `dinar status {out / 'runs'}`; try another --source")
    return source, ws, probe_root


@flow(name="dinar-eval", log_prints=True)
def evaluate_folder(data: str, out: str, config: dict | None = None) -> dict:
    """Evaluate every person of the multi-view dataset `data` into `out`; returns the summary's paths and counts."""
    cfg = from_dict(config or {})
    out_dir = Path(out)
    people, errors = read_people(Path(data))
    done = []
    for person in people:
        try:
            source, ws, probe_root = _avatar_of(person, cfg, out_dir)
        except DinarError as exc:
            errors.append((person.name, f"{type(exc).__name__}: {exc}"))
            continue
        fut = eval_person_task.submit(str(person.root), person.name, str(ws.root), str(probe_root), source,
                                      to_dict(cfg), str(out_dir))
        done.append((person.name, fut))
    results, cached = [], 0
    for name, fut in done:
        try:
            res = fut.result()
        except Exception as exc:  # noqa: BLE001 - one person's failure is recorded, the others are reported
            errors.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        results.append(Path(res["result"]))
        cached += int(res["cached"])
    summary = write_outputs(out_dir, results, errors, cfg)
    summary.update({"persons": len(people) + len([e for e in errors if e[0] not in {p.name for p in people}]),
                    "evaluated": len(results), "cached": cached, "errors": errors})
    return summary


__all__ = ["evaluate_folder", "eval_person_task"]
