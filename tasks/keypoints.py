"""Stage `keypoints`: ``rgb/`` + ``segm/`` -> ``openpose/<frame>_keypoints.json`` and ``report/<frame>_overlay.png``.

Backends (``keypoints.backend``): ``mediapipe`` (holistic, bundled models, offline) run on the mask's box
enlarged by ``crop_margin``; ``openpose`` imports the user's OpenPose JSON (``keypoints.openpose_dir``);
``onnx`` runs a local RTMPose-style model on the mask's box. The JSON is OpenPose's version-1.3 layout, in pixels
of the stored photo. The overlay shows the tinted mask and the skeleton, hands and face.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from dinar_core.errors import KeypointsError, NoPersonError
from dinar_core.keypoints import Keypoints2D, detect_in_box, load_openpose_json
from dinar_core.overlay import draw_overlay
from dinar_core.segmentation import mask_box
from tasks.artifacts import (find_user_file, frame_source_stem, read_mask, read_rgb, remove_stale, write_keypoints,
                             write_png)
from tasks.config import PipelineConfig
from tasks.runner import Stage, StageOutput
from tasks.workspace import Workspace


def _user_json_path(ws: Workspace, cfg: PipelineConfig, frame: str) -> Path | None:
    folder = Path(cfg.keypoints.openpose_dir).expanduser()
    names = [frame] + [s for s in [frame_source_stem(ws, frame)] if s and s != frame]
    return find_user_file(folder, [f"{n}_keypoints" for n in names], (".json",))


def _ingest_scale(ws: Workspace, frame: str) -> float:
    """Factor from the user's original photo to the stored one (ingest may have downscaled it; 1.0 otherwise)."""
    info = ws.stage_record("ingest").get("info", {}).get("frames", {}).get(frame, {})
    orig, size = info.get("original_size"), info.get("size")
    if not info.get("downscaled") or not orig or not size:
        return 1.0
    # original_size is before EXIF rotation: compare the longer sides, which rotation does not change.
    return max(size) / max(orig)


def keypoints_inputs(ws: Workspace, cfg: PipelineConfig) -> list[Path]:
    """The stored photos and masks, plus the user's OpenPose JSON for the `openpose` backend."""
    frames = ws.frames()
    inputs = [ws.rgb(f) for f in frames] + [ws.segm(f) for f in frames]
    if cfg.keypoints.backend == "openpose" and cfg.keypoints.openpose_dir:
        inputs += [p for f in frames if (p := _user_json_path(ws, cfg, f)) is not None]
    return inputs


def _make_detector(cfg: PipelineConfig):
    c = cfg.keypoints
    if c.backend == "mediapipe":
        from dinar_core.keypoints.mediapipe import MediapipeKeypointDetector

        return MediapipeKeypointDetector(c.min_detection_confidence)
    if c.backend == "onnx":
        from dinar_core.keypoints.onnx import OnnxPoseDetector

        return OnnxPoseDetector(c.onnx_model, device=c.device)
    return None


class _Confident:
    """Adapter: the mediapipe detector with the configured joint-confidence floor (a `FullImageDetector`)."""

    def __init__(self, detector, min_confidence: float):
        self.detector, self.min_confidence = detector, min_confidence

    def detect(self, rgb: np.ndarray) -> Keypoints2D | None:
        return self.detector.detect(rgb, self.min_confidence)


def _drop_weak(kp: Keypoints2D, min_confidence: float) -> Keypoints2D:
    for arr in (kp.body, kp.left_hand, kp.right_hand, kp.face):
        arr[arr[:, 2] < min_confidence] = 0.0
    return kp


