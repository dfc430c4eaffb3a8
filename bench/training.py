"""`dinar train` per step: seconds and peak memory of one optimiser step of each phase at the tiny, CPU and full
(DINAR's) sizes, on this machine's CPU.

Each (phase, size) runs in a fresh process (so ``ru_maxrss`` is its own peak) that trains `STEPS` steps through the
real Lightning trainer on random data of the right shapes (2 persons x 2 views; texture sets of random textures; the
diffusion phase with an untrained VQ) and times each step (batch start to batch end); the first step, which pays
for allocation, is reported apart. Torch uses one thread (the machine's cores are shared). Full sizes on a GPU are
not measured here (no GPU): the README extrapolates from these CPU figures.

Run: ``python -m bench.run training`` (part of ``make bench``).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"tiny": ROOT / "configs" / "train-tiny.yaml", "cpu": ROOT / "configs" / "train-cpu.yaml", "full": None}
BATCH = {"tiny": 4, "cpu": 4, "full": 1}
PHASES = ("first_stage", "vq", "diffusion")
STEPS = 4


def _views(neural, persons: int = 2, views: int = 2):
    import torch

    from dinar_core.avatar.neural import PixelTexture
    from dinar_core.training.first_stage import ViewSet

    g = torch.Generator().manual_seed(0)
    n, s, t = persons * views, neural.image_size, neural.texture_size
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    mask = (rand(n, 1, s, s) > 0.5).float()
    uv = torch.where(mask.bool().expand(-1, 2, -1, -1), rand(n, 2, s, s) * 2 - 1, torch.full((n, 2, s, s), -10.0))
    known = (rand(n, 1, t, t) > 0.5).float()
    return ViewSet(tuple(f"p{i}" for i in range(persons)), torch.arange(persons).repeat_interleave(views),
                   rand(n, 3, s, s) * 2 - 1, rand(n, 3, s, s) * 2 - 1, mask, uv, mask,
                   PixelTexture(rand(n, 3, t, t), known, torch.zeros_like(known), rand(n, 1, t, t)), "bench")


def _child(phase: str, size: str, queue) -> None:
    import torch

    torch.set_num_threads(1)
    import pytorch_lightning as pl

    from dinar_core.training.trainer import build_first_stage, build_phase, fit_phase
    from tasks.config import resolve_config

    cfg = resolve_config(None, SIZES[size], [])
    train = cfg.train.__class__(**{**cfg.train.__dict__, "max_steps": STEPS, "batch_size": BATCH[size],
                                   "checkpoint_every": 10 ** 6, "progress": False, "accelerator": "cpu",
                                   "allow_untrained": True})
    times: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_start(self, *args) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, *args) -> None:
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory() as tmp:
        if phase == "first_stage":
            module = build_first_stage(_views(cfg.neural), cfg.neural, train)
        else:
            from dinar_core.training.textures import save_texture_set_person

            g = torch.Generator().manual_seed(0)
            c, t = cfg.neural.texture_channels, cfg.neural.texture_size
            for p in range(2):
                views = torch.randn(2, c, t, t, generator=g)
                views[:, -2] = (torch.rand(2, t, t, generator=g) > 0.5).float()
                save_texture_set_person(Path(tmp) / "data" / f"p{p}.npz", views.numpy(),
                                        torch.rand(2, t, t, generator=g).numpy(), "bench")
            module = build_phase(phase, Path(tmp) / "data", cfg.neural, train)
        params = sum(p.numel() for p in module.trainable())
        fit_phase(module, Path(tmp) / "out", cfg.neural, train, callbacks=[Clock()])
    queue.put({"batch": BATCH[size], "trainable_params": params, "first_step_s": round(times[0], 3),
               "step_s": round(sorted(times[1:])[len(times[1:]) // 2], 3),
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})


def run() -> dict:
    ctx = mp.get_context("spawn")
    out: dict = {"steps_timed": STEPS - 1, "threads": 1}
    for size in SIZES:
        for phase in PHASES:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(phase, size, queue))
            t0 = time.time()
            proc.start()
            proc.join()
            key = f"{phase}/{size}"
            out[key] = queue.get() if proc.exitcode == 0 and not queue.empty() else {"error": f"exit {proc.exitcode}"}
            out[key]["wall_s"] = round(time.time() - t0, 1)
            print(key, out[key], flush=True)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
