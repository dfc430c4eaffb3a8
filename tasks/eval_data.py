"""A multi-view person as the evaluation reads it: its views, cameras and (synthetic data) ground truth.

The layout is ``dinar_core.cameras.multiview``'s (``views/<camera>.png``, ``cameras.json``, optional ``gt/``);
this module adds what the protocol needs on top: the ground-truth files and body of a synthetic person.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dinar_core.body import AnnyParams
from dinar_core.body.anny_model import PHENOTYPES
from dinar_core.cameras.multiview import (CAMERAS_FILE, DATASET_FILE, GT_DIR, CameraSet, list_persons, read_cameras,
                                          read_dataset, view_paths)
from dinar_core.errors import EvalDataError, MissingCameraError


@dataclass
class GroundTruthBody:
    """vertices_world: (V, 3) float32 metres; joints_world: (25, 3) float32 BODY_25 keypoints in metres (OpenPose
    order); height_m: standing height; params: the body's AnnyParams (batch 1)."""

    vertices_world: torch.Tensor
    joints_world: torch.Tensor
    height_m: float | None
    params: object = None


@dataclass
class EvalPerson:
    """One person at one instant: views (camera -> PNG path), their calibrated cameras, and its ground truth."""

    name: str
    root: Path
    cameras: dict
    views: dict[str, Path]
    up: tuple[float, float, float] | None

    def view_path(self, camera: str) -> Path:
        return self.views[camera]

    @property
    def gt_dir(self) -> Path:
        return self.root / GT_DIR

    def has_gt(self) -> bool:
        return self.gt_dir.is_dir()

    def gt_path(self, name: str) -> Path:
        path = self.gt_dir / name
        if not path.is_file():
            raise EvalDataError(f"{self.name}: ground-truth file {path} is missing",
                                fix="re-create the synthetic person with `dinar synth`")
        return path

    def gt_meta(self) -> dict:
        path = self.gt_dir / "meta.json"
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}

    def gt_mask_path(self, camera: str) -> Path | None:
        path = self.gt_dir / "masks" / f"{camera}.png"
        return path if path.is_file() else None

    def gt_body(self, body) -> GroundTruthBody | None:
        """The ground-truth body in world coordinates (``gt/body.json``: Anny parameters whose forward gives the
        world-frame body; ``gt/joints.npy``: its BODY_25 keypoints), built with the evaluation's body model `body`
        (a LoadedBody); None when the person has no ground-truth body of that model."""
        path = self.gt_dir / "body.json"
        if not path.is_file() or body.kind != "anny":
            return None
        spec = json.loads(path.read_text("utf-8"))
        if spec.get("model") != "anny":
            return None
        device = body.model.device
        pheno = spec["phenotype"]
        if isinstance(pheno, dict):
            pheno = [pheno[name] for name in PHENOTYPES]
        t = lambda v: torch.as_tensor(np.asarray(v, np.float32), device=device)[None]  # noqa: E731
        params = AnnyParams(phenotype=t(pheno), pose=t(spec["pose"]), global_orient=t(spec["global_orient"]),
                            transl=t(spec["transl"]))
        with torch.no_grad():
            verts = body.model(params).vertices[0].float()
        joints = np.load(self.gt_path("joints.npy"), allow_pickle=False).astype(np.float32)
        return GroundTruthBody(verts, torch.from_numpy(joints), self.gt_meta().get("height_m"), params)

    def files(self) -> list[Path]:
        """Every file of the person's folder (their bytes key the cached result)."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())


def read_person(root: Path) -> EvalPerson:
    """The person folder `root`; named errors for a calibration without a view or a view without a camera."""
    root = Path(root)
    cams: CameraSet = read_cameras(root / CAMERAS_FILE)
    views = view_paths(root)
    missing = [c for c in views if c not in cams.cameras]
    if missing:
        raise MissingCameraError(f"{root / CAMERAS_FILE} has no camera for the view(s) {', '.join(missing)}",
                                 fix="re-import the person so every view has its calibration")
    unseen = [c for c in cams.cameras if c not in views]
    if unseen:
        raise MissingCameraError(f"{root.name}: camera(s) {', '.join(unseen)} of {CAMERAS_FILE} have no view in "
                                 f"{root / 'views'}", fix="re-import the person, or remove those cameras")
    if len(views) < 2:
        raise EvalDataError(f"{root.name} has {len(views)} view(s); the protocol needs a source and another view",
                            fix="import at least two cameras of this person")
    return EvalPerson(root.name, root, dict(cams.cameras), views, cams.up)


def read_people(data: Path) -> tuple[list[EvalPerson], list[tuple[str, str]]]:
    """Every person of dataset `data`, and (person, error) for those that cannot be read (the others go on). A
    synthetic dataset (``dataset.json`` kind ``synth``) promises ground truth: a person of it without ``gt/`` is an
    EvalDataError (its body and texture errors could not be measured), not silently a real-data person."""
    kind = read_dataset(data).kind if (Path(data) / DATASET_FILE).is_file() else ""
    people, errors = [], []
    for root in list_persons(data):
        try:
            person = read_person(root)
            if kind == "synth" and not person.has_gt():
                raise EvalDataError(f"{root.name}: the synthetic dataset's person has no ground truth ({root / GT_DIR})",
                                    fix="re-create it with `dinar synth`, or remove it from dataset.json")
            people.append(person)
        except Exception as exc:  # noqa: BLE001 - recorded per person, the others are evaluated
            errors.append((root.name, f"{type(exc).__name__}: {exc}"))
    return people, errors
