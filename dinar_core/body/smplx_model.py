"""SMPL-X behind the body-model interface, built exactly as DINAR builds it.

DINAR (``utils/smplx_flame.py`` + ``dataloaders/from_folder.py``) makes one SMPL-X model per gender from
``SMPLX_{NEUTRAL,MALE,FEMALE}.pkl`` with ``use_pca=True, num_pca_comps=6, flat_hand_mean=False, num_betas=10,
num_expression_coeffs=10, use_face_contour=True``, overwrites the eye poses with two constants, and multiplies
vertices and joints by an optional ``body_scale`` before adding ``transl``. :class:`SMPLXBody` does the same through
the ``smplx`` package, statelessly: every parameter comes in :class:`SMPLXParams`.

The model files are licensed (https://smpl-x.is.tue.mpg.de) and never shipped; the folder holding them comes from
an explicit argument or the ``DINAR_SMPLX_MODELS`` environment variable (:func:`resolve_smplx_models_dir`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
import torch

from dinar_core.body.base import BodyOutput, Keypoints3D, UVLayout, apply_keypoint_matrix, check_batch
from dinar_core.body.joint_maps import SMPLX_JOINT_NAMES, smplx_keypoint_matrix
from dinar_core.errors import MissingModelError, ModelFileLimitError, UnsafeModelFileError, WrongModelFileError
from dinar_core.safeload import CHUMPY_CONVERT, GB, FileKind, load_npz, load_pickle

Gender = Literal["neutral", "male", "female"]
ENV_VAR = "DINAR_SMPLX_MODELS"
DOWNLOAD_URL = "https://smpl-x.is.tue.mpg.de"

DINAR_SMPLX_KWARGS: dict = dict(
    use_pca=True, num_pca_comps=6, flat_hand_mean=False, num_betas=10, num_expression_coeffs=10,
    use_face_contour=True,
)
"""The keyword arguments DINAR builds SMPL-X with (the rest are smplx's defaults)."""

DINAR_REYE_POSE = (-0.39876276, -0.0913531, -0.07875713)
DINAR_LEYE_POSE = (-0.23671481, -0.14406434, 0.10868622)
"""Eye poses (axis-angle) DINAR writes over whatever a pickle holds."""

NUM_VERTS = 10475
NUM_JOINTS = 55
F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class SMPLXParams:
    """SMPL-X parameters for a batch of B bodies (float32, all on one device).

    betas: (B, 10) shape; expression: (B, 10); global_orient: (B, 3) axis-angle of the root;
    body_pose: (B, 63) axis-angle of the 21 body joints; jaw_pose: (B, 3);
    left_hand_pose / right_hand_pose: (B, 6) hand PCA coefficients (added to the model's mean hand pose);
    transl: (B, 3) translation (DINAR: camera-frame position); body_scale: None, (B, 1) or (B, 3), multiplies
    vertices and joints before ``transl`` is added (DINAR's extension).
    """

    betas: torch.Tensor
    expression: torch.Tensor
    global_orient: torch.Tensor
    body_pose: torch.Tensor
    jaw_pose: torch.Tensor
    left_hand_pose: torch.Tensor
    right_hand_pose: torch.Tensor
    transl: torch.Tensor
    body_scale: torch.Tensor | None = None

    WIDTHS = {"betas": 10, "expression": 10, "global_orient": 3, "body_pose": 63, "jaw_pose": 3,
              "left_hand_pose": 6, "right_hand_pose": 6, "transl": 3}

    @property
    def batch_size(self) -> int:
        return int(self.betas.shape[0])

    @classmethod
    def zeros(cls, batch_size: int = 1, device: torch.device | str = "cpu") -> "SMPLXParams":
        """The mean body in the rest pose (hands at the model's mean pose) at the origin."""
        return cls(**{name: torch.zeros(batch_size, width, device=device) for name, width in cls.WIDTHS.items()})

    def validate(self) -> None:
        """Raise ValueError naming the field whose shape or dtype is wrong."""
        batch = self.batch_size
        for name, width in self.WIDTHS.items():
            check_batch(name, getattr(self, name), batch, width)
        if self.body_scale is not None:
            s = self.body_scale
            if s.ndim != 2 or s.shape[0] != batch or s.shape[1] not in (1, 3):
                raise ValueError(f"body_scale must be ({batch}, 1) or ({batch}, 3), got {tuple(s.shape)}")

    def to(self, device: torch.device | str) -> "SMPLXParams":
        return SMPLXParams(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                              for f in fields(self)})


