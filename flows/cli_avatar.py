"""The `dinar` commands on finished workspaces and DINAR datasets: animate, export, fit-check, infer.

They register on the app of `flows.cli_common` (imported by `flows.cli`, whose ``app`` is the console script). A
person's commands start from its saved ``config.yaml``; `fit-check` and `infer` from the defaults; all of them then
apply ``--config`` and ``--set`` through `tasks.config.resolve_config`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from flows.cli_common import command, console, esc, fail, out_console

CONFIG_HELP = "YAML overriding the person's config (then --set)."
SET_HELP = "Override one value, e.g. render.fps=30 (repeatable)."

# `dinar infer`'s DINAR-compatible flags, each a shortcut for `--set` of one config field.
INFER_FLAGS = {
    "ckpt_path": "avatar.checkpoint",
    "steps": "neural.ddim_steps",
    "seed": "neural.seed",
    "device": "neural.device",
    "smplx_models": "body.smplx_models",
    "uv_assets": "body.uv_assets",
    "no_finetune": "neural.finetune.enabled",  # inverted: --no-finetune sets it to false
    "lpips_weights": "neural.finetune.lpips_weights",
    "max_frames": "neural.video.max_frames",
    "finetune_back": "neural.finetune.back",
}


def infer_flag_overrides(**flags: Any) -> list[tuple[str, Any]]:
    """The overrides the given `dinar infer` flags stand for (unset flags: none), in `INFER_FLAGS` order."""
    out: list[tuple[str, Any]] = []
    for flag, key in INFER_FLAGS.items():
        value = flags.pop(flag, None)
        if value is None or value is False:
            continue
        if flag == "no_finetune":
            value = False
        elif isinstance(value, Path):
            value = str(value)
        out.append((key, value))
    if flags:
        raise TypeError(f"not flags of dinar infer: {sorted(flags)}")
    return out


def _person(person: Path):
    from tasks.workspace import Workspace

    if not (person / "avatar" / "avatar.json").is_file():
        raise fail(f"{esc(str(person))} has no avatar yet", " (avatar/avatar.json): run `dinar run ... --until "
                   "avatar` first")
    return Workspace(person)


def _person_config(ws, config: Optional[Path], set_: list[str]):
    """The person's saved config.yaml, then --config, then --set."""
    from tasks.config import resolve_config

    return resolve_config(ws.config_path, config, set_)


