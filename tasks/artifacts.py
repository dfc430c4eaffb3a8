"""Workspace artifact I/O: every file one stage writes and a later stage reads, in one module.

A stage module owns its stage; the files stages hand to each other (``rgb/``, ``segm/``, ``openpose/``,
``smplx/``, ``avatar/``) are read and written here, so no stage module imports another (a test keeps it so).

The fit's camera. DINAR's ``smplx/<frame>.pkl`` holds no camera: DINAR's convention is a pinhole with
fx = fy = 5000 px and the principal point at (W//2, H//2) of the photo (``dinar_core.render.camera.make_K``). The
fit can use another focal length (``fit.focal``), so it writes its camera beside the pickle as
``smplx/<frame>_camera.json`` (the pickle stays exactly DINAR's format) and every later stage reads it. A
workspace without that file (an older run, or a dataset prepared for DINAR) is in DINAR's camera by DINAR's
documented convention: `read_camera` then returns DINAR's K. Anny's ``smplx/<frame>_anny.npz`` carries its K.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dinar_core.body import AnnyParams
from dinar_core.body.base import UVLayout
from dinar_core.body.dinar_pickle import read_dinar_pickle, write_dinar_pickle
from dinar_core.errors import DatasetError
from dinar_core.keypoints import Keypoints2D, read_openpose_json
from dinar_core.render.camera import DINAR_FOCAL, make_K
from tasks.bodies import LoadedBody, body_kind, layout_inputs, load_body, load_layout, smplx_model_file
from tasks.config import PipelineConfig
from tasks.workspace import TMP_MARK, Workspace, atomic_path, atomic_write_json

ANNY_PARAMS = ("phenotype", "pose", "global_orient", "transl")


# ----------------------------------------------------------------------------------------------------------------
# Images: rgb/, segm/ and every PNG a stage writes
# ----------------------------------------------------------------------------------------------------------------
def read_rgb(path: Path) -> np.ndarray:
    """An RGB PNG (``rgb/<frame>.png`` written by ingest, or any 8-bit image) -> (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"could not read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """A ``segm/<frame>.png`` -> (H, W) bool (channel 0 above half, as DINAR reads it above 0.2)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"could not read {path}")
    return (img if img.ndim == 2 else img[:, :, 0]) > 127


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 RGB (or (H, W) uint8 gray) atomically as PNG."""
    image = np.ascontiguousarray(image)
    with atomic_path(path) as tmp:
        data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        if not cv2.imwrite(str(tmp), data):
            raise OSError(f"could not write {path}")
    return Path(path)


def write_mask(path: Path, mask: np.ndarray) -> Path:
    """(H, W) bool -> ``segm/<frame>.png``: 0/255 in all three channels (DINAR's layout)."""
    return write_png(path, np.repeat((mask.astype(np.uint8) * 255)[:, :, None], 3, axis=2))


# ----------------------------------------------------------------------------------------------------------------
# The user's own files (masks, OpenPose JSON) and leftovers of frames that are gone
# ----------------------------------------------------------------------------------------------------------------
def frame_source_stem(ws: Workspace, frame: str) -> str | None:
    """The stem of the user's photo a frame came from (recorded by ingest), if known."""
    info = ws.stage_record("ingest").get("info", {}).get("frames", {}).get(frame, {})
    source = info.get("source")
    return Path(source).stem if source else None


def find_user_file(folder: Path, names: list[str], suffixes: tuple[str, ...]) -> Path | None:
    """The first ``folder/<name><suffix>`` that exists."""
    for name in names:
        for suffix in suffixes:
            p = folder / f"{name}{suffix}"
            if p.is_file():
                return p
    return None


def remove_stale(folder: Path, keep: set[str], pattern: str) -> list[Path]:
    """Delete files matching `pattern` in `folder` whose names are not in `keep` (frames no longer in rgb/)."""
    removed = []
    if folder.is_dir():
        for p in folder.glob(pattern):
            if p.name not in keep and TMP_MARK not in p.name and p.is_file():
                p.unlink()
                removed.append(p)
    return removed


# ----------------------------------------------------------------------------------------------------------------
# Keypoints: openpose/<frame>_keypoints.json
# ----------------------------------------------------------------------------------------------------------------
def write_keypoints(ws: Workspace, frame: str, kp: Keypoints2D) -> Path:
    return atomic_write_json(ws.keypoints(frame), kp.to_openpose_json())


def read_keypoints(ws: Workspace, frame: str) -> Keypoints2D:
    """The frame's OpenPose JSON (the main person) -> Keypoints2D (pixels of the stored photo)."""
    path = ws.keypoints(frame)
    return read_openpose_json(json.loads(path.read_text()), name=ws.rel(path)).keypoints


# ----------------------------------------------------------------------------------------------------------------
# The fit: smplx/<frame>.pkl + smplx/<frame>_camera.json (SMPL-X), smplx/<frame>_anny.npz (Anny, with its K)
# ----------------------------------------------------------------------------------------------------------------
def anny_params_path(ws: Workspace, frame: str) -> Path:
    return ws.smplx_dir / f"{frame}_anny.npz"


def camera_path(ws: Workspace, frame: str) -> Path:
    """The SMPL-X fit's camera beside DINAR's pickle (DINAR's pickle has none)."""
    return ws.smplx_dir / f"{frame}_camera.json"


def params_path(ws: Workspace, kind: str, frame: str) -> Path:
    """The fit stage's parameter file of `frame` for the body `kind`."""
    return ws.smplx(frame) if kind == "smplx" else anny_params_path(ws, frame)


def fit_files(ws: Workspace, kind: str) -> list[Path]:
    """Every frame's fit files that exist (parameters, and the SMPL-X camera): their bytes key later caches."""
    files = [params_path(ws, kind, f) for f in ws.frames()]
    if kind == "smplx":
        files += [camera_path(ws, f) for f in ws.frames()]
    return [p for p in files if p.is_file()]


def write_camera(ws: Workspace, frame: str, K: torch.Tensor, image_size: tuple[int, int]) -> Path:
    """K: (3, 3) pixels; image_size: (H, W) of the photo it projects into."""
    K = K.detach().cpu().double()
    return atomic_write_json(camera_path(ws, frame), {
        "K": K.tolist(), "image_size": [int(image_size[0]), int(image_size[1])], "focal": float(K[0, 0]),
        "convention": "pinhole, no rotation; x right, y down, z forward; pixel (i, j) centred at (j + 0.5, i + 0.5)"})


def read_camera(ws: Workspace, frame: str, image_size: tuple[int, int],
                default_focal: float = DINAR_FOCAL) -> torch.Tensor:
    """(3, 3) float32 K of the SMPL-X fit of `frame`: ``smplx/<frame>_camera.json``, or, when the workspace has no
    such file (an older run, a DINAR dataset), DINAR's documented camera for that photo: ``make_K(H, W,
    default_focal)`` (5000 px, principal point (W//2, H//2)). DatasetError for a file that is not a camera of a
    photo of `image_size`."""
    path = camera_path(ws, frame)
    if not path.is_file():
        return make_K(image_size[0], image_size[1], default_focal)
    fix = "run the fit stage again (dinar rerun --stage fit), or delete it to use DINAR's 5000 px camera"
    try:
        data = json.loads(path.read_text("utf-8"))
        K = np.asarray(data["K"], np.float64)
        size = tuple(int(v) for v in data["image_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{ws.rel(path)} is not a camera file ({type(exc).__name__}: {exc})", fix=fix) from exc
    if K.shape != (3, 3) or not np.isfinite(K).all() or not (K[0, 0] > 0 and K[1, 1] > 0) or \
            not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise DatasetError(f"{ws.rel(path)}: K must be a 3x3 pinhole matrix with positive focal lengths, got "
                           f"{K.tolist()}", fix=fix)
    if size != tuple(image_size):
        raise DatasetError(f"{ws.rel(path)} is the camera of a {size[1]}x{size[0]} photo, but the frame is "
                           f"{image_size[1]}x{image_size[0]}", fix=fix)
    return torch.from_numpy(K.astype(np.float32))


def write_smplx_fit(ws: Workspace, frame: str, params, gender: str, index: int, K: torch.Tensor,
                    image_size: tuple[int, int]) -> list[Path]:
    """Frame `index` of the batched SMPLXParams as DINAR's pickle, and its camera K (3, 3) beside it."""
    return [write_dinar_pickle(ws.smplx(frame), params, gender=gender, index=index),
            write_camera(ws, frame, K, image_size)]


def write_anny_fit(ws: Workspace, frame: str, params: AnnyParams, index: int, K: torch.Tensor) -> Path:
    """Frame `index` of the batched AnnyParams and its K (3, 3) as ``smplx/<frame>_anny.npz`` (float32, batch 1)."""
    arrays = {k: getattr(params, k)[index:index + 1].detach().cpu().numpy().astype(np.float32) for k in ANNY_PARAMS}
    path = anny_params_path(ws, frame)
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays, K=K.detach().cpu().numpy().astype(np.float32))
    return path


@dataclass
class FitFrame:
    """One frame's fit. params: SMPLXParams or AnnyParams (batch 1, on the body's device); K: (3, 3) the photo's
    camera; verts_cam: (1, V, 3) the posed body in that camera; image_size: (H, W) of the photo."""

    frame: str
    params: object
    K: torch.Tensor
    verts_cam: torch.Tensor
    image_size: tuple[int, int]


def read_fit_params(ws: Workspace, kind: str, frame: str, image_size: tuple[int, int],
                    device: torch.device) -> tuple[object, torch.Tensor]:
    """(params, K (3, 3)) of `frame`: SMPL-X's K from its camera file (`read_camera`), Anny's from its npz."""
    path = params_path(ws, kind, frame)
    if not path.is_file():
        raise DatasetError(f"{ws.rel(path)} is missing: the fit of frame {frame!r} was not written",
                           fix="run the fit stage again (dinar rerun)")
    if kind == "smplx":
        return read_dinar_pickle(path).params.to(device), read_camera(ws, frame, image_size).to(device)
    with np.load(path) as z:
        arrays = {k: torch.from_numpy(np.asarray(z[k], np.float32)).to(device) for k in (*ANNY_PARAMS, "K")}
    K = arrays.pop("K")
    return AnnyParams(**arrays), K.reshape(3, 3)


def load_fit(ws: Workspace, body: LoadedBody, frames: list[str] | None = None) -> list[FitFrame]:
    """The fit of each frame, posed in its photo's camera."""
    out = []
    device = body.model.device
    for frame in frames or ws.frames():
        H, W = read_mask(ws.segm(frame)).shape[:2]
        params, K = read_fit_params(ws, body.kind, frame, (H, W), device)
        with torch.no_grad():
            verts = body.model(params).vertices
        out.append(FitFrame(frame, params, K, verts, (H, W)))
    return out


def fit_sample(ws: Workspace, fit: FitFrame, layout: UVLayout, neural, name: str | None = None):
    """One frame of `ws` as DINAR's dataloader prepares it (`dinar_core.avatar.dataset.prepare_sample`): the photo
    and mask cropped around the fitted body, the body's UV-split mesh projected through the frame's camera.
    `neural`: the ``neural`` config (image_size, crop_scale). Returns a DinarSample named `name` (the frame)."""
    from dinar_core.avatar.dataset import prepare_sample
    from dinar_core.avatar.neural import project_vertices

    verts_pix = project_vertices(fit.verts_cam, fit.K, layout.vertex_index.to(fit.verts_cam.device))[0]
    mask = read_mask(ws.segm(fit.frame)).astype(np.uint8) * 255
    return prepare_sample(name or fit.frame, read_rgb(ws.rgb(fit.frame)), mask, verts_pix.double().cpu().numpy(),
                          fit.K.double().cpu().numpy(), neural.image_size, neural.crop_scale)


def body_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    """Every frame's fit files, the SMPL-X model file when that body is used, and the SMPL-X UV files."""
    kind = body_kind(cfg.body)
    inputs = fit_files(ws, kind)
    if kind == "smplx":
        inputs.append(smplx_model_file(cfg.body))
    return inputs + layout_inputs(cfg)


# ----------------------------------------------------------------------------------------------------------------
# The avatar: avatar/texture.png, avatar/avatar.json
# ----------------------------------------------------------------------------------------------------------------
def texture_path(ws: Workspace) -> Path:
    return ws.avatar_dir / "texture.png"


def avatar_json_path(ws: Workspace) -> Path:
    return ws.avatar_dir / "avatar.json"


def read_texture(ws: Workspace) -> np.ndarray:
    """(T, T, 3) uint8 RGB."""
    path = texture_path(ws)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{ws.rel(path)} is missing or unreadable", fix="run the avatar stage again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_avatar_json(ws: Workspace) -> dict:
    path = avatar_json_path(ws)
    if not path.is_file():
        raise DatasetError(f"{ws.rel(path)} is missing", fix="run the avatar stage again")
    return json.loads(path.read_text("utf-8"))


def neural_videos(ws: Workspace) -> list[Path] | None:
    """The videos DINAR's neural renderer made for a `neural` avatar (None for a classic avatar, or none yet)."""
    if not avatar_json_path(ws).is_file():
        return None
    meta = read_avatar_json(ws)
    return [ws.root / v for v in meta["videos"]] if meta.get("mode") == "neural" else None


@dataclass
class LoadedAvatar:
    """A built classic avatar read back for render and export: avatar.json, texture (T, T, 3) uint8, the body
    model it was built for, its UV layout and the reference frame's fit."""

    meta: dict
    texture: np.ndarray
    body: LoadedBody
    layout: UVLayout
    fit: FitFrame


MAX_HAIR_M = 0.2
"""An edited avatar.json cannot blow the head up: thicker shells are cut to this (the stage measures <= 8 cm)."""


def hair_thickness(meta: dict) -> float:
    """The scalp shell's thickness (m) recorded in avatar.json (0 without one, at most ``MAX_HAIR_M``)."""
    vol = meta.get("hair_volume")
    t = vol.get("thickness_m") if isinstance(vol, dict) else None
    return min(float(t), MAX_HAIR_M) if isinstance(t, (int, float)) and np.isfinite(t) and t > 0 else 0.0


def with_hair_volume(avatar: LoadedAvatar, verts: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) vertices of `avatar`'s body (any pose and frame) with the scalp shell avatar.json records."""
    from dinar_core.body.parts import body_parts
    from dinar_core.texture.hair_volume import offset_shell, scalp_weights

    t = hair_thickness(avatar.meta)
    parts = body_parts(avatar.body.model) if t > 0 else None
    if parts is None:
        return verts
    model = avatar.body.model
    weights = scalp_weights(model.rest_vertices, parts).to(verts.device)
    return offset_shell(verts, model.faces.to(verts.device), weights, t)


def load_avatar(ws: Workspace, cfg: PipelineConfig) -> LoadedAvatar:
    """The classic avatar of `ws`. DatasetError for a neural avatar (no RGB texture: its look is DINAR's neural
    renderer's, its video ``renders/video.mp4``) or one built for another body."""
    meta = read_avatar_json(ws)
    if meta.get("mode") == "neural":
        raise DatasetError(f"{ws.person}'s avatar is a neural one (avatar/neural/): it has no RGB texture to render "
                           "or export with a mesh; its video is renders/video.mp4",
                           fix="rebuild it with avatar.mode=classic for a GLB or other motions")
    texture = read_texture(ws)
    body = load_body(cfg.body)
    if body.kind != meta["body"]:
        raise DatasetError(f"the avatar was built for the {meta['body']} body but body.model resolves to {body.kind}",
                           fix=f"set body.model={meta['body']}, or rerun the avatar stage")
    return LoadedAvatar(meta, texture, body, load_layout(body, cfg), load_fit(ws, body, [meta["reference_frame"]])[0])
