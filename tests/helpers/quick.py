"""A quick whole-pipeline config for tests that run photos through every stage (the client tests): few fit
iterations, a 256^2 texture, a 1 s turntable at 8 fps on a small canvas, one thread."""

from __future__ import annotations


def quick_pipeline(clips: list[str] | None = None, size: int = 160) -> dict:
    """The config overrides; `clips`: the GLB's clips (default: the turntable alone)."""
    return {"ingest": {"max_side": 512},
            "fit": {"camera_iterations": 4, "body_iterations": 3, "detail_iterations": 2},
            "avatar": {"classic": {"texture_size": 256}},
            "render": {"seconds": 1.0, "fps": 8.0, "view_size": [size, size], "image_size": [size, size]},
            "export": {"clips": list(clips or ["turntable"])}, "runtime": {"threads": 1}}
