"""CPU timing of DINAR's second-stage networks at full size with random weights, batch 1.

Measures seconds per UNet call (64x64 latent, 13 input channels) and per VQ encode / decode (256x256, 21
channels), and the process's peak resident memory, for a few inference settings: ``no_grad`` vs
``inference_mode``, ``channels_last``, thread count and bf16 autocast.

Run: ``.venv/bin/python bench/nets_second_stage.py`` (takes a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import resource
import time
from contextlib import nullcontext
from typing import Callable

import torch

from dinar_core.nets.unet import UNet, UNetConfig
from dinar_core.nets.vq import VQConfig, VQModel


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN primitive caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _randomise(m: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.02)


def run(repeats: int = 2, threads: tuple[int, ...] = (1, 2)) -> dict:
    """Return {setting: seconds} per network plus peak memory in MiB (see the module docstring)."""
    torch.manual_seed(0)
    default_threads = torch.get_num_threads()
    out: dict = {"torch": torch.__version__, "default_threads": default_threads, "repeats": repeats}

    # VQ autoencoder
    vq = VQModel(VQConfig()).eval()
    _randomise(vq)
    tex = torch.randn(1, 21, 256, 256)
    with torch.no_grad():
        z = vq.encode(tex)
    vq_res = {}
    for name, ctx, cl, dt in (
        ("no_grad_fp32", torch.no_grad, False, None),
        ("inference_mode_fp32", torch.inference_mode, False, None),
        ("inference_mode_channels_last", torch.inference_mode, True, None),
        ("inference_mode_bf16", torch.inference_mode, False, torch.bfloat16),
    ):
        m = vq.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        x = tex.to(memory_format=torch.channels_last) if cl else tex
        amp = torch.autocast("cpu", dtype=dt) if dt else nullcontext()

        def enc(m=m, x=x, ctx=ctx, amp=amp):
            with ctx(), amp:
                return m.encode(x)

        def dec(m=m, ctx=ctx, amp=amp):
            with ctx(), amp:
                return m.decode(z)

        vq_res[name] = {"encode_s": round(_time(enc, repeats), 3), "decode_s": round(_time(dec, repeats), 3)}
    vq.to(memory_format=torch.contiguous_format)
    out["vq"] = vq_res
    out["vq_params_M"] = round(sum(p.numel() for p in vq.parameters()) / 1e6, 2)
    out["peak_rss_mib_after_vq"] = round(_peak_mib())
    del vq

    # UNet
    unet = UNet(UNetConfig()).eval()
    _randomise(unet)
    x_t, cond, t = torch.randn(1, 6, 64, 64), torch.randn(1, 7, 64, 64), torch.tensor([500])
    un_res = {}
    settings = [
        ("no_grad_fp32", torch.no_grad, False, None, default_threads),
        ("inference_mode_fp32", torch.inference_mode, False, None, default_threads),
        ("inference_mode_channels_last", torch.inference_mode, True, None, default_threads),
        ("inference_mode_bf16", torch.inference_mode, False, torch.bfloat16, default_threads),
    ] + [(f"inference_mode_fp32_{n}threads", torch.inference_mode, False, None, n) for n in threads if n != default_threads]
    for name, ctx, cl, dt, n in settings:
        torch.set_num_threads(n)
        m = unet.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        xs = x_t.to(memory_format=torch.channels_last) if cl else x_t
        amp = torch.autocast("cpu", dtype=dt) if dt else nullcontext()

        def step(m=m, xs=xs, ctx=ctx, amp=amp):
            with ctx(), amp:
                return m(xs, t, cond)

        un_res[name] = {"step_s": round(_time(step, repeats), 3)}
    torch.set_num_threads(default_threads)
    out["unet"] = un_res
    out["unet_params_M"] = round(sum(p.numel() for p in unet.parameters()) / 1e6, 2)
    out["peak_rss_mib_after_unet"] = round(_peak_mib())
    best = min(v["step_s"] for v in un_res.values())
    out["estimated_200_step_sampling_s"] = round(200 * best, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
