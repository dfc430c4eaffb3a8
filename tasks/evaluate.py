"""The evaluation protocol for one person of a multi-view dataset (``docs/evaluation.md``).

An avatar is made from ONE view of the person (the source: the most frontal unless chosen) by the real pipeline
(ingest, segment, keypoints, fit, avatar) with the source camera's calibrated intrinsics; it is then placed in every
other camera by the rigid transform between the two calibrations (never fitted to the target image), rendered, and
compared with the real view inside the union of the rendered and the real person masks.

Paths in, paths out: the flow (``flows/evaluate.py``) runs the pipeline stages; this module prepares the source
photo, chooses it and scores a finished workspace; ``tasks.eval_results`` holds the result records and their cache
(``<out>/results/<person>.json`` with its key), so a second ``dinar eval`` recomputes only what changed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

from dinar_core.errors import DinarError, EvalDataError
from dinar_core.evaluation import (bucket_of, depth_scale, frontal_score, masked_image_scores, recentre_intrinsics,
                                   relative_transform, transform_points, triangulate_points, view_angle_deg)
from dinar_core.evaluation.body import mpjpe, pa_mpjpe, rest_height
from dinar_core.texture import PhotoView, body_parts, classic_texture, render_textured
from dinar_core.texture.layout import texel_map
from dinar_core.texture.mirror import build_front_back_map
from tasks.artifacts import load_avatar, read_mask, read_rgb, with_hair_volume, write_png
from tasks.config import PipelineConfig
from tasks.eval_data import EvalPerson, GroundTruthBody
from tasks.eval_results import PersonResult, ViewRow
from tasks.workspace import Workspace

PLACEMENTS = ("calibrated", "scale-aligned")
"""How the avatar reaches the other cameras: by the calibrations alone, or also scaled about the source camera's
centre to the person's real size (``dinar_core.evaluation.protocol.depth_scale``: invisible in the source view)."""
METHODS = ("flat", "mirror", "copy", "classic", "classic-gtfit", "neural")


# ----------------------------------------------------------------------------------------------------------------
# Choosing and preparing the source view
# ----------------------------------------------------------------------------------------------------------------
def choose_source(person: EvalPerson, probe, requested: str) -> tuple[str, dict]:
    """The source camera: `requested` when it is a camera name, else the most frontal view. On synthetic data the
    ground truth says which camera faces the body (``gt/meta.json`` ``frontal_camera``); otherwise each view's
    BODY_25 keypoints (``probe(camera)``: that view's workspace, run to the keypoints stage) are scored by
    :func:`frontal_score`. Returns (camera, {camera: score})."""
    cams = list(person.cameras)
    if requested not in ("auto", "", None):
        if requested not in person.cameras:
            raise EvalDataError(f"{person.name}: source view {requested!r} is not a camera of this person "
                                f"({', '.join(cams)})", fix="give --source one of those cameras, or auto")
        return requested, {}
    meta = person.gt_meta()
    if meta.get("frontal_camera") in person.cameras:
        return meta["frontal_camera"], {}
    scores = {}
    for cam in cams:
        body = probe_body25(probe, cam)
        scores[cam] = float("-inf") if body is None else frontal_score(body)
    best = max(cams, key=lambda c: scores[c])
    if scores[best] == float("-inf"):
        raise EvalDataError(f"{person.name}: no view shows a torso, so none can be the source",
                            fix="check the views (is the person in them?) or give --source")
    return best, scores


def probe_body25(probe, camera: str) -> np.ndarray | None:
    """(25, 3) BODY_25 keypoints (x, y, confidence) of the first person in a view's probe workspace (zeros when
    it found nobody), None when the view has no keypoints file."""
    path = probe(camera).keypoints(camera)
    if not path.is_file():
        return None
    people = json.loads(path.read_text()).get("people") or []
    body = (people[0].get("pose_keypoints_2d") if people else None) or [0.0] * 75
    return np.asarray(body, np.float64).reshape(-1, 3)[:25]


def write_source_photo(person: EvalPerson, camera: str, out_png: Path) -> float:
    """Write the source view warped to DINAR's camera model (square pixels, principal point at the centre), which
    the fit assumes, and return its focal length in pixels (the fit's ``fit.focal``)."""
    image = read_rgb(person.view_path(camera))
    warped, K = recentre_intrinsics(image, person.cameras[camera].K)
    write_png(out_png, warped)
    return float(K[0, 0])


# ----------------------------------------------------------------------------------------------------------------
# Scoring one person
# ----------------------------------------------------------------------------------------------------------------
def _flat_texture(seen, T: int) -> np.ndarray:
    """The front's mean colour everywhere: the confidence-weighted mean of the observed texels."""
    w = seen.confidence.reshape(-1, 1).float()
    colour = (seen.texture.reshape(-1, 3).float() * w).sum(0) / w.sum().clamp_min(1e-8)
    return np.broadcast_to((colour.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8), (T, T, 3)).copy()


