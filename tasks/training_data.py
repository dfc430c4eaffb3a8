"""Training data from what the pipeline prepares: the prepared views `dinar train first_stage` learns from.

Three sources, each view cropped around its body as DINAR's dataloader crops (`prepare_sample`), the body's
UV-split mesh projected through that view's camera:

- **a runs folder of person workspaces** (what `dinar run` makes from sub-folders of photos of the same person):
  every frame with its own fit (`load_fit`: the shared shape, its own pose and camera) and its mask;
- **DINAR-layout folders** (``rgb/``, ``segm/``, ``smplx/<frame>.pkl``, no manifest: a dataset prepared for DINAR),
  the folder itself or each of its sub-folders one person of several frames, in DINAR's camera (5000 px, principal
  point at the centre) unless a ``smplx/<frame>_camera.json`` says otherwise;
- **a multi-view dataset with a known body** (`dinar synth`: ``gt/body.json``, ``gt/masks/``): the ground-truth body
  through each calibrated camera;
- **a multi-view dataset without one** (an imported real capture, e.g. Pose2Sim's): each person's views fitted as
  one person by the pipeline (``flows/training_data.py`` runs it into a runs folder, `prepared`), then read as
  above. The calibrations are not used: each view's own fit lies on its photo, where one body placed by the
  calibrations would be off by the fit's size error (``docs/evaluation.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dinar_core.avatar.dataset import DinarSample, prepare_sample
from dinar_core.avatar.neural import project_vertices
from dinar_core.errors import DinarError, TrainingDataError
from dinar_core.evaluation.protocol import transform_points
from tasks.artifacts import fit_sample, load_fit, read_mask, read_rgb
from tasks.bodies import load_body, load_layout
from tasks.config import PipelineConfig
from tasks.discover import find_workspaces
from tasks.eval_data import EvalPerson, read_people
from tasks.workspace import DONE, Workspace


def needs_fitting(data: Path) -> list[EvalPerson]:
    """The persons of the multi-view dataset `data` that hold no ground-truth body (the pipeline must fit them
    first); [] for a runs folder or a dataset of synthetic persons."""
    if find_workspaces(Path(data)) or dinar_layout_folders(Path(data)):
        return []
    people, _ = read_people(Path(data))
    return [p for p in people if not p.has_gt()]


def dinar_layout_folders(data: Path) -> list[Workspace]:
    """`data`, or else its sub-folders, that hold DINAR's dataset layout (``rgb/`` and ``smplx/``) without a
    pipeline manifest, sorted by name."""
    def is_dinar(p: Path) -> bool:
        return (p / "rgb").is_dir() and (p / "smplx").is_dir() and not Workspace(p).manifest_path.exists()

    if is_dinar(data):
        return [Workspace(data)]
    if not data.is_dir():
        return []
    return [Workspace(p) for p in sorted(data.iterdir()) if p.is_dir() and not p.is_symlink() and is_dinar(p)]


def workspace_samples(ws: Workspace, body, layout, cfg: PipelineConfig) -> list[DinarSample]:
    """Every frame of the fitted workspace (or DINAR-layout folder) `ws` as a prepared view (its own fit and mask).
    TrainingDataError when the fit stage is not done or a frame's files are missing."""
    record = ws.stage_record("fit") if ws.manifest_path.is_file() else {"status": DONE}  # DINAR layout: as given
    if record.get("status") != DONE:
        why = (record.get("error") or {}).get("message") or record.get("status") or "not run"
        raise TrainingDataError(f"{ws.root}: the fit is not done ({why})",
                                fix=f"run the pipeline up to the fit: `dinar run PHOTOS --out {ws.root.parent} "
                                    f"--until fit` (or `dinar rerun` it), or leave this person out")
    try:
        fits = load_fit(ws, body)
        return [fit_sample(ws, fit, layout, cfg.neural, f"{ws.person}_{fit.frame}") for fit in fits]
    except (DinarError, OSError, ValueError) as exc:
        raise TrainingDataError(f"{ws.root}: a frame cannot be read ({type(exc).__name__}: {exc})",
                                fix="rerun the person's fit (`dinar rerun`), or leave this person out") from exc


def _gt_samples(person: EvalPerson, gt, layout, neural) -> list[DinarSample]:
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
                                      verts_pix.double().cpu().numpy(), K.double().numpy(), neural.image_size,
                                      neural.crop_scale))
    return samples


def dataset_views(data: Path, cfg: PipelineConfig, prepared: Path | None = None):
    """The prepared views (`dinar_core.training.first_stage.ViewSet`) of every person of `data`: a runs folder of
    person workspaces, DINAR-layout folders, or a multi-view dataset (persons without a ground-truth body are read
    from their fitted workspaces in the runs folder `prepared`, see `needs_fitting`). Raises TrainingDataError
    naming the dataset or person and the fix."""
    from dinar_core.training.first_stage import prepare_views
    from dinar_core.training.textures import layout_of

    data = Path(data)
    body = load_body(cfg.body)
    layout = load_layout(body, cfg)
    persons: dict[str, list[DinarSample]] = {}
    workspaces = find_workspaces(data) + dinar_layout_folders(data)
    if workspaces:
        for ws in workspaces:
            persons[ws.person] = workspace_samples(ws, body, layout, cfg)
        return prepare_views(persons, layout, layout_of(body.kind), cfg.neural)
    people, errors = read_people(data)
    if errors:
        person, error = errors[0]
        raise TrainingDataError(f"{data}: person {person} cannot be read ({error})",
                                fix="repair or remove that person; the training set must be whole")
    if not people:
        raise TrainingDataError(f"{data} holds no person and no person workspace",
                                fix="give a runs folder of `dinar run` (sub-folders of photos of one person each), "
                                    "a `dinar synth` dataset or an imported multi-view dataset")
    for person in people:
        gt = person.gt_body(body) if person.has_gt() else None
        if gt is not None:
            persons[person.name] = _gt_samples(person, gt, layout, cfg.neural)
            continue
        ws = Workspace(Path(prepared) / person.name) if prepared is not None else None
        if ws is None or not ws.manifest_path.is_file():
            raise TrainingDataError(
                f"{person.root}: no ground-truth {body.kind} body (gt/body.json) and no fitted workspace"
                + (f" in {prepared}" if prepared is not None else ""),
                fix="`dinar train first_stage` fits such persons itself (into OUT/prepared); or fit them with "
                    "`dinar run` and give that runs folder as --data")
        persons[person.name] = workspace_samples(ws, body, layout, cfg)
    return prepare_views(persons, layout, layout_of(body.kind), cfg.neural)
