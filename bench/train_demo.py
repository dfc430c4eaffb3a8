"""`make train-demo`: the three phases of `dinar train` on a synthetic corpus at the CPU sizes
(``configs/train-cpu.yaml``), end to end on this machine, then the bundle a neural avatar uses.

Corpus: `dinar synth` with seed 0, `PERSONS` persons x `VIEWS` views at `SIZE` px (held-out persons for `dinar eval`:
seed 1). Steps per phase: `STEPS`. Writes ``runs/train_demo/`` (datasets, each phase's OUT, ``model.pt``) and
``bench/results/train_demo.json``: seconds (wall and CPU) per phase and the first and last logged losses, the
held-out eval's PSNR and SSIM per method, placement and view bucket; ``bench/results/train_demo_back.png``: the
held-out persons' back views, real and as each method renders them.

Run: ``python -m bench.train_demo`` (also ``python -m bench.run train_demo``); ``--resume`` keeps the phases an
interrupted run finished (``OUT/figures.json``); ``--grid`` redraws the grid alone.
"""

from __future__ import annotations

import csv
import os
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "train_demo"
PERSONS, HELD_OUT, VIEWS, SIZE = 12, 6, 4, 256
STEPS = {"first_stage": 1800, "vq": 600, "diffusion": 3000}
GRID = ROOT / "bench" / "results" / "train_demo_back.png"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _losses(metrics: Path) -> dict:
    rows = [float(r["loss"]) for r in csv.DictReader(metrics.open()) if r.get("loss")]
    return {"first": round(rows[0], 5), "last": round(rows[-1], 5), "min": round(min(rows), 5), "rows": len(rows)}


def write_untrained_model(cfg, views, textures: Path, out: Path) -> Path:
    """``out/model_untrained.pt``: the same networks, freshly initialised from ``train.seed`` (the baseline a trained
    model must beat), bundled as a trained one is."""
    from dataclasses import asdict, replace

    from dinar_core.training.bundle import bundle_weights
    from dinar_core.training.trainer import build_first_stage, build_phase
    from dinar_core.training.weights import save_phase_weights

    train = replace(cfg.train, allow_untrained=True)
    paths = {}
    for phase, module in (("first_stage", build_first_stage(views, cfg.neural, train)),
                          ("diffusion", build_phase("diffusion", textures, cfg.neural, train))):
        paths[phase] = save_phase_weights(out / "untrained" / f"{phase}.pt", phase=phase, layout=module.layout,
                                          steps=0, untrained=("all",), neural=asdict(cfg.neural), train=asdict(train),
                                          state_dict=module.export_state())
    return bundle_weights(paths["first_stage"], paths["diffusion"], out / "model_untrained.pt")


def run(resume: bool = False) -> dict:
    """The three phases, the bundles, the held-out eval and the grid. With `resume`, a phase whose weights and
    figures (``OUT/figures.json``, written after each phase) are there from an earlier run is not trained again."""
    import json

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from dataclasses import replace

    from dinar_core.training.bundle import bundle_weights
    from dinar_core.training.first_stage import texture_set
    from dinar_core.training.trainer import build_first_stage, fit_phase, train_phase
    from dinar_core.training.weights import read_phase_weights
    from tasks.config import resolve_config
    from tasks.synth import synth_dataset
    from tasks.training_data import dataset_views

    cfg = resolve_config(None, ROOT / "configs" / "train-cpu.yaml", ["train.progress=false"])
    partial = OUT / "figures.json"
    figures: dict = json.loads(partial.read_text()) if resume and partial.is_file() else {}
    figures.update({"persons": PERSONS, "views": VIEWS, "size": SIZE, "steps": STEPS,
                    "config": "configs/train-cpu.yaml"})
    t0, c0 = time.time(), _cpu()
    if not (resume and (OUT / "synth_train").is_dir() and (OUT / "synth_eval").is_dir()):
        synth_dataset(OUT / "synth_train", persons=PERSONS, views=VIEWS, seed=0, size=SIZE)
        synth_dataset(OUT / "synth_eval", persons=HELD_OUT, views=VIEWS, seed=1, size=SIZE)
    views = dataset_views(OUT / "synth_train", cfg)
    figures["data"] = {"wall_s": round(time.time() - t0, 1), "cpu_s": round(_cpu() - c0, 1)}

    def phase(name: str, fn) -> Path:
        weights = OUT / name / f"{name}.pt"
        if resume and name in figures and weights.is_file():
            print(name, "from the earlier run", figures[name], flush=True)
            return weights
        t, c = time.time(), _cpu()
        result = fn()
        figures[name] = {"wall_s": round(time.time() - t, 1), "cpu_s": round(_cpu() - c, 1),
                         "loss": _losses(result.metrics)}
        partial.write_text(json.dumps(figures, indent=1) + "\n")
        print(name, figures[name], flush=True)
        return result.weights

    train = lambda name, **kw: replace(cfg.train, max_steps=STEPS[name], **kw)  # noqa: E731
    textures = OUT / "first_stage" / "textures"

    def first_stage():
        module = build_first_stage(views, cfg.neural, train("first_stage"))
        result = fit_phase(module, OUT / "first_stage", cfg.neural, train("first_stage"))
        weights = read_phase_weights(result.weights, "first_stage")
        module.encoder.load_state_dict(weights.part("encoder"))
        module.generator.load_state_dict(weights.part("generator"))
        module.eval()
        with torch.no_grad():
            texture_set(module.encoder, module.generator, views, textures)
        return result

    fs = phase("first_stage", first_stage)
    vq = phase("vq", lambda: train_phase("vq", textures, OUT / "vq", cfg.neural, train("vq")))
    df = phase("diffusion", lambda: train_phase("diffusion", textures, OUT / "diffusion", cfg.neural,
                                                train("diffusion", vq_weights=str(vq))))
    figures["model"] = str(bundle_weights(fs, df, OUT / "model.pt").relative_to(ROOT))
    figures["model_untrained"] = str(write_untrained_model(cfg, views, textures, OUT).relative_to(ROOT))
    figures["training_total_cpu_s"] = round(sum(figures[n]["cpu_s"] for n in STEPS), 1)
    figures["eval"] = held_out_eval(OUT)
    figures["grid"] = str(back_grid(OUT, GRID).relative_to(ROOT))
    return figures


