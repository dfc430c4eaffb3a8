"""``RUNS/report.html``: one row per person with its pictures, video, 3D view, stage statuses and errors.

Pictures and videos are linked, not copied: the report sits beside the workspaces and refers to their files
relatively, so the whole runs folder can be moved or served as it is. The 3D view of each person's GLB is Google's
``<model-viewer>`` (npm, ``tools/model-viewer``), copied into ``RUNS/report_assets/`` with each GLB as a small
script (``<person>.glb.js``: a data URL), because browsers refuse ``fetch`` of ``file://`` URLs and the report must
work opened from the disk, offline. Each person's GLB script loads only when its viewer scrolls into sight.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Callable

from tasks.status import person_status, summarize
from tasks.discover import find_workspaces
from tasks.workspace import REPORT_ASSETS, Workspace, atomic_write_text, now_iso

# (label, function of (workspace, frame) -> path). Later stages append their pictures here.
REPORT_PICTURES: list[tuple[str, Callable[[Workspace, str], Path]]] = [
    ("photo", lambda ws, f: ws.rgb(f)),
    ("mask", lambda ws, f: ws.segm(f)),
    ("keypoints", lambda ws, f: ws.overlay(f)),
    ("fit", lambda ws, f: ws.fit_dir / f"{f}_overlay.png"),
    ("fit, side", lambda ws, f: ws.fit_dir / f"{f}_side.png"),  # the 3D pose the 2D overlay cannot show
]

# Pictures of the whole person (not per frame): the avatar's texture and its rendered views.
PERSON_PICTURES: list[tuple[str, Callable[[Workspace], Path]]] = [
    ("texture", lambda ws: ws.avatar_dir / "texture.png"),
    ("provenance", lambda ws: ws.avatar_dir / "provenance.png"),
    ("front", lambda ws: ws.renders_dir / "front.png"),
    ("back", lambda ws: ws.renders_dir / "back.png"),
    ("side", lambda ws: ws.renders_dir / "side.png"),
]
# Files linked per person (the video also plays inline, the GLB also turns in the 3D viewer).
PERSON_LINKS: list[tuple[str, Callable[[Workspace], Path]]] = [
    ("video", lambda ws: ws.renders_dir / "video.mp4"),
    ("glb", lambda ws: ws.avatar_dir / "avatar.glb"),
]
VIEWER_LIMIT = 50
"""Persons shown in 3D (each GLB is copied once more, as a script, ~1.33x its size): beyond it the GLB is linked."""
VIEWER_FILE = "model-viewer-umd.min.js"
DEFAULT_VIEWER = (Path(__file__).resolve().parents[1] / "tools" / "model-viewer" / "node_modules" / "@google"
                  / "model-viewer" / "dist" / VIEWER_FILE)


def viewer_source() -> Path | None:
    """The ``<model-viewer>`` build the report copies (``$DINAR_MODEL_VIEWER``, else the npm install of
    ``tools/model-viewer``), or None when it is not installed."""
    env = os.environ.get("DINAR_MODEL_VIEWER")
    path = Path(env) if env else DEFAULT_VIEWER
    return path if path.is_file() else None


def _stale(dst: Path, src: Path) -> bool:
    return not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime


def write_glb_script(glb: Path, person: str, assets: Path) -> Path:
    """``assets/<person>.glb.js``: the GLB as a data URL in ``window.DINAR_GLB[person]`` (rewritten only when the
    GLB is newer)."""
    out = assets / f"{person}.glb.js"
    if _stale(out, glb):
        data = base64.b64encode(glb.read_bytes()).decode("ascii")
        atomic_write_text(out, f"(window.DINAR_GLB = window.DINAR_GLB || {{}})[{json.dumps(person)}] = "
                               f'"data:model/gltf-binary;base64,{data}";\n')
    return out


_VIEWER_JS = """
(function () {
  var views = document.querySelectorAll("model-viewer.viewer3d");
  function load(mv) {
    if (mv.dataset.requested) return;
    mv.dataset.requested = "1";
    var s = document.createElement("script");
    s.src = mv.dataset.glb;
    s.onload = function () { mv.src = (window.DINAR_GLB || {})[mv.dataset.person]; };
    s.onerror = function () { mv.dataset.error = "the GLB script did not load"; };
    document.head.appendChild(s);
  }
  views.forEach(function (mv) {
    mv.addEventListener("load", function () {
      mv.dataset.loaded = "1";
      mv.dataset.animations = mv.availableAnimations.join(",");
    });
    mv.addEventListener("error", function () { mv.dataset.error = "the GLB did not load"; });
  });
  if ("IntersectionObserver" in window) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) load(e.target); });
    }, {rootMargin: "400px"});
    views.forEach(function (v) { seen.observe(v); });
  } else {
    views.forEach(load);
  }
})();
"""

EVALUATION_SECTION = "evaluation.html"
"""An HTML fragment that `dinar eval` writes into the runs folder it made; included at the end of the report."""

_COLORS = {"done": "#2e7d32", "failed": "#c62828", "blocked": "#ef6c00", "pending": "#757575", "skipped": "#757575"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}
img{max-height:220px;max-width:220px;display:block}figure{margin:0 6px 6px 0;display:inline-block}
figcaption{font-size:12px;color:#555}.st{font-weight:600}.err{color:#c62828;font-size:12px;max-width:360px}
.warn{color:#ef6c00;font-size:12px;max-width:360px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px;border:1px solid #999}
.legend,.metrics{font-size:12px;color:#333}.metrics td,.metrics th{padding:2px 6px}
video,model-viewer{width:220px;height:260px;background:#f4f4f4;display:block}
"""

