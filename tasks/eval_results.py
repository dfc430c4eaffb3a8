"""The evaluation's result records and their cache: one ``<out>/results/<person>.json`` per person, carrying the key
it was computed under (the avatar's stage keys, the dataset files' bytes, the eval config, `EVAL_VERSION`), so a
second ``dinar eval`` recomputes only what changed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tasks.config import PipelineConfig, to_dict
from tasks.eval_data import EvalPerson
from tasks.workspace import Workspace, atomic_write_json, file_sha256

EVAL_VERSION = "3"  # 2: classic is rendered with its hair volume; 3: scale-aligned placement rows


@dataclass
class ViewRow:
    """One (view, method) comparison; metric fields None when the view could not be scored (see `error`)."""

    person: str
    view: str
    bucket: str
    angle_deg: float
    method: str
    psnr: float | None = None
    ssim: float | None = None
    ms_ssim: float | None = None
    lpips: float | None = None
    iou: float | None = None
    error: str | None = None
    placement: str = "calibrated"
    """One of :data:`PLACEMENTS`."""


@dataclass
class PersonResult:
    person: str
    source: str
    key: str
    rows: list[ViewRow]
    body: dict = field(default_factory=dict)
    """Synthetic data: mpjpe_mm, pa_mpjpe_mm, height_error_mm (fitted vs ground truth)."""
    texture: dict = field(default_factory=dict)
    """Synthetic data, per method: uv_mae (texture error in UV space), print_back_mae (the back's print region)."""
    notes: list[str] = field(default_factory=list)
    renders: dict = field(default_factory=dict)
    """{method: {view: relative path of the render PNG}} for the grids."""
    data_root: str = ""
    """The person's folder in the dataset."""
    placement: dict = field(default_factory=dict)
    """depth_scale (the scale-aligned placement's factor), reference (what it was measured against), joints."""


def result_key(person: EvalPerson, ws: Workspace, cfg: PipelineConfig, source: str, methods: list[str]) -> str:
    """sha256 over the eval version and config, the source choice, the avatar's fit/avatar stage keys and outputs,
    the bytes of every file of the person's data folder, and for method `neural` the model's bytes and the
    `neural` section (DDIM steps and seed change its avatar)."""
    stages = ws.read_manifest()["stages"]
    ckpt = Path(cfg.avatar.checkpoint) if "neural" in methods and cfg.avatar.checkpoint else None
    payload = {"version": EVAL_VERSION, "eval": to_dict(cfg.eval), "methods": methods, "source": source,
               "stages": {s: [stages.get(s, {}).get("cache_key"), stages.get(s, {}).get("outputs")]
                          for s in ("fit", "avatar")},
               "data": [[p.relative_to(person.root).as_posix(), file_sha256(p)] for p in person.files()],
               "neural": [file_sha256(ckpt), to_dict(cfg.neural)] if ckpt is not None and ckpt.is_file() else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cached_result(path: Path, key: str) -> PersonResult | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("key") != key:
        return None
    data["rows"] = [ViewRow(**r) for r in data["rows"]]
    return PersonResult(**data)


def write_result(path: Path, result: PersonResult) -> Path:
    return atomic_write_json(path, asdict(result))
