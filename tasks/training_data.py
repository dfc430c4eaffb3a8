"""Training data from the pipeline's multi-view datasets: the prepared views `dinar train first_stage` learns from.

Today's source is a dataset with a known body per person: `dinar synth` (``gt/body.json``, ``gt/masks/``), every
view cropped around the body as DINAR's dataloader crops (`prepare_sample`), the body's UV-split mesh projected
through that view's calibrated camera. A person without a ground-truth body (an imported real capture) is a named
error for now: fitting one body to all its views is the evaluation's job and not yet shared with training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dinar_core.avatar.dataset import prepare_sample
from dinar_core.avatar.neural import project_vertices
from dinar_core.errors import TrainingDataError
from dinar_core.evaluation.protocol import transform_points
from tasks.artifacts import read_mask, read_rgb
from tasks.bodies import load_body, load_layout
from tasks.config import PipelineConfig
from tasks.eval_data import read_people


def dataset_views(data: Path, cfg: PipelineConfig):
    """The prepared views (`dinar_core.training.first_stage.ViewSet`) of every person of the dataset `data`.
    Raises TrainingDataError naming the dataset or person and the fix."""
    from dinar_core.training.first_stage import prepare_views

    people, errors = read_people(Path(data))
    if errors:
        person, error = errors[0]
        raise TrainingDataError(f"{data}: person {person} cannot be read ({error})",
                                fix="repair or remove that person; the training set must be whole")
    if not people:
        raise TrainingDataError(f"{data} holds no person", fix="give a dataset made by `dinar synth`")
    body = load_body(cfg.body)
    layout = load_layout(body, cfg)
    persons = {}
    for person in people:
        gt = person.gt_body(body) if person.has_gt() else None
        if gt is None:
            raise TrainingDataError(
                f"{person.root}: no ground-truth {body.kind} body (gt/body.json); the first stage needs each view's "
                f"body", fix="train on a `dinar synth` dataset (Anny bodies), or set body.model to the body it holds")
        samples = []
        for camera, path in sorted(person.views.items()):
            mask_path = person.gt_mask_path(camera)
            if mask_path is None:
                raise TrainingDataError(f"{person.name}: no person mask for view {camera} ({person.gt_dir}/masks)",
                                        fix="re-create the person with `dinar synth`")
            cam = person.cameras[camera]
            K = torch.as_tensor(np.asarray(cam.K), dtype=torch.float32)
            verts_cam = transform_points(gt.vertices_world, cam.R, cam.t)[None].float()
            verts_pix = project_vertices(verts_cam, K, layout.vertex_index.to(verts_cam.device))[0]
            mask = (read_mask(mask_path) * 255).astype(np.uint8)
            samples.append(prepare_sample(f"{person.name}_{camera}", read_rgb(path), mask,
                                          verts_pix.double().cpu().numpy(), K.double().numpy(),
                                          cfg.neural.image_size, cfg.neural.crop_scale))
        persons[person.name] = samples
    return prepare_views(persons, layout, body.kind, cfg.neural)