def _to_uint8(texture: torch.Tensor) -> np.ndarray:
    return (texture.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def method_variants(classic_cfg) -> dict:
    """The classic-texture settings of the texture methods that differ from the avatar stage only in how the
    unseen texels are completed: `mirror` (left/right symmetry and the fill, nothing through the body) and `copy`
    (the completion before issue 11: every front pixel copied through the body to the back, no hair, no
    de-lighting)."""
    return {"mirror": _replace(classic_cfg, back_mode="copy", use_front_back=False, mirror_scope="all", hair=False,
                               delight=False),
            "copy": _replace(classic_cfg, back_mode="copy", use_front_back=True, mirror_scope="all", hair=False,
                             delight=False)}


def method_textures(ws: Workspace, cfg: PipelineConfig, avatar, methods: list[str], gt_verts_src=None
                    ) -> tuple[dict[str, tuple[np.ndarray, torch.Tensor]], list[str]]:
    """{method: (texture (T, T, 3) uint8, verts (1, V, 3) in the source camera)} for the methods that apply, and
    notes for those that do not. `classic` is the pipeline's own avatar (texture and hair volume); the others are
    built from the same photo and fit with the same code (only the completion differs; the bald fitted body),
    `classic-gtfit` on the ground-truth body."""
    fit, body = avatar.fit, avatar.body
    photo = PhotoView(read_rgb(ws.rgb(fit.frame)), read_mask(ws.segm(fit.frame)), fit.verts_cam, fit.K)
    T = int(avatar.texture.shape[0])
    classic_cfg = cfg.avatar.classic
    variants = method_variants(classic_cfg)
    parts = body_parts(body.model)

    def complete(view: PhotoView, config):
        return classic_texture([view], avatar.layout, body.model.rest_vertices, config, parts=parts)

    out, notes = {}, []
    with torch.no_grad():
        for method in methods:
            if method == "classic":  # the avatar as the pipeline draws it: its texture and its hair volume
                out[method] = (avatar.texture, with_hair_volume(avatar, fit.verts_cam))
            elif method == "flat":
                out[method] = (_flat_texture(complete(photo, variants["mirror"]).unwrapped, T), fit.verts_cam)
            elif method in variants:
                out[method] = (_to_uint8(complete(photo, variants[method]).completed.texture), fit.verts_cam)
            elif method == "classic-gtfit":
                if gt_verts_src is None:
                    notes.append("classic-gtfit: no ground-truth body for this person (real data); skipped")
                    continue
                gt_photo = PhotoView(photo.image, photo.mask, gt_verts_src, fit.K)
                out[method] = (_to_uint8(complete(gt_photo, classic_cfg).completed.texture), gt_verts_src)
            elif method == "neural":
                from dinar_core.training.weights import is_weights_file

                if cfg.avatar.checkpoint and is_weights_file(cfg.avatar.checkpoint):
                    out[method] = (None, fit.verts_cam)  # drawn by the trained model's renderer (score_person)
                else:
                    notes.append("neural: no model of `dinar train` for this body is configured (avatar.checkpoint "
                                 "= its model.pt); skipped" if not cfg.avatar.checkpoint else
                                 "neural: DINAR's own checkpoint is not scored (SMPL-X only; give a model.pt of "
                                 "`dinar train`); skipped")
            else:
                raise EvalDataError(f"unknown method {method!r}", fix=f"use some of {', '.join(METHODS)}")
    return out, notes


def _replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def target_mask(person: EvalPerson, probe, camera: str, size_hw: tuple[int, int]) -> np.ndarray:
    """The real person mask of a view: the ground truth's when there is one, else the pipeline's segmentation of
    that view (the probe workspace). EvalDataError when neither exists (the person is absent from the view)."""
    gt = person.gt_mask_path(camera)
    path = gt if gt is not None and gt.is_file() else probe(camera).segm(camera)
    if not path.is_file():
        rec = probe(camera).stage_record("segment") if probe(camera).manifest_path.is_file() else {}
        why = (rec.get("error") or {}).get("message") or "no mask was made"
        raise EvalDataError(f"{person.name}/{camera}: no person mask ({why})",
                            fix="check that the person is visible in this view")
    mask = read_mask(path)
    if mask.shape[:2] != size_hw:
        mask = cv2.resize(mask.astype(np.uint8), (size_hw[1], size_hw[0]), interpolation=cv2.INTER_NEAREST)
    return mask > 0


def score_person(person: EvalPerson, ws: Workspace, probe, source: str, cfg: PipelineConfig,
                 methods: list[str], out_dir: Path, lpips_model=None) -> PersonResult:
    """Score the avatar of workspace `ws` (made from view `source`) in every other view of `person`.

    1. the avatar (texture, body, fit in the source camera) and each method's texture;
    2. for each target camera: the rigid transform source -> target from the calibrations, the view angle and
       its bucket;
    3. render each method into the target camera at the target's size, compare inside the union of masks;
    4. synthetic data: body errors (MPJPE, PA-MPJPE, height) and texture errors in UV space.
    """
    avatar = load_avatar(ws, cfg)
    src = person.cameras[source]
    gt_verts = None
    gt = person.gt_body(avatar.body) if person.has_gt() else None
    if gt is not None:
        gt_verts = transform_points(gt.vertices_world, src.R, src.t)[None].to(avatar.fit.verts_cam)
    textures, notes = method_textures(ws, cfg, avatar, methods, gt_verts)
    trained = None
    if "neural" in textures:
        from tasks.neural_trained import load_trained_avatar, render_view

        trained = load_trained_avatar(ws, cfg)
    placement = scale_reference(person, probe, source, avatar, gt)
    scales = {"calibrated": 1.0}
    if placement.get("depth_scale") is not None:
        scales["scale-aligned"] = placement["depth_scale"]
    else:
        notes.append(f"scale-aligned placement skipped: {placement.get('reference')}")
    centre_src = avatar.fit.verts_cam[0].mean(0).double().cpu().numpy()
    centre_world = src.R.T @ (centre_src - src.t)
    rows, renders = [], {m: {} for m in textures}
    render_dir = out_dir / "renders" / person.name
    for cam, dst in person.cameras.items():
        if cam == source:
            continue
        angle = view_angle_deg(src.R, src.t, dst.R, dst.t, centre_world, person.up)
        bucket = bucket_of(angle)
        R_rel, t_rel = relative_transform(src.R, src.t, dst.R, dst.t)
        H, W = dst.size[1], dst.size[0]
        try:
            real = read_rgb(person.view_path(cam))
            if real.shape[:2] != (H, W):
                raise EvalDataError(f"{person.name}/{cam}: the view is {real.shape[1]}x{real.shape[0]} but "
                                    f"cameras.json says {W}x{H}", fix="re-import the dataset")
            real_mask = target_mask(person, probe, cam, (H, W))
        except DinarError as exc:
            rows += [ViewRow(person.name, cam, bucket, round(angle, 2), m, error=f"{type(exc).__name__}: {exc}")
                     for m in textures]
            continue
        K = torch.as_tensor(dst.K, dtype=torch.float32)
        for method, (texture, verts_src) in textures.items():
            scored: dict[float, tuple] = {}  # one render per distinct scale
            for place, scale in scales.items():
                if method == "classic-gtfit":
                    scale = 1.0  # the ground-truth body already has the person's size
                if scale not in scored:
                    verts = transform_points(verts_src * scale, R_rel, t_rel)
                    if texture is None:  # the trained neural avatar, drawn by its renderer
                        rgba = render_view(trained, verts, K, (H, W))
                    else:
                        with torch.no_grad():
                            r = render_textured(verts, K.to(verts), None, avatar.layout, texture, (H, W),
                                                background="white")
                        rgba = r.to_uint8()[0]
                    scored[scale] = (rgba, masked_image_scores(rgba[..., :3], real, rgba[..., 3] > 127, real_mask,
                                                               lpips_model))
                rgba, scores = scored[scale]
                rows.append(ViewRow(person.name, cam, bucket, round(angle, 2), method, **asdict(scores),
                                    placement=place))
                if place == "calibrated":
                    png = write_png(render_dir / f"{method}_{cam}.png", rgba[..., :3])
                    renders[method][cam] = png.relative_to(out_dir).as_posix()
    result = PersonResult(person.name, source, "", rows, notes=notes, renders=renders, data_root=str(person.root),
                          placement=placement)
    if gt is not None:
        result.body = body_errors(avatar, gt, src)
        result.texture = texture_errors(person, avatar, textures)
    return result


def _fitted_joints(avatar) -> tuple[np.ndarray, np.ndarray]:
    """(BODY_25 keypoints (25, 3) of the fit in the source camera's frame, available (25,) bool)."""
    model = avatar.body.model
    with torch.no_grad():
        kp = model.keypoints(model(avatar.fit.params)).part("body")
    return kp.points[0].double().cpu().numpy(), kp.available.cpu().numpy().astype(bool)


def scale_reference(person: EvalPerson, probe, source: str, avatar, gt: GroundTruthBody | None) -> dict:
    """The person's real size for the scale-aligned placement: {depth_scale, reference, joints}.

    The reference is the ground truth's BODY_25 joints on synthetic data, else the joints triangulated from every
    view's own BODY_25 keypoints (the probe workspaces) through the calibrations: the other views give one number,
    the person's size, never the pose or the position. depth_scale is None (and `reference` says why) when fewer
    than three joints are known."""
    src = person.cameras[source]
    fitted, available = _fitted_joints(avatar)
    if gt is not None:
        ref = gt.joints_world.double().cpu().numpy() @ np.asarray(src.R).T + np.asarray(src.t)
        ok, what = available.copy(), "ground-truth joints"
    else:
        pts, conf, proj = [], [], []
        for cam, c in person.cameras.items():
            kp, rgb = probe_body25(probe, cam), probe(cam).rgb(cam)
            if kp is None or not rgb.is_file():
                continue
            h, w = read_rgb(rgb).shape[:2]
            kp[:, 0] *= c.size[0] / w  # the probe's image may be a resized copy of the view
            kp[:, 1] *= c.size[1] / h
            pts.append(kp[:, :2])
            conf.append(kp[:, 2])
            proj.append(np.asarray(c.K) @ np.hstack([np.asarray(c.R), np.asarray(c.t).reshape(3, 1)]))
        if len(pts) < 2:
            return {"depth_scale": None, "reference": "fewer than two views with keypoints", "joints": 0}
        world, ok = triangulate_points(np.stack(pts), np.stack(conf), np.stack(proj))
        ref = world @ np.asarray(src.R).T + np.asarray(src.t)
        ok &= available
        what = f"joints triangulated from {len(pts)} views"
    s = depth_scale(fitted, ref, ok)
    return {"depth_scale": round(s, 5) if math.isfinite(s) else None,
            "reference": what if math.isfinite(s) else f"{what}: fewer than three joints", "joints": int(ok.sum())}


def texture_errors(person: EvalPerson, avatar, textures: dict) -> dict:
    """Per method: the mean absolute error (0..255) against the ground-truth texture over the body's texels
    (``uv_mae``) and over the back's print region (``print_back_mae``): the back texels that the front-back
    correspondence maps onto the front-only print, i.e. where a copy of the front would put the print. On the
    ground truth that region is the plain back, so a method that prints the logo on the back scores badly."""
    T = int(avatar.texture.shape[0])
    gt_tex = cv2.resize(read_rgb(person.gt_path("texture.png")), (T, T), interpolation=cv2.INTER_AREA)
    prints = cv2.resize(read_mask(person.gt_path("prints_mask.png")).astype(np.uint8), (T, T),
                        interpolation=cv2.INTER_NEAREST) > 0
    rest = avatar.body.model.rest_vertices
    fb = build_front_back_map(rest, avatar.layout, T)
    src = fb.source.cpu().numpy().reshape(-1)  # (T*T,) corresponding texel through the body, -1 where none
    flat_prints = prints.reshape(-1)
    region = (src >= 0) & flat_prints[np.clip(src, 0, None)] & ~flat_prints
    region = region.reshape(T, T)
    inside = texel_map(avatar.layout, T).inside.cpu().numpy()
    out = {}
    for method, (texture, _) in textures.items():
        if texture is None:  # a neural avatar's look is its renderer's, not an RGB texture: scored in the views only
            continue
        diff = np.abs(texture.astype(np.float32) - gt_tex.astype(np.float32)).mean(-1)
        out[method] = {"uv_mae": round(float(diff[inside].mean()), 3),
                       "print_back_mae": round(float(diff[region].mean()), 3) if region.any() else None}
    return out


def body_errors(avatar, gt: GroundTruthBody, src) -> dict:
    """Fitted BODY_25 keypoints (source camera -> world through the calibration) against the ground truth's, in
    mm: MPJPE aligned at the mid-hip, PA-MPJPE; the standing heights (rest pose) and their difference."""
    model = avatar.body.model
    pts_cam, ok = _fitted_joints(avatar)
    pts_cam = pts_cam[ok]
    pts_world = (pts_cam - src.t) @ src.R  # R^T (x - t), row vectors
    gt_pts = gt.joints_world.double().cpu().numpy()[ok]
    root = int(np.nonzero(np.nonzero(ok)[0] == 8)[0][0]) if ok[8] else 0  # MidHip
    fitted_h = rest_height(model, avatar.fit.params)
    out = {"mpjpe_mm": round(1000 * mpjpe(pts_world, gt_pts, root), 2),
           "pa_mpjpe_mm": round(1000 * pa_mpjpe(pts_world, gt_pts), 2),
           "height_m": round(fitted_h, 4)}
    gt_h = rest_height(model, gt.params) if gt.params is not None else gt.height_m
    if gt_h:
        out["gt_height_m"] = round(float(gt_h), 4)
        out["height_error_mm"] = round(1000 * (fitted_h - float(gt_h)), 1)
    return out


__all__ = ["METHODS", "PLACEMENTS", "scale_reference", "choose_source", "write_source_photo", "score_person",
           "rest_height"]