@command(catch=(Exception,))  # any error of the render stage: named, no traceback
def animate(
    person: Path = typer.Argument(..., help="One person's workspace, RUNS/<person>."),
    motion: str = typer.Option("turntable", help="turntable | walk | wave | idle | rest, or a DINAR .pkl / "
                                                  "AMASS .npz."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Video file (default RUNS/<person>/renders/"
                                       "<motion>.mp4)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Render the person's avatar animated with MOTION to an MP4."""
    from tasks.render import BUILTIN_MOTIONS, render_avatar

    ws = _person(person)
    cfg = _person_config(ws, config, set_)
    name = motion if motion in BUILTIN_MOTIONS else Path(motion).stem
    out = out or ws.renders_dir / f"{name}.mp4"
    result = render_avatar(ws, cfg, motion=motion, out=out, with_views=False)
    out_console.print(f"{esc(str(result.video))} ({result.num_frames} frames, {result.image_size[1]}x"
                      f"{result.image_size[0]}, {result.fps:g} fps, {result.seconds:.1f} s)")


@command("export", catch=(Exception,))
def export_cmd(
    person: Path = typer.Argument(..., help="One person's workspace, RUNS/<person>."),
    glb: bool = typer.Option(True, "--glb/--no-glb", help="Write a skinned, textured GLB."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="GLB file (default RUNS/<person>/avatar/"
                                       "avatar.glb)."),
    motion: Optional[str] = typer.Option(None, help="One more clip beside export.clips: a built-in motion or a "
                                                    "DINAR .pkl / AMASS .npz, retargeted onto the rig."),
    clip: Optional[str] = typer.Option(None, help="The name of the --motion clip (default: the motion's name or "
                                                  "its file's stem)."),
    no_animation: bool = typer.Option(False, "--no-animation", help="Only the rest-pose mesh and its skeleton."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help="Override one value (repeatable)."),
) -> None:
    """Export the person's avatar (GLB: mesh, texture, skeleton, skinning weights, optional animation)."""
    from tasks.export import export_avatar

    if not glb:
        console.print("nothing to export: --glb is the only format")
        raise typer.Exit(2)
    ws = _person(person)
    cfg = _person_config(ws, config, set_)
    result = export_avatar(ws, cfg, out=out, motion=motion, animate=False if no_animation else None, clip=clip)
    i = result.info
    for w in result.warnings:
        console.print(f"[yellow]{esc(w)}[/yellow]")
    val = "" if result.validation is None else (f", validator: {result.validation['errors']} errors, "
                                                 f"{result.validation['warnings']} warnings")
    out_console.print(f"{esc(str(result.path))} ({i.num_vertices} vertices, {i.num_joints} joints, "
                      f"{i.num_animations} clip(s): {', '.join(i.animation_names) or '-'}{val})")


@command("fit-check")
def fit_check(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder (or one person's workspace)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with a fit_check section."),
    set_: list[str] = typer.Option([], "--set", help="e.g. fit_check.min_mask_iou=0.7 (repeatable)."),
) -> None:
    """List the persons whose fit (fit/metrics.json) breaks the fit_check thresholds, with their overlay."""
    from tasks.config import resolve_config
    from tasks.discover import find_workspaces
    from tasks.fit_check import fit_problems

    check = resolve_config(None, config, set_).fit_check  # one set of thresholds for the whole folder
    poor = 0
    for ws in find_workspaces(runs):
        path = ws.fit_dir / "metrics.json"
        if not path.is_file():
            continue
        try:
            frames = json.loads(path.read_text()).get("frames", {})
        except (json.JSONDecodeError, OSError) as exc:
            out_console.print(esc(f"{ws.person}\t{path}: unreadable ({exc})"))
            continue
        for frame, m in frames.items():
            problems = fit_problems(m, check)
            if problems:
                poor += 1
                out_console.print(esc(f"{ws.person}\t{frame}\t{'; '.join(problems)}\t"
                                      f"{ws.fit_dir / f'{frame}_overlay.png'}"), soft_wrap=True)
    console.print(f"{poor} poor fit(s) (reprojection error > {check.max_reprojection_error_rel:.0%} of the body "
                  f"height, mask IoU < {check.min_mask_iou:.2f}, interpenetration > {check.max_penetration_mm:.0f} mm "
                  f"or a joint {check.max_limit_violation_deg:.0f} deg beyond its limit)")


@command()
def infer(
    ckpt_path: Optional[Path] = typer.Option(None, "--ckpt_path", "--ckpt-path", help="DINAR's ddpm-epoch=24.ckpt "
                                             "(see DINAR's README for the link); = --set avatar.checkpoint=."),
    log_dir: Path = typer.Option(Path("logs"), "--log_dir", "--log-dir", help="Output root, as DINAR's."),
    data_root: Path = typer.Option(..., "--data_root", "--data-root",
                                   help="A prepared dataset: rgb/, segm/, smplx/ (a workspace is one)."),
    finetune_back: bool = typer.Option(False, "--finetune_back", "--finetune-back",
                                       help="= --set neural.finetune.back=true."),
    animation: Optional[Path] = typer.Option(None, help="DINAR's animation pickle (default: a turntable)."),
    steps: Optional[int] = typer.Option(None, help="DDIM steps (DINAR: 200); = --set neural.ddim_steps=."),
    seed: Optional[int] = typer.Option(None, help="= --set neural.seed=."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda; = --set neural.device=."),
    smplx_models: Optional[Path] = typer.Option(None, "--smplx-models", help="= --set body.smplx_models=."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A pipeline YAML; its `neural:` section "
                                          "sizes the networks (configs/neural.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override one value, e.g. neural.ddim_steps=50 (repeatable)."),
    uv_assets: Optional[Path] = typer.Option(None, "--uv-assets", help="DINAR's smplx_data/ folder; = --set "
                                             "body.uv_assets=."),
    no_finetune: bool = typer.Option(False, "--no-finetune", help="Skip the per-avatar finetuning; = --set "
                                     "neural.finetune.enabled=false."),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="Local LPIPS-VGG weights; = --set "
                                                 "neural.finetune.lpips_weights=."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="= --set neural.video.max_frames=."),
) -> None:
    """Behave like DINAR's inference.py on a prepared dataset: textures, finetuning, videos in DINAR's layout.

    Config: the defaults, then --config, then --set, then the DINAR flags (each a --set shortcut)."""
    import tasks.neural_inference as infer_mod
    from tasks.config import resolve_config

    shortcuts = infer_flag_overrides(ckpt_path=ckpt_path, steps=steps, seed=seed, device=device,
                                     smplx_models=smplx_models, uv_assets=uv_assets, no_finetune=no_finetune,
                                     lpips_weights=lpips_weights, max_frames=max_frames, finetune_back=finetune_back)
    cfg = resolve_config(None, config, [*set_, *shortcuts])
    options = infer_mod.InferOptions.from_config(cfg, animation=animation)
    result = infer_mod.infer(cfg.avatar.checkpoint, log_dir, data_root, options)
    console.print(f"{len(result.persons)} persons in {sum(result.seconds.values()):.1f} s")
    console.print(f"results: [bold]{esc(str(result.run_dir))}[/bold]")
    for video in result.videos:
        console.print(f"  video: {esc(str(video))}")
