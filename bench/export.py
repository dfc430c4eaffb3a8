"""Export timings and sizes: writing a 10 s 512x512 30 fps MP4, and a GLB of an SMPL-X-sized avatar.

MP4: 300 frames cut from a sample photo with a moving crop (photo-like content, so the encoder works as hard as on a
rendered avatar over a white background, or harder), written by each backend (PyAV, imageio-ffmpeg) with x264
presets 'veryfast' (the default) and 'medium'; frames are prepared beforehand, so only encoding and muxing are timed.
GLB: the synthetic SMPL-X body of the test suite (10,475 vertices, 20,908 faces, 55 joints) with a 1024^2 texture
resized from the same photo, without animation and with a 10 s 30 fps walk; plus the Khronos validator's verdict
when it is installed.

Run: ``.venv/bin/python -m bench.run export`` or ``.venv/bin/python bench/export.py``. Timings are the best of
``repeats`` runs; other processes on the machine make them noisy (the 1-minute load average is recorded).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _photo() -> np.ndarray:
    import cv2

    img = cv2.cvtColor(cv2.imread(str(ROOT / "data" / "samples" / "sports2d_1.png")), cv2.COLOR_BGR2RGB)
    side = min(img.shape[:2])
    return img[:side, :side]


def run(repeats: int = 2, seconds: float = 10.0, fps: float = 30.0, size: int = 512) -> dict:
    import cv2

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from dinar_core.export.glb import GLBAnimation, SkinnedMesh, write_glb
    from dinar_core.export.gltf_validator import find_validator, validate_gltf
    from dinar_core.export.video import VideoConfig, pyav_has_h264, read_video_info, write_mp4
    from dinar_core.motion import walk
    from tests.helpers.synthetic_smplx import PARENTS, build_synthetic_smplx

    photo = _photo()
    base = cv2.resize(photo, (size + 88, size + 88))
    n = int(round(seconds * fps))
    frames = np.stack([base[int(44 + 40 * np.sin(2 * np.pi * k / 60)):][:size, 44:44 + size] for k in range(n)])
    out: dict = {"video": {"frames": n, "size": [size, size], "fps": fps},
                 "load_average_1min_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in (["pyav"] if pyav_has_h264() else []) + ["imageio"]:
            for preset in ("veryfast", "medium"):
                best = float("inf")
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    info = write_mp4(Path(tmp) / "v.mp4", frames, VideoConfig(fps=fps, backend=backend,
                                                                              preset=preset))
                    best = min(best, time.perf_counter() - t0)
                back = read_video_info(info.path)
                out["video"][f"{backend}_{preset}"] = {"seconds": round(best, 2),
                                                       "kib": info.path.stat().st_size // 1024,
                                                       "frames_read_back": back.num_frames}

        model = build_synthetic_smplx()
        rest_joints = model["J_regressor"] @ model["v_template"]
        uv = np.random.default_rng(0).random((model["v_template"].shape[0], 2)).astype(np.float32)
        texture = cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_AREA)
        mesh = SkinnedMesh(model["v_template"], model["f"], model["weights"], PARENTS, rest_joints, uv=uv,
                           texture=texture)
        motion = walk(num_frames=n, fps=fps)
        glb: dict = {"vertices": int(mesh.vertices.shape[0]), "faces": int(mesh.faces.shape[0]), "joints": 55,
                     "texture": [1024, 1024]}
        for name, anim in (("static", None),
                           ("walk_10s", GLBAnimation(motion.smplx_full_pose(), fps, motion.transl))):
            t0 = time.perf_counter()
            info = write_glb(Path(tmp) / f"{name}.glb", mesh, anim)
            entry = {"seconds": round(time.perf_counter() - t0, 2), "mb": round(info.size_bytes / 1e6, 2)}
            if find_validator() is not None:
                report = validate_gltf(info.path)
                entry["validator"] = {"errors": report.errors, "warnings": report.warnings}
            glb[name] = entry
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(texture).save(buf, format="PNG", compress_level=6)
        glb["texture_png_mb"] = round(len(buf.getvalue()) / 1e6, 2)
        out["glb"] = glb
    out["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