EVAL_METHODS = "[flat, classic, neural]"


def held_out_eval(out: Path) -> dict:
    """`dinar eval` of the held-out persons with the trained and the untrained model (method `neural`), beside
    `flat` and `classic`: per placement, method and view bucket the mean PSNR and SSIM of each run (its summary.md
    has the full tables)."""
    import json

    from flows.evaluate import evaluate_folder
    from flows.settings import configure_prefect, flow_run_settings
    from tasks.config import load_config, to_dict

    configure_prefect(False)
    result = {}
    for name, model in (("trained", out / "model.pt"), ("untrained", out / "model_untrained.pt")):
        config = to_dict(load_config(None, [f"avatar.checkpoint={model}", f"eval.methods={EVAL_METHODS}"]))
        with flow_run_settings():
            evaluate_folder(data=str(out / "synth_eval"), out=str(out / f"eval_{name}"), config=config)
        rows = json.loads((out / f"eval_{name}" / "eval.json").read_text())["rows"]
        table: dict = {}
        for r in rows:
            if r["error"] is None:
                cell = table.setdefault(r["placement"], {}).setdefault(r["method"], {}).setdefault(r["bucket"], [])
                cell.append((r["psnr"], r["ssim"]))
        mean = lambda v, i: round(sum(x[i] for x in v) / len(v), 3)  # noqa: E731
        result[name] = {place: {m: {b: {"psnr": mean(v, 0), "ssim": mean(v, 1), "views": len(v)}
                                    for b, v in sorted(by.items())} for m, by in methods.items()}
                        for place, methods in table.items()}
        print(name, result[name], flush=True)
    return result


GRID_COLUMNS = (("real", None), ("flat", "trained"), ("classic", "trained"), ("neural", "trained"),
                ("neural", "untrained"))


def back_grid(out: Path, path: Path, h: int = 150) -> Path:
    """One row per held-out person: its real back view, then `flat`, `classic`, the trained and the untrained
    `neural` renders of it (calibrated placement), each cropped to the union of the person's and the renders' boxes.
    Written to `path` (PNG)."""
    import json

    import cv2
    import numpy as np

    rows = json.loads((out / "eval_trained" / "eval.json").read_text())["rows"]
    backs = sorted({(r["person"], r["view"]) for r in rows if r["bucket"] == "back" and r["error"] is None})
    read = lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR) if p.is_file() else None  # noqa: E731
    lines = []
    for person, cam in backs:
        images = []
        for method, run_name in GRID_COLUMNS:
            if method == "real":
                images.append(read(out / "synth_eval" / person / "views" / f"{cam}.png"))
            else:
                images.append(read(out / f"eval_{run_name}" / "renders" / person / f"{method}_{cam}.png"))
        ink = [np.any(img < 245, axis=2) for img in images if img is not None]
        ys, xs = np.nonzero(np.logical_or.reduce(ink))
        pad = 6
        y0, y1 = max(0, ys.min() - pad), ys.max() + pad
        x0, x1 = max(0, xs.min() - pad), xs.max() + pad
        w = max(1, round((x1 - x0) * h / max(1, y1 - y0)))
        crops = [cv2.resize(img[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA) if img is not None
                 else np.full((h, w, 3), 235, np.uint8) for img in images]
        lines.append(np.hstack([np.pad(c, ((0, 0), (2, 2), (0, 0)), constant_values=255) for c in crops]))
    width = max(line.shape[1] for line in lines)
    body = np.vstack([np.pad(line, ((2, 2), (0, width - line.shape[1]), (0, 0)), constant_values=255)
                      for line in lines])
    head = np.full((20, width, 3), 255, np.uint8)
    col = lines[0].shape[1] // len(GRID_COLUMNS)
    for i, (method, run_name) in enumerate(GRID_COLUMNS):
        label = method if run_name in (None, "trained") and method != "neural" else f"{method} {run_name}"
        cv2.putText(head, label, (i * col + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([head, body]))
    return path


if __name__ == "__main__":
    import json
    import sys

    from bench.run import RESULTS

    if sys.argv[1:] == ["--grid"]:  # the grid alone, from the last run's outputs
        print(back_grid(OUT, GRID))
        raise SystemExit(0)
    result = run(resume=sys.argv[1:] == ["--resume"])
    (RESULTS / "train_demo.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