# The provenance image's colours (dinar_core.texture.inpaint.PROVENANCE_COLOURS) and what they mean; kept here so
# the report needs no torch import.
PROVENANCE_LEGEND = [("observed", (60, 180, 75), "seen in the photo"), ("mirrored", (0, 130, 200), "left/right mirror"),
                     ("front_back", (245, 130, 48), "copied front to back"),
                     ("filled", (230, 25, 75), "synthesised or filled")]

# Fit metrics shown per frame: (label, key in fit/metrics.json's frame record or its `plausibility`, format).
FIT_METRICS = [("mask IoU", "mask_iou", "{:.3f}"), ("reprojection", "reprojection_error_rel", "{:.2%}"),
               ("height", "height_m", "{:.2f} m"), ("waist girth", "waist_girth_m", "{:.2f} m"),
               ("girth change", "girth_change_m", "{:+.3f} m"), ("penetration", "penetration_mm", "{:.0f} mm"),
               ("feet gap", "feet_gap_mm", "{:.0f} mm")]


def _legend(ws: Workspace) -> str:
    """The provenance colours with each one's share of the texture (``avatar/avatar.json`` ``fractions``)."""
    try:
        fractions = json.loads((ws.avatar_dir / "avatar.json").read_text("utf-8")).get("fractions") or {}
    except (OSError, ValueError):
        fractions = {}
    items = []
    for key, (r, g, b), meaning in PROVENANCE_LEGEND:
        share = fractions.get(key)
        if share is None and key == "front_back":
            continue  # the default back mode copies nothing front to back
        tail = f" {share:.0%}" if isinstance(share, (int, float)) else ""
        items.append(f'<span style="background:rgb({r},{g},{b})"></span>{html.escape(meaning)}{tail}')
    return f'<div class="legend">provenance: {"".join(items)}</div>'


