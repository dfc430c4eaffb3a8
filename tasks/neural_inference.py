"""DINAR's ``inference.py`` on a prepared dataset folder, writing DINAR's output layout: what `dinar infer` runs,
and what the avatar stage runs on a person workspace (a DINAR dataset) in `neural` mode.

Input: ``DATA/rgb/<id>.png``, ``DATA/segm/<id>.png`` (person mask, R channel), ``DATA/smplx/<id>.pkl``; the
checkpoint ``ddpm-epoch=24.ckpt``; the SMPL-X model files. The photo's camera is ``DATA/smplx/<id>_camera.json``
when the fit stage wrote one (its ``fit.focal``), else DINAR's convention: fx = fy = ``neural.focal`` (DINAR:
5000 px), principal point (W//2, H//2) of the (cropped) photo. Output (as DINAR's three stages write it)::

    LOGS/eval/run_<%Y_%m-%d_%H-%M>_test/textures/
        data_dict/<id>.pkl            stage A: the inpainted texture and what the other stages need
        finetuned/s<steps:07>_<id>.pkl  stage B: the finetuned texture (same keys)
        videos/<name>.mp4, videos/<name>/<i>.png (+ <name>_segm/ for animations)   stage C

data_dict keys (DINAR's): ntexture (1, 21, 256, 256) float32, normal_angles (1, 1, 256, 256), calibration_matrix
(1, 3, 3), verts (1, 11438, 3), person_id [str], fake_rgb (1, 3, 512, 512) uint8, fake_segm (1, 1, 512, 512) uint8,
diffusion_ntexture (1, 21, 256, 256), mask (1, 1, 256, 256), smplx_param {name: (1, N) float32, 'gender': str}.

The UV layout comes from the checkpoint (DINAR stores uv.npy / uv_faces.npy in it); DINAR's ``v_inds`` is derived
from the checkpoint's faces and the SMPL-X faces (or read from ``--uv-assets``); the binary UV map is
``SMPLX-mesh-neutral.png`` from the UV assets when given, else rasterised from the layout.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.avatar.dataset import prepare_sample
from dinar_core.avatar.finetune import FinetuneInputs, finetune_texture
from dinar_core.avatar.lpips import load_lpips_vgg
from dinar_core.avatar.neural import NeuralAvatarPipeline, derive_vertex_index, project_vertices
from dinar_core.body import SMPLXBody, SMPLXParams, UVLayout
from dinar_core.body.dinar_pickle import read_dinar_pickle, to_dinar_dict
from dinar_core.body.smplx_model import DINAR_LEYE_POSE, DINAR_REYE_POSE, load_uv_layout, resolve_smplx_models_dir
from dinar_core.compat.checkpoint import load_dinar_checkpoint
from dinar_core.errors import DatasetError, MissingCheckpointError
from dinar_core.nets.dinar import DinarModel
from dinar_core.render import make_K
from tasks.artifacts import camera_path, read_camera, read_rgb, write_png
from tasks.config import PipelineConfig
from tasks.workspace import Workspace, atomic_write_bytes

CHECKPOINT_URL = "https://github.com/SamsungLabs/DINAR (README: 'Checkpoint' link, ddpm-epoch=24.ckpt)"


@dataclass
class InferOptions:
    """What `dinar infer` runs with, besides the data: the neural config and the body's files (from the resolved
    pipeline config, see `from_config`), and how to write the outputs.

    neural: the NeuralAvatarConfig (sizes, DDIM steps, seed, device, finetuning incl. DINAR's --finetune_back as
        ``finetune.back``, video incl. ``video.max_frames``); None = the defaults (DINAR's official sizes).
    animation: DINAR's animation pickle ('body_params_list'); None makes the turntable video.
    smplx_models: folder with SMPLX_{NEUTRAL,MALE,FEMALE}.pkl/.npz (else $DINAR_SMPLX_MODELS).
    uv_assets: DINAR's smplx_data/ folder (uv.npy, uv_faces.npy, v_inds.npy, SMPLX-mesh-neutral.png,
        SMPLX-eyes-hands-mask.png); optional.
    write_frames: also write each frame as PNG (DINAR does).
    run_name: the run folder under LOGS/eval (default DINAR's run_<date>_test).
    """

    neural: Optional[NeuralAvatarConfig] = None
    animation: Optional[Path] = None
    smplx_models: Optional[Path] = None
    uv_assets: Optional[Path] = None
    write_frames: bool = True
    run_name: Optional[str] = None

    @classmethod
    def from_config(cls, cfg: PipelineConfig, **options) -> "InferOptions":
        """The options a resolved pipeline config gives: its `neural` section and `body.smplx_models` /
        `body.uv_assets` (the checkpoint is ``cfg.avatar.checkpoint``); `options` set the other fields."""
        body = cfg.body
        return cls(neural=cfg.neural, smplx_models=Path(body.smplx_models) if body.smplx_models else None,
                   uv_assets=Path(body.uv_assets) if body.uv_assets else None, **options)


@dataclass
class InferResult:
    """Paths written by :func:`infer`, per person in the order of `persons`; seconds per stage."""

    run_dir: Path
    persons: list[str]
    data_dicts: list[Path]
    finetuned: list[Path]
    videos: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------ dataset


def discover_persons(data_root: Path) -> list[str]:
    """Frame ids as DINAR finds them (``rgb/*.*`` stems), each checked for rgb/<id>.png, segm/<id>.png and
    smplx/<id>.pkl."""
    data_root = Path(data_root)
    rgb_dir = data_root / "rgb"
    if not rgb_dir.is_dir():
        raise DatasetError(f"{data_root} has no rgb/ folder", fix="point --data_root at a folder with rgb/, segm/ "
                           "and smplx/ (DINAR's layout, or a `dinar run` person workspace)")
    ids = sorted({p.stem for p in rgb_dir.glob("*.*") if p.is_file() and ".tmp-" not in p.name})
    if not ids:
        raise DatasetError(f"{rgb_dir} holds no images", fix="put the photos as rgb/<id>.png")
    for pid in ids:
        missing = [str(p) for p in (rgb_dir / f"{pid}.png", data_root / "segm" / f"{pid}.png",
                                    data_root / "smplx" / f"{pid}.pkl") if not p.is_file()]
        if missing:
            raise DatasetError(f"frame {pid!r}: missing {missing}",
                               fix="every rgb/<id>.png needs segm/<id>.png (person mask) and smplx/<id>.pkl "
                                   "(run `dinar run` to make them)")
    return ids


def _crop_ltrb(image: np.ndarray, ltrb: np.ndarray) -> np.ndarray:
    """DINAR's ``crop_img_ltrb``: rows [t, b), columns [l, r), zero outside the image."""
    l, t, r, b = (int(v) for v in ltrb)
    out = np.zeros((max(b - t, 0), max(r - l, 0)) + image.shape[2:], image.dtype)
    h, w = image.shape[:2]
    y0, x0, y1, x1 = max(t, 0), max(l, 0), min(b, h), min(r, w)
    if y1 > y0 and x1 > x0:
        out[y0 - t:y1 - t, x0 - l:x1 - l] = image[y0:y1, x0:x1]
    return out


def _read_binary_map(path: Path, size: int) -> torch.Tensor:
    """DINAR's ``load_colored_uv_map(binary=True)``: R channel of the PNG resized to (size, size), / 255."""
    img = read_rgb(path)
    img = cv2.resize(img, (size, size))
    return torch.from_numpy(img[..., 0].astype(np.float32) / 255)[None, None]


# ----------------------------------------------------------------------------------------------------- outputs


def _dump_pickle(path: Path, data: dict) -> Path:
    return atomic_write_bytes(path, pickle.dumps(data, protocol=4))


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def _smplx_param(params: SMPLXParams, gender: str) -> dict:
    d = to_dinar_dict(params, gender)
    d["reye_pose"] = np.array([DINAR_REYE_POSE], dtype=np.float32)
    d["leye_pose"] = np.array([DINAR_LEYE_POSE], dtype=np.float32)
    return d


def _camera(data: Workspace, pid: str, image_size: tuple[int, int], ltrb: Optional[np.ndarray],
            focal: float) -> torch.Tensor:
    """(3, 3) K of frame `pid` in the photo as the networks see it (cropped to `ltrb` when the pickle has one):
    the fit's ``smplx/<pid>_camera.json`` (of the uncropped `image_size` = (H, W)), its principal point moved by the
    crop; without that file DINAR's convention, ``make_K`` of the (cropped) photo with `focal`."""
    if not camera_path(data, pid).is_file():
        H, W = image_size
        if ltrb is not None:
            l, t, r, b = (int(v) for v in ltrb)
            H, W = max(b - t, 0), max(r - l, 0)
        return make_K(H, W, focal)
    K = read_camera(data, pid, image_size).clone()
    if ltrb is not None:
        K[0, 2] -= float(int(ltrb[0]))
        K[1, 2] -= float(int(ltrb[1]))
    return K


def _run_dir(log_dir: Path, name: Optional[str]) -> Path:
    base = Path(log_dir) / "eval"
    stem = name or _dt.datetime.now().strftime("run_%Y_%m-%d_%H-%M_test")
    run = base / stem
    k = 2
    while name is None and run.exists():  # DINAR would mix two runs of the same minute; we do not
        run = base / f"{stem}_{k}"
        k += 1
    return run


# ---------------------------------------------------------------------------------------------------- the stage


class _Bodies:
    """One SMPLXBody per gender, built on first use."""

    def __init__(self, folder: Path, device: torch.device):
        self.folder, self.device, self.cache = folder, device, {}

    def __call__(self, gender: str) -> SMPLXBody:
        if gender not in self.cache:
            self.cache[gender] = SMPLXBody(self.folder, gender=gender, device=self.device)  # type: ignore[arg-type]
        return self.cache[gender]


def infer(ckpt_path: Optional[str | Path], log_dir: str | Path, data_root: str | Path,
          options: InferOptions | None = None) -> InferResult:
    """DINAR's inference on a prepared dataset: texture + inpainting (data_dict), finetuning (finetuned), videos.

    Raises MissingCheckpointError / NotACheckpointError / CheckpointMismatchError ... (CheckpointError) for the
    checkpoint, MissingModelError for the SMPL-X files, DatasetError for the data folder.
    """
    options = options or InferOptions()
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    if ckpt_path is None or not Path(ckpt_path).is_file():
        where = "no checkpoint given" if ckpt_path is None else f"checkpoint {ckpt_path} not found"
        raise MissingCheckpointError(f"{where}: DINAR's neural avatar needs its trained weights",
                                     fix=f"download ddpm-epoch=24.ckpt from {CHECKPOINT_URL} and pass --ckpt_path")
    cfg = options.neural or NeuralAvatarConfig()
    cfg.validate()
    device = cfg.resolve_device()
    persons = discover_persons(Path(data_root))
    bodies = _Bodies(resolve_smplx_models_dir(options.smplx_models), device)
    body0 = bodies("neutral")  # fails early with MissingModelError when the SMPL-X files are absent

    # 1. The networks, every checkpoint key placed (UV layout from the assets when given, else from the checkpoint).
    assets = None
    if options.uv_assets is not None:
        assets = load_uv_layout(options.uv_assets)
    do_finetune = cfg.finetune.enabled
    model = DinarModel(cfg.dinar_config(with_discriminator=do_finetune),
                       uv_faces=None if assets is None else assets.uv_faces,
                       uv_values=None if assets is None else assets.uv)
    t0 = time.perf_counter()
    load_dinar_checkpoint(ckpt_path, model)
    seconds["load_checkpoint"] = time.perf_counter() - t0
    model = model.to(device).eval()
    uv_faces = model.uv_faces.long().cpu()
    vertex_index = assets.vertex_index if assets is not None else \
        derive_vertex_index(uv_faces, body0.faces.cpu(), cfg.uv_layout.num_uv_verts)
    layout = UVLayout(model.uv_values.float().cpu(), uv_faces, vertex_index)
    T = cfg.texture_size
    coverage = additive = None
    if options.uv_assets is not None and (Path(options.uv_assets) / "SMPLX-mesh-neutral.png").is_file():
        coverage = _read_binary_map(Path(options.uv_assets) / "SMPLX-mesh-neutral.png", T)
    if options.uv_assets is not None and (Path(options.uv_assets) / "SMPLX-eyes-hands-mask.png").is_file():
        additive = _read_binary_map(Path(options.uv_assets) / "SMPLX-eyes-hands-mask.png", T)
    pipe = NeuralAvatarPipeline(model, layout, cfg, uv_coverage=coverage, device=device)
    lpips = load_lpips_vgg(cfg.finetune.lpips_weights, device) if do_finetune and cfg.finetune.lpips_weights else None

    run_dir = _run_dir(Path(log_dir), options.run_name)
    tex_dir = run_dir / "textures"
    result = InferResult(run_dir=run_dir, persons=persons, data_dicts=[], finetuned=[], videos=[], seconds=seconds)
    motion = None
    if options.animation is not None:
        from dinar_core.motion.formats import load_dinar_animation

        motion = load_dinar_animation(options.animation)

    for pid in persons:
        # 2. Stage A: sample, texture, inpainting, render of the input view -> data_dict/<id>.pkl
        t0 = time.perf_counter()
        rgb = read_rgb(Path(data_root) / "rgb" / f"{pid}.png")
        segm = read_rgb(Path(data_root) / "segm" / f"{pid}.png")[..., 0]  # DINAR: cv2 BGR->RGB, channel 0 = R
        fit = read_dinar_pickle(Path(data_root) / "smplx" / f"{pid}.pkl")
        K = _camera(Workspace(Path(data_root)), pid, segm.shape, fit.ltrb, cfg.focal)
        if fit.ltrb is not None:
            rgb, segm = _crop_ltrb(rgb, fit.ltrb), _crop_ltrb(segm, fit.ltrb)
        body = bodies(fit.gender)
        with torch.no_grad():
            verts = project_vertices(body(fit.params.to(device)).vertices, K.to(device), layout.vertex_index)
        sample = prepare_sample(pid, rgb, segm, verts[0].double().cpu().numpy(), K.double().numpy(),
                                cfg.image_size, cfg.crop_scale)
        avatar = pipe.run(sample, pipe.generator())
        data = {
            "ntexture": _np(avatar.ntexture), "normal_angles": _np(avatar.normal_angles),
            "calibration_matrix": _np(avatar.K), "verts": _np(avatar.verts), "person_id": [pid],
            "fake_rgb": ((avatar.render.rgb.detach().cpu().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8).numpy(),
            "fake_segm": (avatar.render.segm.detach().cpu().clamp(0, 1) * 255).to(torch.uint8).numpy(),
            "diffusion_ntexture": _np(avatar.diffusion_ntexture), "mask": _np(avatar.mask),
            "smplx_param": _smplx_param(fit.params, fit.gender),
        }
        result.data_dicts.append(_dump_pickle(tex_dir / "data_dict" / f"{pid}.pkl", data))
        seconds["texture"] = seconds.get("texture", 0.0) + time.perf_counter() - t0

        # 3. Stage B: finetuning -> finetuned/s<steps>_<id>.pkl (the data_dict copied when finetuning is off)
        t0 = time.perf_counter()
        if do_finetune:
            inputs = FinetuneInputs(ntexture=avatar.ntexture, mask=avatar.mask, normal_angles=avatar.normal_angles,
                                    uv=avatar.uv, real_rgb=sample.real_rgb[None].to(device),
                                    real_segm=sample.real_segm[None].to(device), verts=avatar.verts,
                                    diffusion_ntexture=avatar.diffusion_ntexture,
                                    binary_uv_map=pipe.uv_coverage,
                                    additive_uv_map=None if additive is None else additive.to(device))
            tuned = finetune_texture(model.renderer, model.discriminator, inputs, cfg.finetune,
                                     finetune_back=cfg.finetune.back, generator=pipe.generator(), lpips=lpips)
            name = f"s{tuned.steps:07}_{pid}"
            data = {**data, "ntexture": _np(tuned.ntexture), "person_id": [name]}
        else:
            name = pid
        result.finetuned.append(_dump_pickle(tex_dir / "finetuned" / f"{name}.pkl", data))
        seconds["finetune"] = seconds.get("finetune", 0.0) + time.perf_counter() - t0

        # 4. Stage C: video (turntable, or the animation with the avatar's shape and translation)
        t0 = time.perf_counter()
        ntex = torch.from_numpy(data["ntexture"]).to(device)
        if motion is None:
            frames = pipe.turntable(avatar.verts, avatar.K, pipe.turntable_frame_count())
        else:
            frames = _animation_vertices(pipe, body, fit.params.to(device), motion, avatar.K, cfg.video.max_frames)
        result.videos.append(_write_video(pipe, ntex, frames, tex_dir / "videos" / f"{name}.mp4",
                                          cfg.video.fps, options.write_frames, with_segm=motion is not None))
        seconds["video"] = seconds.get("video", 0.0) + time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    return result


def _animation_vertices(pipe: NeuralAvatarPipeline, body: SMPLXBody, base: SMPLXParams, motion, K: torch.Tensor,
                        max_frames: Optional[int]):
    """Per frame: the motion's poses with the avatar's shape, expression and translation (DINAR's video maker)."""
    n = motion.num_frames if not max_frames else min(motion.num_frames, max_frames)
    for i in range(n):
        p = dataclasses.replace(base)
        p.global_orient = torch.as_tensor(motion.global_orient[i:i + 1], dtype=torch.float32, device=pipe.device)
        p.body_pose = torch.as_tensor(motion.body_pose[i:i + 1], dtype=torch.float32, device=pipe.device)
        for key in ("jaw_pose", "left_hand_pose", "right_hand_pose"):
            value = getattr(motion, key)
            if value is not None:
                setattr(p, key, torch.as_tensor(value[i:i + 1], dtype=torch.float32, device=pipe.device))
        with torch.no_grad():
            yield pipe.posed_vertices(body, p, K[0])


def _write_video(pipe: NeuralAvatarPipeline, ntexture: torch.Tensor, vertex_frames, path: Path, fps: float,
                 write_frames: bool, with_segm: bool) -> Path:
    """Render and encode the frames (H.264 MP4 via dinar_core.export.video), streaming; PNGs beside it as DINAR
    writes them (videos/<name>/<i>.png, and <name>_segm/<i>.png for animations)."""
    from dinar_core.export.video import VideoConfig, write_mp4

    frames_dir, segm_dir = path.with_suffix(""), path.with_name(path.stem + "_segm")

    def stream():
        for i, frame in enumerate(pipe.frames(ntexture, vertex_frames)):
            rgb = frame.rgb.numpy()
            if write_frames:
                write_png(frames_dir / f"{i}.png", rgb)
                if with_segm:
                    write_png(segm_dir / f"{i}.png", (frame.alpha.numpy() * 255).astype(np.uint8))
            yield rgb

    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, stream(), VideoConfig(fps=float(fps)))
    return path

