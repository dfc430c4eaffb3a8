"""`dinar train PHASE`: train one of DINAR's phases (`dinar_core.training`). Registers on the app of
`flows.cli_common` (imported by `flows.cli`). Training consumes what the pipeline prepares: the first stage's data
is a runs folder of `dinar run` or a multi-view dataset, whose persons without a ground-truth body the pipeline's
flow fits first (``flows/training_data.py``, into OUT/prepared); Lightning then orchestrates the training's
processes and machines."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from flows.cli_common import command, console, esc, fail


@command("train")
def train_cmd(
    phase: str = typer.Argument(..., help="first_stage (encoder, generator, renderer), vq (the texture "
                                          "autoencoder) or diffusion (the inpainting UNet), in that order."),
    data: Path = typer.Option(..., "--data", "-d", help="first_stage: a runs folder of `dinar run` (persons of "
                                                        "several photos), a `dinar synth` dataset or an imported "
                                                        "multi-view dataset (fitted first, into OUT/prepared); vq, "
                                                        "diffusion: a texture set (first_stage writes one to "
                                                        "OUT/textures)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where <phase>.pt, checkpoints/ and logs/ go."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the defaults (then --set): "
                                          "the networks' sizes under neural, the run under train."),
    set_: list[str] = typer.Option([], "--set", help="Override one value: section.key=value, e.g. "
                                                     "train.max_steps=500 (repeatable)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from a checkpoint of OUT/checkpoints/ "
                                          "(last.ckpt is the newest)."),
) -> None:
    """Train one phase; writes OUT/<phase>.pt (weights-only, its config inside) for the next phase or inference."""
    from dinar_core.training.config import PHASES
    from tasks.config import dump_yaml, resolve_config

    if phase not in PHASES:
        raise fail(f"unknown phase {esc(phase)}", f": use one of {', '.join(PHASES)}")
    cfg = resolve_config(None, config, set_)
    from tasks.threads import apply_threads

    apply_threads(cfg.runtime.threads, workers=1)
    from dinar_core.training.trainer import train_phase

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{phase}.config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    if phase == "first_stage":
        import torch

        from dinar_core.training.first_stage import texture_set
        from dinar_core.training.trainer import build_first_stage, fit_phase
        from tasks.training_data import dataset_views

        views = dataset_views(data, cfg, _prepare(data, out, cfg))
        module = build_first_stage(views, cfg.neural, cfg.train)
        result = fit_phase(module, out, cfg.neural, cfg.train, resume=resume)
        if module.trainer.is_global_zero:  # the trained weights as written (whatever process trained them)
            from dinar_core.training.weights import read_phase_weights

            weights = read_phase_weights(result.weights, "first_stage", views.layout)
            module.encoder.load_state_dict(weights.part("encoder"))
            module.generator.load_state_dict(weights.part("generator"))
            module.eval()
            with torch.no_grad():
                written = texture_set(module.encoder, module.generator, views, out / "textures",
                                      seed=cfg.train.seed)
            console.print(f"texture set of {len(written)} persons: {esc(str(out / 'textures'))} (--data of vq "
                          f"and diffusion)")
    else:
        result = train_phase(phase, data, out, cfg.neural, cfg.train, resume=resume)
    console.print(f"phase [bold]{phase}[/bold]: {result.steps} steps; weights {esc(str(result.weights))}; "
                  f"log {esc(str(result.metrics))}")


def _prepare(data: Path, out: Path, cfg) -> Path | None:
    """Fit the persons of `data` that hold no ground-truth body (the pipeline's flow, cached); their runs folder,
    or None when there are none."""
    from tasks.training_data import needs_fitting

    if not needs_fitting(data):
        return None
    from flows.settings import configure_prefect, flow_run_settings
    from tasks.config import to_dict

    configure_prefect(False)
    from flows.training_data import prepare_training_data

    prepared = out / "prepared"
    console.print(f"fitting the persons of {esc(str(data))} without a ground-truth body into {esc(str(prepared))}")
    with flow_run_settings():
        summary = prepare_training_data(data=str(data.resolve()), out=str(prepared.resolve()), config=to_dict(cfg))
    for person, message in summary["failed"]:
        console.print(f"[red]{esc(person)}[/red]: no fit ({esc(message)})")
    return prepared


@command("bundle")
def bundle_cmd(
    first_stage: Path = typer.Argument(..., help="first_stage.pt of `dinar train first_stage`."),
    diffusion: Path = typer.Argument(..., help="diffusion.pt of `dinar train diffusion` (same layout and sizes)."),
    out: Path = typer.Option(Path("model.pt"), "--out", "-o", help="The model file (avatar.checkpoint takes it)."),
    dinar: Optional[Path] = typer.Option(None, "--dinar", help="Also write DINAR's own checkpoint layout here "
                                         "(models trained on DINAR's SMPL-X layout; needs body.uv_assets)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML overriding the defaults (then --set)."),
    set_: list[str] = typer.Option([], "--set", help="Override one value: section.key=value (repeatable)."),
) -> None:
    """The trained phases as one model: `--set avatar.mode=neural --set avatar.checkpoint=model.pt` then makes
    neural avatars with it (for the body it was trained on)."""
    from dinar_core.training.bundle import bundle_weights

    path = bundle_weights(first_stage, diffusion, out)
    console.print(f"model: {esc(str(path))}")
    if dinar is not None:
        from dinar_core.avatar.config import NeuralAvatarConfig
        from dinar_core.texture.layout import load_smplx_uv_layout
        from dinar_core.training.bundle import build_model, export_dinar_checkpoint
        from dinar_core.training.weights import read_phase_weights
        from tasks.bodies import uv_assets_dir
        from tasks.config import resolve_config
        from tasks.config_overrides import override

        cfg = resolve_config(None, config, set_)
        weights = read_phase_weights(path, "model")
        layout = load_smplx_uv_layout(uv_assets_dir(cfg))
        model = build_model(weights, override(NeuralAvatarConfig(), weights.neural), layout.uv_faces, layout.uv)
        console.print(f"DINAR checkpoint: {esc(str(export_dinar_checkpoint(model, weights.layout, dinar)))}")