def resolve_smplx_models_dir(explicit: str | os.PathLike | None = None,
                             environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding the SMPL-X files: ``explicit`` if given, else ``$DINAR_SMPLX_MODELS``.

    Raises MissingModelError (naming the files and where to get them) when neither is set.
    """
    environ = os.environ if environ is None else environ
    chosen = explicit if explicit not in (None, "") else environ.get(ENV_VAR) or None
    if chosen is None:
        raise MissingModelError(
            "No SMPL-X model folder configured (SMPLX_NEUTRAL.pkl / .npz, SMPLX_MALE, SMPLX_FEMALE)",
            fix=f"download the SMPL-X models from {DOWNLOAD_URL} (free registration, accept the licence) and pass "
                f"--smplx-models DIR, set body.smplx_models in the config, or set {ENV_VAR}=DIR; "
                "or use --body anny",
        )
    return Path(chosen).expanduser()


def find_smplx_model_file(folder: str | os.PathLike, gender: Gender = "neutral") -> Path:
    """``folder/SMPLX_<GENDER>.pkl`` or ``.npz`` (also looked for in ``folder/smplx/``, smplx's own layout).

    A ``.pkl`` is preferred (DINAR reads the pickles). Raises MissingModelError naming the expected files.
    """
    if gender not in ("neutral", "male", "female"):
        raise ValueError(f"gender must be 'neutral', 'male' or 'female', got {gender!r}")
    folder = Path(folder).expanduser()
    stem = f"SMPLX_{gender.upper()}"
    if folder.is_file() and folder.name.startswith("SMPLX_"):
        return folder
    for base in (folder, folder / "smplx"):
        for ext in ("pkl", "npz"):
            candidate = base / f"{stem}.{ext}"
            if candidate.is_file():
                return candidate
    what = "does not exist" if not folder.exists() else "has no " + f"{stem}.pkl or {stem}.npz"
    raise MissingModelError(
        f"SMPL-X model folder {folder} {what} (expected {stem}.pkl or {stem}.npz, as SMPLX_NEUTRAL/MALE/FEMALE)",
        fix=f"download the SMPL-X models from {DOWNLOAD_URL} (free registration, accept the licence), unpack "
            f"{stem}.pkl/.npz into {folder} (or point --smplx-models / {ENV_VAR} at the folder that holds them)",
    )


_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
             "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr", "lmk_faces_idx",
             "lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")


MODEL_FILE = FileKind(
    label="SMPL-X model file", format="pickle",
    fix=f"download the SMPL-X model files (SMPLX_NEUTRAL.pkl/.npz ...) again from {DOWNLOAD_URL}",
    error=WrongModelFileError, unsafe=UnsafeModelFileError, too_large=ModelFileLimitError,
    max_file_bytes=1 * GB, max_array_bytes=1 * GB, max_ops=200_000, max_items=200_000, max_depth=8, sparse=True,
    unsafe_fix="use the SMPL-X .npz files or the v1.1 .pkl files from the SMPL-X site; " + CHUMPY_CONVERT)
"""SMPL-X model files: numpy arrays and scipy sparse matrices only (the real files are ~100-300 MB; their arrays
~250 MB as float64)."""


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays smplx reads (``_REQUIRED``) and any other plain entries of the file, all numpy arrays (sparse
    matrices densified), loaded without running code from the file."""
    if path.suffix == ".npz":
        return load_npz(path, replace(MODEL_FILE, format="NumPy .npz archive of SMPL-X arrays",
                                      unreadable_as="is not a NumPy .npz archive"), keys=_REQUIRED)
    data = load_pickle(path, MODEL_FILE)
    if not isinstance(data, dict):
        raise WrongModelFileError(f"{path} holds a {type(data).__name__}, not a dict of SMPL-X arrays",
                                  fix=f"use SMPLX_NEUTRAL.pkl etc. from {DOWNLOAD_URL}")
    return {str(k): v for k, v in data.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biuf"}


def check_smplx_model_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The SMPL-X arrays of ``path`` (10,475 vertices, 55 joints, hands, face), checked; else WrongModelFileError.

    SMPL (6,890 vertices, no hands) and SMPL-H (6,890 vertices with hand PCA) files are named as such; a file
    that would run code or needs chumpy gets UnsafeModelFileError (with the conversion command), one over a size
    limit ModelFileLimitError. Returns the required arrays (float arrays finite, index arrays in range).
    """
    path = Path(path)
    return check_smplx_arrays(_load_arrays(path), path)


def check_smplx_arrays(data: Mapping[str, np.ndarray], path: str | os.PathLike) -> dict[str, np.ndarray]:
    """:func:`check_smplx_model_file`'s checks on arrays already loaded from ``path`` (named in the errors)."""
    keys = set(data.keys())
    v_template = np.asarray(data["v_template"]) if "v_template" in keys else None
    if v_template is not None and v_template.shape == (6890, 3):
        kind = "SMPL-H" if "hands_componentsl" in keys else "SMPL"
        raise WrongModelFileError(
            f"{path} is an {kind} model (6,890 vertices), not SMPL-X (10,475 vertices)",
            fix=f"download SMPL-X (not {kind}) from {DOWNLOAD_URL}: SMPLX_NEUTRAL.pkl/.npz etc.")
    missing = [k for k in _REQUIRED if k not in keys]
    if missing:
        raise WrongModelFileError(f"{path} lacks the SMPL-X arrays {missing}",
                                  fix=f"use the SMPL-X model files from {DOWNLOAD_URL}")
    expected = {"v_template": (NUM_VERTS, 3), "J_regressor": (NUM_JOINTS, NUM_VERTS),
                "weights": (NUM_VERTS, NUM_JOINTS), "kintree_table": (2, NUM_JOINTS),
                "hands_componentsl": (45, 45), "hands_componentsr": (45, 45)}
    for key, shape in expected.items():
        actual = tuple(np.shape(data[key])) if key != "J_regressor" else tuple(data[key].shape)
        if actual != shape:
            raise WrongModelFileError(f"{path}: {key} has shape {actual}, SMPL-X's is {shape}",
                                      fix=f"use the SMPL-X model files from {DOWNLOAD_URL}")
    shapedirs = np.shape(data["shapedirs"])
    if len(shapedirs) != 3 or shapedirs[:2] != (NUM_VERTS, 3) or shapedirs[2] < 20:
        raise WrongModelFileError(f"{path}: shapedirs has shape {shapedirs}, expected ({NUM_VERTS}, 3, >=20)",
                                  fix=f"use the SMPL-X model files from {DOWNLOAD_URL}")
    if np.shape(data["posedirs"])[-1:] != (486,):
        raise WrongModelFileError(f"{path}: posedirs has shape {np.shape(data['posedirs'])}, expected (..., 486)",
                                  fix=f"use the SMPL-X model files from {DOWNLOAD_URL}")
    return _check_values(path, {k: data[k] for k in _REQUIRED})


def _check_values(path: Path, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The remaining shapes, finite floats and in-range indices (faces < vertices, landmark faces < faces, each
    joint's parent before it), so smplx never sees values it would fail on."""
    def bad(what: str) -> WrongModelFileError:
        return WrongModelFileError(f"{path}: {what}", fix=f"use the SMPL-X model files from {DOWNLOAD_URL}")

    for key, value in data.items():
        if value.dtype.kind not in "biuf":
            raise bad(f"{key} has dtype {value.dtype}, not numbers")
        # min/max need no temporary copy of the array; NaN fails both comparisons, +-inf and beyond-float32 one
        if value.dtype.kind == "f" and value.size and not (-F32_MAX <= value.min() and value.max() <= F32_MAX):
            raise bad(f"{key} contains NaN, infinite or beyond-float32 values (smplx computes in float32)")
    f, lmk, dyn = data["f"], data["lmk_faces_idx"], data["dynamic_lmk_faces_idx"]
    shapes_ok = (f.ndim == 2 and f.shape[1] == 3 and len(f) > 0 and lmk.ndim == 1
                 and data["lmk_bary_coords"].shape == (len(lmk), 3) and dyn.ndim == 2 and dyn.shape[1] == 17
                 and data["dynamic_lmk_bary_coords"].shape == (*dyn.shape, 3)
                 and data["hands_meanl"].shape == (45,) and data["hands_meanr"].shape == (45,)
                 and data["posedirs"].size == NUM_VERTS * 3 * 486)
    if not shapes_ok:
        found = {k: data[k].shape for k in ("f", "lmk_faces_idx", "lmk_bary_coords", "dynamic_lmk_faces_idx",
                                            "dynamic_lmk_bary_coords", "hands_meanl", "hands_meanr", "posedirs")}
        raise bad(f"arrays of the wrong shapes {found} (SMPL-X: f (F, 3), lmk (L,) + (L, 3), dynamic lmk "
                  f"(N, 17) + (N, 17, 3), hand means (45,), posedirs {NUM_VERTS} x 3 x 486)")
    for key, bound in (("f", NUM_VERTS), ("lmk_faces_idx", len(f)), ("dynamic_lmk_faces_idx", len(f))):
        if data[key].size and (data[key].min() < 0 or data[key].max() >= bound or data[key].dtype.kind == "f"
                               and not np.array_equal(data[key], np.round(data[key]))):
            raise bad(f"{key} holds indices outside [0, {bound}) or fractions")
    parents = data["kintree_table"][0, 1:]
    if np.any(parents < 0) or np.any(parents >= np.arange(1, NUM_JOINTS)):
        raise bad("kintree_table has a joint whose parent does not come before it")
    return data


def _float32_npz(folder: Path, gender: str, data: dict[str, np.ndarray]) -> Path:
    """Write the checked arrays as the plain ``.npz`` smplx reads (floats as float32, as smplx converts them)."""
    out = folder / f"SMPLX_{gender.upper()}.npz"
    np.savez(out, **{k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in data.items()})
    return out


def load_uv_layout(assets_dir: str | os.PathLike, num_verts: int = NUM_VERTS,
                   device: torch.device | str = "cpu") -> UVLayout:
    """DINAR's SMPL-X UV layout from ``smplx_data/``: uv.npy (U, 2), uv_faces.npy (F, 3), v_inds.npy (U,)."""
    assets_dir = Path(assets_dir)
    names = ("uv.npy", "uv_faces.npy", "v_inds.npy")
    missing = [n for n in names if not (assets_dir / n).is_file()]
    if missing:
        raise MissingModelError(f"DINAR's SMPL-X UV assets {missing} not found in {assets_dir}",
                                fix="point the config at DINAR's smplx_data/ folder (github SamsungLabs/DINAR)")
    uv, uv_faces, v_inds = (np.load(assets_dir / n) for n in names)
    if uv_faces.max() >= len(uv) or v_inds.max() >= num_verts or len(v_inds) != len(uv):
        raise WrongModelFileError(
            f"UV assets in {assets_dir} do not fit a {num_verts}-vertex mesh (uv {uv.shape}, uv_faces max "
            f"{uv_faces.max()}, v_inds {v_inds.shape} max {v_inds.max()})", fix="use DINAR's smplx_data/ files")
    return UVLayout(torch.from_numpy(uv.astype(np.float32)).to(device),
                    torch.from_numpy(uv_faces.astype(np.int64)).to(device),
                    torch.from_numpy(v_inds.astype(np.int64)).to(device))


class SMPLXBody(torch.nn.Module):
    """SMPL-X (smplx package) with DINAR's settings, stateless: ``forward(SMPLXParams) -> BodyOutput``.

    Attributes: faces (20908, 3) int64; skinning_weights (10475, 55); parents (55,) int64; rest_joints (55, 3);
    rest_vertices (10475, 3); uv_layout (DINAR's, when ``uv_assets`` is given; on the construction device) or
    None; joint_names (55);
    model_file: the file it was built from; gender.
    """

    def __init__(self, model_path: str | os.PathLike, gender: Gender = "neutral",
                 device: torch.device | str = "cpu", uv_assets: str | os.PathLike | None = None):
        """model_path: the folder with SMPLX_<GENDER>.pkl/.npz (or the file itself)."""
        super().__init__()
        import smplx

        self.gender = gender
        self.model_file = find_smplx_model_file(model_path, gender)
        arrays = check_smplx_model_file(self.model_file)
        # smplx's own reader is not safe for untrusted files: it only ever sees the checked arrays, in a plain .npz
        # this process wrote
        with tempfile.TemporaryDirectory(prefix="dinar-smplx-") as tmp:
            checked = _float32_npz(Path(tmp), gender, arrays)
            del arrays
            self.smplx = smplx.create(str(checked), model_type="smplx", gender=gender, ext="npz",
                                      **DINAR_SMPLX_KWARGS)
        self.smplx.requires_grad_(False)  # its own parameter tensors are never used: all inputs are passed in
        self.joint_names = SMPLX_JOINT_NAMES
        self.register_buffer("faces", self.smplx.faces_tensor.clone().long())
        self.register_buffer("skinning_weights", self.smplx.lbs_weights.clone())
        self.register_buffer("parents", self.smplx.parents.clone().long())
        self.register_buffer("rest_vertices", self.smplx.v_template.clone())
        self.register_buffer("rest_joints", self.smplx.J_regressor @ self.smplx.v_template)
        self.register_buffer("keypoint_matrix", smplx_keypoint_matrix(use_face_contour=True))
        self.register_buffer("reye_pose", torch.tensor([DINAR_REYE_POSE], dtype=torch.float32))
        self.register_buffer("leye_pose", torch.tensor([DINAR_LEYE_POSE], dtype=torch.float32))
        self.uv_layout = load_uv_layout(uv_assets, device=device) if uv_assets is not None else None
        self.to(device)

    @property
    def device(self) -> torch.device:
        return self.faces.device

    def forward(self, params: SMPLXParams) -> BodyOutput:
        """vertices (B, 10475, 3), joints (B, 55, 3), source_points (B, 144, 3) = smplx's joints, all scaled by
        ``body_scale`` and translated by ``transl``."""
        params.validate()
        b = params.batch_size
        out = self.smplx(
            betas=params.betas, expression=params.expression, global_orient=params.global_orient,
            body_pose=params.body_pose, jaw_pose=params.jaw_pose, left_hand_pose=params.left_hand_pose,
            right_hand_pose=params.right_hand_pose, leye_pose=self.leye_pose.expand(b, 3),
            reye_pose=self.reye_pose.expand(b, 3), transl=torch.zeros_like(params.transl), return_shaped=False,
        )
        vertices, points = out.vertices, out.joints  # (B, V, 3), (B, 144, 3)
        if params.body_scale is not None:
            vertices = vertices * params.body_scale[:, None]
            points = points * params.body_scale[:, None]
        vertices = vertices + params.transl[:, None]  # (B, V, 3)
        points = points + params.transl[:, None]  # (B, 144, 3)
        return BodyOutput(vertices=vertices, joints=points[:, :NUM_JOINTS], source_points=points)

    def keypoints(self, output: BodyOutput) -> Keypoints3D:
        """OpenPose BODY_25 + hands + 70-point face (all 137 available)."""
        points = apply_keypoint_matrix(self.keypoint_matrix, output.source_points)
        return Keypoints3D(points, self.keypoint_matrix.abs().sum(1) > 0)
