"""CPU timing of one DINAR avatar with the FULL-size networks (random weights): seconds per phase and peak memory.

One avatar runs through the whole chain (synthetic SMPL-X body and photo, 512 px crop, 256 px texture) with a
small number of DDIM steps (default 5); the figures per phase are the encoder, the generator, VQ encode, one DDIM
step (UNet call + update; fp32, and bf16 autocast for comparison), VQ decode, one renderer frame (turntable) and
one finetuning step (generator + discriminator step). The whole avatar at 25 / 50 / 200 DDIM steps (and with
DINAR's 64 / 128 finetuning steps) is EXTRAPOLATED from those per-step times (marked so), not run.

Peak memory is the ``ru_maxrss`` of a fresh child process that does the measurement (so it includes the
interpreter and torch, ~0.3-0.5 GiB). Run: ``.venv/bin/python -m bench.run neural_avatar`` (several minutes on 2
cores) or ``.venv/bin/python bench/neural_avatar.py``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _measure(ddim_steps: int, finetune_steps: int, frames: int, queue) -> None:
    sys.path.insert(0, str(ROOT))
    import dataclasses

    import torch

    from dinar_core.avatar.config import NeuralAvatarConfig
    from dinar_core.avatar.dataset import prepare_sample
    from dinar_core.avatar.finetune import FinetuneInputs, finetune_texture
    from dinar_core.avatar.neural import NeuralAvatarPipeline, project_vertices
    from dinar_core.diffusion.ddim import sample_ddim_inpaint
    from dinar_core.diffusion.inpaint import make_condition
    from dinar_core.nets.dinar import DinarModel
    from tests.helpers.neural_scene import make_scene

    out: dict = {"torch_threads": torch.get_num_threads(), "ddim_steps_run": ddim_steps}
    mem0 = _peak_mib()
    with tempfile.TemporaryDirectory() as tmp:
        scene = make_scene(Path(tmp), image_size=(1024, 768))
    cfg = NeuralAvatarConfig(device="cpu", ddim_steps=ddim_steps,
                             uv_layout=dataclasses.replace(NeuralAvatarConfig().uv_layout,
                                                           num_faces=scene.layout.uv_faces.shape[0],
                                                           num_uv_verts=scene.layout.uv.shape[0]))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = DinarModel(cfg.dinar_config()).eval()
    out["build_seconds"] = time.perf_counter() - t0
    out["parameters_millions"] = {name: sum(p.numel() for p in getattr(model, name).parameters()) / 1e6
                                  for name in ("encoder", "generator", "compress_branch", "unet", "renderer",
                                               "discriminator")}
    pipe = NeuralAvatarPipeline(model, scene.layout, cfg)
    with torch.no_grad():
        verts = project_vertices(scene.body(scene.params).vertices, scene.K, scene.layout.vertex_index)
    sample = prepare_sample("p0", scene.rgb, scene.segm, verts[0].double().numpy(), scene.K.double().numpy(),
                            cfg.image_size, cfg.crop_scale)
    # warm-up of the small ops (one-time allocator / kernel selection), then the measured run
    t0 = time.perf_counter()
    avatar = pipe.run(sample)
    out["first_run_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    avatar = pipe.run(sample)
    out["avatar_seconds_measured"] = time.perf_counter() - t0
    ph = dict(avatar.times.seconds)
    phases = {k: ph[k] for k in ("rasterize", "splat", "encoder", "generator", "vq_encode", "vq_decode")}
    phases["ddim_step"] = ph["ddim"] / ddim_steps
    phases["render_input_view"] = ph["render"]

    # bf16 autocast DDIM steps, for comparison
    with torch.no_grad():
        cond = make_condition(model.compress(avatar.source_ntexture), avatar.source_ntexture[:, -2:-1])
        t0 = time.perf_counter()
        sample_ddim_inpaint(model.unet, model.schedule, cond, steps=2, dtype="bf16",
                            generator=torch.Generator().manual_seed(0))
        phases["ddim_step_bf16"] = (time.perf_counter() - t0) / 2

    # renderer frames (turntable)
    t0 = time.perf_counter()
    n = sum(1 for _ in pipe.frames(avatar.ntexture, pipe.turntable(avatar.verts, avatar.K, frames)))
    phases["render_frame"] = (time.perf_counter() - t0) / n

    # finetuning steps (the first one includes warm-up; the per-step figure uses the rest)
    inputs = FinetuneInputs(ntexture=avatar.ntexture, mask=avatar.mask, normal_angles=avatar.normal_angles,
                            uv=avatar.uv, real_rgb=sample.real_rgb[None], real_segm=sample.real_segm[None],
                            verts=avatar.verts, diffusion_ntexture=avatar.diffusion_ntexture,
                            binary_uv_map=pipe.uv_coverage)
    stamps: list[float] = []
    t0 = time.perf_counter()
    finetune_texture(model.renderer, model.discriminator, inputs,
                     dataclasses.replace(cfg.finetune, steps=finetune_steps),
                     progress=lambda i, total: stamps.append(time.perf_counter()))
    steps = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    phases["finetune_step"] = sum(steps[1:]) / max(1, len(steps) - 1) if len(steps) > 1 else steps[0]
    phases["finetune_first_step"] = steps[0]
    out["seconds_per_phase"] = {k: round(v, 4) for k, v in phases.items()}

    fixed = sum(phases[k] for k in ("rasterize", "splat", "encoder", "generator", "vq_encode", "vq_decode",
                                    "render_input_view"))
    out["extrapolated"] = {
        f"avatar_{s}_ddim_steps_seconds": round(fixed + s * phases["ddim_step"], 1) for s in (25, 50, 200)}
    out["extrapolated"].update({
        f"avatar_{s}_ddim_steps_bf16_seconds": round(fixed + s * phases["ddim_step_bf16"], 1) for s in (25, 50, 200)})
    out["extrapolated"]["finetune_64_steps_seconds"] = round(64 * phases["finetune_step"], 1)
    out["extrapolated"]["finetune_128_steps_seconds"] = round(128 * phases["finetune_step"], 1)
    out["extrapolated"]["turntable_360_frames_seconds"] = round(360 * phases["render_frame"], 1)
    out["extrapolated"]["note"] = "extrapolated from the measured per-step / per-frame times, not run"
    out["peak_rss_mib"] = round(_peak_mib(), 1)
    out["rss_before_model_mib"] = round(mem0, 1)
    queue.put(out)


def run(ddim_steps: int = 5, finetune_steps: int = 3, frames: int = 3) -> dict:
    """Measure in a fresh child process; returns the figures (see the module docstring)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(ddim_steps, finetune_steps, frames, queue))
    t0 = time.perf_counter()
    proc.start()
    result = queue.get()
    proc.join()
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["device"] = "cpu"
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