def keypoints(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    """Write ``openpose/<frame>_keypoints.json`` and ``report/<frame>_overlay.png`` for every frame."""
    c = cfg.keypoints
    if c.backend == "openpose" and not c.openpose_dir:
        raise KeypointsError("keypoints.backend=openpose needs keypoints.openpose_dir",
                             fix="set keypoints.openpose_dir=/folder/with/<frame>_keypoints.json files")
    frames = ws.frames()
    json_out, overlays, warns, info = [], [], [], {}
    t_all = time.perf_counter()
    with ExitStack() as stack:
        detector = _make_detector(cfg)
        if detector is not None:
            stack.callback(detector.close)  # one model per stage call, closed even when a frame fails
        for frame in frames:
            t0 = time.perf_counter()
            rgb_path = ws.rgb(frame)
            name = f"{ws.person}/{ws.rel(rgb_path)}"
            rgb = read_rgb(rgb_path)
            h, w = rgb.shape[:2]
            mask = read_mask(ws.segm(frame))
            if mask.shape != (h, w):
                raise KeypointsError(f"{ws.segm(frame)} is {mask.shape[1]}x{mask.shape[0]}, its photo {w}x{h}",
                                     fix="re-run the segment stage (dinar rerun --from segment)")
            box = mask_box(mask) if mask.any() else None
            people = 1
            if c.backend == "openpose":
                src = _user_json_path(ws, cfg, frame)
                if src is None:
                    raise KeypointsError(f"no OpenPose JSON for frame {frame!r} in {c.openpose_dir} "
                                         f"(looked for {frame}_keypoints.json)",
                                         fix=f"add {frame}_keypoints.json or use keypoints.backend=mediapipe")
                imported = load_openpose_json(src)
                scale = _ingest_scale(ws, frame)
                kp = imported.keypoints.scaled(scale, scale) if scale != 1.0 else imported.keypoints
                people = imported.people
            elif c.backend == "onnx":
                if box is None:
                    raise NoPersonError(f"the mask of {name} is empty", fix="re-run segment or give a mask")
                kp = _drop_weak(detector.detect(rgb, box), c.min_keypoint_confidence)
            else:
                finder = _Confident(detector, c.min_keypoint_confidence)
                kp = detect_in_box(finder, rgb, box, c.crop_margin)
                if kp is None and box is not None:  # a crop can cut context the detector needs: try it all
                    kp = detect_in_box(finder, rgb, None)
                if kp is None:
                    raise NoPersonError(f"no person found in {name} by the pose detector",
                                        fix="use a photo where the whole person is clearly visible, or give "
                                            "OpenPose JSON (keypoints.backend=openpose)")
            if people > 1:
                warns.append(f"MultiplePeople: {name} has {people} people in its keypoints; kept the largest")
            if not kp.has_torso(c.torso_confidence):
                raise KeypointsError(
                    f"no torso found in {name}: fewer than two of the shoulders and hips (one a shoulder) have "
                    f"confidence above keypoints.torso_confidence={c.torso_confidence}",
                    fix="use a photo where the person's shoulders and hips are visible and unoccluded")
            json_out.append(write_keypoints(ws, frame, kp))
            overlays.append(write_png(ws.overlay(frame), draw_overlay(rgb, mask, kp, c.min_keypoint_confidence)))
            info[frame] = {
                "body_joints": int((kp.body[:, 2] > 0).sum()),
                "left_hand": bool((kp.left_hand[:, 2] > 0).any()),
                "right_hand": bool((kp.right_hand[:, 2] > 0).any()),
                "face": bool((kp.face[:, 2] > 0).any()),
                "people": people,
                "seconds": round(time.perf_counter() - t0, 3),
            }
    for stale in remove_stale(ws.openpose_dir, {p.name for p in json_out}, "*_keypoints.json"):
        # Only this stage's overlays of frames that are gone: report/ also holds other stages' pictures.
        ws.overlay(stale.name[: -len("_keypoints.json")]).unlink(missing_ok=True)
    seconds = time.perf_counter() - t_all
    return StageOutput(outputs=json_out + overlays, warnings=warns,
                       info={"backend": c.backend, "frames": info,
                             "seconds_per_frame": round(seconds / max(1, len(frames)), 3)})


STAGE = Stage(name="keypoints", version="1", after=("segment",), sections=("keypoints",), inputs=keypoints_inputs,
              run=keypoints, tools=("mediapipe", "opencv-python-headless"))
