"""CPU timing of DINAR's first-stage networks at full size with random weights, batch 1.

Measures seconds per forward of the encoder (512x512 photo), the texture generator (256x256, 16 channels), the
neural renderer (512x512 from a 21x256x256 texture) and the discriminator (512x512), and each network's peak
resident memory (``ru_maxrss`` of a fresh child process per network, so the figures do not mix; the figure
before building the network is the interpreter + torch alone), under a few
inference settings: ``no_grad`` (baseline), ``inference_mode``, ``channels_last``, ``torch.set_num_threads(2)``
and bf16 autocast (with the bf16 output's largest deviation from float32).

Run: ``.venv/bin/python bench/nets_first_stage.py`` (a few minutes on 2 cores), or ``python -m bench.run
nets_first_stage``. Timings are the best of `repeats` calls after one warm-up call; other processes on the
machine make them noisy.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import time
from contextlib import nullcontext
from typing import Callable

import torch

NETWORKS = ("encoder", "generator", "renderer", "discriminator")
VARIANTS = ("no_grad", "inference_mode", "channels_last", "threads_2", "bf16_autocast")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _build(name: str) -> tuple[torch.nn.Module, Callable[[torch.nn.Module, bool], torch.Tensor]]:
    """The network (random weights, eval mode) and a call(model, channels_last) -> main output tensor."""
    from dinar_core.nets.renderer import NeuralRenderer, RendererConfig
    from dinar_core.nets.stylegan2 import Discriminator, DiscriminatorConfig, Encoder, EncoderConfig, Generator, GeneratorConfig

    g = torch.Generator().manual_seed(0)

    def cl(x: torch.Tensor, on: bool) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if on else x

    if name == "encoder":
        model = Encoder(EncoderConfig())
        img, segm = torch.rand(1, 3, 512, 512, generator=g) * 2 - 1, torch.ones(1, 1, 512, 512)
        noise = torch.randn(1, 1, 512, 512, generator=g)
        return model.eval(), lambda m, c: m(cl(img, c), cl(segm, c), cl(noise, c))
    if name == "generator":
        model = Generator(GeneratorConfig())
        style = torch.randn(1, 512, generator=g)
        return model.eval(), lambda m, c: m(style, randomize_noise=False)
    if name == "renderer":
        model = NeuralRenderer(RendererConfig())
        tex = torch.randn(1, 21, 256, 256, generator=g)
        mask = torch.zeros(1, 1, 512, 512)
        mask[:, :, 64:480, 160:352] = 1.0
        uv = (torch.rand(1, 2, 512, 512, generator=g) * 2 - 1) * mask - 10.0 * (1 - mask)
        return model.eval(), lambda m, c: m(cl(tex, c), cl(uv, c), cl(mask, c)).rgb
    if name == "discriminator":
        model = Discriminator(DiscriminatorConfig())
        img = torch.rand(1, 3, 512, 512, generator=g) * 2 - 1
        return model.eval(), lambda m, c: m(cl(img, c))
    raise ValueError(f"unknown network {name!r}; expected one of {NETWORKS}")


def _set_memory_format(model: torch.nn.Module, fmt: torch.memory_format) -> torch.nn.Module:
    """Module.to(memory_format=...) refuses models holding non-4D tensors; convert the 4D ones only."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.ndim == 4:
            t.data = t.data.contiguous(memory_format=fmt)
    return model


def _call_variant(variant: str, model: torch.nn.Module, call) -> torch.Tensor:
    """One forward under `variant`'s settings (threads and memory format restored afterwards)."""
    threads_before = torch.get_num_threads()
    channels_last = variant == "channels_last"
    if variant == "threads_2":
        torch.set_num_threads(2)
    m = _set_memory_format(model, torch.channels_last if channels_last else torch.contiguous_format)
    grad_ctx = torch.inference_mode if variant in ("inference_mode", "bf16_autocast") else torch.no_grad
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16_autocast" else nullcontext()
    try:
        with grad_ctx(), amp:
            return call(m, channels_last).float()
    finally:
        torch.set_num_threads(threads_before)


def _measure(name: str, repeats: int, variants: tuple[str, ...]) -> dict:
    """Runs in a child process: time each variant, report the child's peak memory.

    The variants are timed in interleaved rounds (v1, v2, ..., v1, v2, ...) and the best call of each kept, so
    that a burst of load from other processes does not favour one variant over another.
    """
    rss_before = round(_peak_mib(), 1)  # the interpreter + torch alone
    torch.manual_seed(0)
    model, call = _build(name)
    out: dict = {"peak_rss_mib_before_build": rss_before, "parameters": sum(p.numel() for p in model.parameters()),
                 "threads_default": torch.get_num_threads()}
    outputs = {}
    for variant in variants:  # warm-up (allocator, oneDNN primitive caches) and the outputs to compare
        outputs[variant] = _call_variant(variant, model, call)
        if variant == variants[0]:
            out["peak_rss_mib_first_variant"] = round(_peak_mib(), 1)
    best = {v: float("inf") for v in variants}
    for _ in range(repeats):
        for variant in variants:
            t0 = time.perf_counter()
            _call_variant(variant, model, call)
            best[variant] = min(best[variant], time.perf_counter() - t0)
    out["seconds"] = {v: round(t, 3) for v, t in best.items()}
    ref = outputs[variants[0]]
    out[f"max_abs_diff_vs_{variants[0]}"] = {v: float((y - ref).abs().max()) for v, y in outputs.items()
                                              if v != variants[0]}
    out["peak_rss_mib_all_variants"] = round(_peak_mib(), 1)
    return out


def run(repeats: int = 5, networks: tuple[str, ...] = NETWORKS, variants: tuple[str, ...] = VARIANTS) -> dict:
    """Figures per network: parameters, seconds per forward per variant, peak RSS (MiB) of its own process."""
    ctx = mp.get_context("spawn")
    results: dict = {"batch": 1, "repeats": repeats, "torch": torch.__version__, "networks": {}}
    for name in networks:
        try:
            with ctx.Pool(1) as pool:
                results["networks"][name] = pool.apply(_measure, (name, repeats, variants))
        except Exception as exc:  # keep the other networks' figures
            results["networks"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