def _fit_metrics(ws: Workspace) -> str:
    """A small table of the fit's 2D and 3D checks per frame (``fit/metrics.json``)."""
    try:
        frames = json.loads((ws.fit_dir / "metrics.json").read_text("utf-8")).get("frames") or {}
    except (OSError, ValueError):
        return ""
    if not isinstance(frames, dict) or not frames:
        return ""
    rows = []
    for frame, rec in list(frames.items())[:4]:
        if not isinstance(rec, dict):
            continue
        both = {**rec, **(rec.get("plausibility") or {})}
        cells = []
        for _, key, fmt in FIT_METRICS:
            v = both.get(key)
            cells.append(f"<td>{html.escape(fmt.format(v))}</td>" if isinstance(v, (int, float)) else "<td>-</td>")
        limits = both.get("limit_violations") or []
        cells.append(f"<td>{len(limits)}</td>")
        rows.append(f"<tr><th>{html.escape(str(frame))}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in FIT_METRICS) + "<th>joints beyond limit</th>"
    return f'<table class="metrics"><tr><th>fit</th>{head}</tr>{"".join(rows)}</table>'


def _media(ws: Workspace, runs: Path, viewer: bool) -> list[str]:
    """The inline video and, with the viewer installed, the 3D view of the person's GLB."""
    parts = []
    video = ws.renders_dir / "video.mp4"
    if video.is_file():
        rel = html.escape(video.relative_to(runs).as_posix())
        parts.append(f'<figure><video src="{rel}" controls muted loop playsinline preload="metadata"></video>'
                     f"<figcaption>video</figcaption></figure>")
    glb = ws.avatar_dir / "avatar.glb"
    if viewer and glb.is_file():
        script = write_glb_script(glb, ws.person, runs / REPORT_ASSETS)
        parts.append(f'<figure><model-viewer class="viewer3d" data-person="{html.escape(ws.person)}" '
                     f'data-glb="{html.escape(script.relative_to(runs).as_posix())}" camera-controls autoplay '
                     f'alt="{html.escape(ws.person)} in 3D"></model-viewer><figcaption>3D: drag to turn'
                     f"</figcaption></figure>")
    return parts


def _cell_pictures(ws: Workspace, runs: Path, viewer: bool = False) -> str:
    parts = []
    for frame in ws.frames()[:4]:
        for label, where in REPORT_PICTURES:
            path = where(ws, frame)
            if path.is_file():
                rel = path.relative_to(runs).as_posix()
                parts.append(f'<figure><a href="{html.escape(rel)}"><img src="{html.escape(rel)}" '
                             f'alt="{label}"></a><figcaption>{html.escape(frame)}: {label}</figcaption></figure>')
    for label, where in PERSON_PICTURES:
        path = where(ws)
        if path.is_file():
            rel = path.relative_to(runs).as_posix()
            parts.append(f'<figure><a href="{html.escape(rel)}"><img src="{html.escape(rel)}" '
                         f'alt="{label}"></a><figcaption>{label}</figcaption></figure>')
            if label == "provenance":
                parts.append(_legend(ws))
    parts += _media(ws, runs, viewer)
    parts.append(_fit_metrics(ws))
    links = []
    for label, where in PERSON_LINKS:
        path = where(ws)
        if path.is_file():
            links.append(f'<a href="{html.escape(path.relative_to(runs).as_posix())}">{label}</a>')
    if links:
        parts.append(f"<div>{' | '.join(links)}</div>")
    return "".join(parts) or "<em>no pictures yet</em>"


def write_report(runs: Path) -> Path:
    """Write ``runs/report.html`` from the manifests of every workspace in `runs`; returns its path."""
    runs = Path(runs)
    workspaces = find_workspaces(runs)
    statuses = [person_status(ws) for ws in workspaces]
    summary = summarize(statuses)
    stage_cols = list(statuses[0]["stages"]) if statuses else []
    viewer = viewer_source()
    show_3d = viewer is not None and any((ws.avatar_dir / "avatar.glb").is_file() for ws in workspaces)
    viewer_html = "" if viewer is not None else \
        '<p class="warn">No 3D viewer: `make setup` installs it (npm, tools/model-viewer).</p>'
    if show_3d:
        copy = runs / REPORT_ASSETS / VIEWER_FILE
        if _stale(copy, viewer) or copy.stat().st_size != viewer.stat().st_size:
            atomic_write_text(copy, viewer.read_text("utf-8"))
        if len(workspaces) > VIEWER_LIMIT:
            viewer_html = (f'<p class="warn">3D views for the first {VIEWER_LIMIT} persons; the others\' GLBs are '
                           f"linked.</p>")
        viewer_html += f'<script src="{REPORT_ASSETS}/{VIEWER_FILE}"></script><script>{_VIEWER_JS}</script>'
    rows = []
    for i, (ws, st) in enumerate(zip(workspaces, statuses)):
        cells = []
        for stage in stage_cols:
            rec = st["stages"][stage]
            color = _COLORS.get(rec["status"], "#222")
            text = f'<span class="st" style="color:{color}">{rec["status"]}</span>'
            if rec.get("seconds") is not None and rec["status"] == "done":
                text += f' <small>{rec["seconds"]:.1f} s</small>'
            if rec.get("error"):
                text += f'<div class="err">{html.escape(rec["error"])}</div>'
            for w in rec.get("warnings") or []:
                text += f'<div class="warn">{html.escape(w)}</div>'
            cells.append(f"<td>{text}</td>")
        pictures = _cell_pictures(ws, runs, show_3d and i < VIEWER_LIMIT)
        rows.append(f"<tr><th>{html.escape(ws.person)}</th><td>{pictures}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(s)}</th>" for s in stage_cols)
    # `dinar eval` writes its results as a section beside the workspaces it made (tasks/eval_report.py).
    section = runs / EVALUATION_SECTION
    evaluation = section.read_text("utf-8") if section.is_file() else ""
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>dinar-pipeline report</title>"
            f"<style>{_STYLE}</style></head><body><h1>dinar-pipeline report</h1>"
            f"<p>{summary['persons']} persons: {summary['complete']} complete, {summary['with_failures']} with a "
            f"failure, {summary['blocked']} blocked. Written {now_iso()}.</p>"
            f"<table><tr><th>person</th><th>pictures</th>{head}</tr>{''.join(rows)}</table>{evaluation}"
            f"{viewer_html}</body></html>\n")
    out = runs / "report.html"
    runs.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, body)
    return out
