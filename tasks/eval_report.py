"""What a person looks at after `dinar eval`: ``eval.json``, ``summary.md``, plots, grids and the report section.

- ``EVAL/eval.json``: ``{"rows": [{"person", "view", "bucket", "angle_deg", "method", "psnr", "ssim", "ms_ssim",
  "lpips", "iou"}, ...], "persons": {...}, "errors": [...]}``
- ``EVAL/summary.md``: mean and spread (standard deviation) per method and bucket, the best method per metric and
  bucket in bold; on synthetic data the body and UV-texture errors.
- ``EVAL/plots/<metric>_vs_angle.png``: each metric against the view angle, one colour per method.
- ``EVAL/grids/<person>.png``: the source photo and the real target views, then each method's renders.
- ``EVAL/runs/evaluation.html``: the summary as an HTML section that ``report.html`` includes.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from dinar_core.evaluation import BUCKETS
from tasks.config import PipelineConfig
from tasks.report import EVALUATION_SECTION, write_report
from tasks.workspace import atomic_write_json, atomic_write_text

METRICS = ("psnr", "ssim", "ms_ssim", "lpips", "iou")
METHOD_ORDER = ("flat", "mirror", "copy", "classic", "classic-gtfit", "neural")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "ms_ssim": True, "lpips": False, "iou": True}


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return float(np.mean(vals)), float(np.std(vals))


def summarize_rows(rows: list[dict], placement: str = "calibrated") -> dict:
    """{method: {bucket: {metric: (mean, std, n) or None}}} over the rows of one placement
    (``tasks.evaluate.PLACEMENTS``; rows without one are 'calibrated') without an error."""
    groups: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        if r.get("error") or r.get("placement", "calibrated") != placement:
            continue
        for m in METRICS:
            groups[r["method"]][r["bucket"]][m].append(r.get(m))
    out: dict = {}
    for method, buckets in groups.items():
        out[method] = {}
        for bucket, metrics in buckets.items():
            out[method][bucket] = {}
            for m, vals in metrics.items():
                ms = _mean_std(vals)
                out[method][bucket][m] = None if ms is None else (ms[0], ms[1], len([v for v in vals if v is not None]))
    return out


def best_methods(summary: dict) -> dict:
    """{(bucket, metric): method} with the best mean, for the metrics where one method is strictly best (a tie,
    such as the IoU of methods that share one body, names none)."""
    best = {}
    for bucket in BUCKETS:
        for m in METRICS:
            cands = [(v[bucket][m][0], meth) for meth, v in summary.items() if bucket in v and v[bucket].get(m)]
            if len(cands) > 1:
                ordered = sorted(cands, reverse=HIGHER_IS_BETTER[m])
                if abs(ordered[0][0] - ordered[1][0]) > 1e-9:
                    best[(bucket, m)] = ordered[0][1]
    return best


def _fmt(cell, metric: str) -> str:
    if cell is None:
        return "-"
    mean, std, n = cell
    digits = 2 if metric == "psnr" else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _bucket_tables(summary: dict, heading: str) -> list[str]:
    methods = sorted(summary, key=lambda m: METHOD_ORDER.index(m)
                     if m in METHOD_ORDER else 99)
    best = best_methods(summary)
    lines = []
    for bucket in BUCKETS:
        if not any(bucket in summary[m] for m in methods):
            continue
        n = max((summary[m][bucket]["psnr"][2] for m in methods if bucket in summary[m]
                 and summary[m][bucket].get("psnr")), default=0)
        lines += [f"## {bucket} views ({n}){heading}", "", "| method | " + " | ".join(METRICS) + " |",
                  "|---|" + "---|" * len(METRICS)]
        for meth in methods:
            if bucket not in summary[meth]:
                continue
            cells = []
            for m in METRICS:
                text = _fmt(summary[meth][bucket].get(m), m)
                cells.append(f"**{text}**" if best.get((bucket, m)) == meth and text != "-" else text)
            lines.append(f"| {meth} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def summary_markdown(summary: dict, persons: dict, errors: list, notes: list[str], scaled: dict | None = None
                     ) -> str:
    """`summary` (placed by the calibrations) and `scaled` (the scale-aligned placement) as tables per bucket,
    then the body, texture and notes sections."""
    lines = ["# Evaluation", "",
             "Avatar made from one view, rendered into each other calibrated view, compared inside the union of "
             "the rendered and the real person masks (mean ± standard deviation over views; **bold** = best "
             "method of the bucket; LPIPS lower is better, the rest higher).", ""]
    lines += _bucket_tables(summary, "")
    if scaled:
        lines += ["One photo cannot tell a big person far away from a small one close by, and in the other views "
                  "that error of size becomes an error of place. Scale-aligned: the avatar is also scaled about the "
                  "source camera's centre to the person's size (ground-truth joints, or joints triangulated from "
                  "all views' keypoints), which changes nothing in the source view; as PA-MPJPE to MPJPE.", ""]
        lines += _bucket_tables(scaled, ", scale-aligned")
    scales = {p: v["placement"] for p, v in persons.items() if (v.get("placement") or {}).get("depth_scale")}
    if scales:
        vals = [float(v["depth_scale"]) for v in scales.values() if math.isfinite(float(v["depth_scale"]))]
        if vals:
            lines += [f"Depth scale of the scale-aligned placement (1 = the fit's size was right): mean "
                      f"{np.mean(vals):.3f}, |1 - s| mean {np.mean(np.abs(1 - np.asarray(vals))):.3f} over "
                      f"{len(vals)} persons.", ""]
    body = {p: v["body"] for p, v in persons.items() if v.get("body")}
    if body:
        lines += ["## Body (synthetic ground truth)", "", "| person | MPJPE mm | PA-MPJPE mm | height error mm |",
                  "|---|---|---|---|"]
        for p, b in sorted(body.items()):
            lines.append(f"| {p} | {b.get('mpjpe_mm')} | {b.get('pa_mpjpe_mm')} | {b.get('height_error_mm')} |")
        for column, (key, label) in enumerate((("mpjpe_mm", "mean mpjpe_mm"), ("pa_mpjpe_mm", "mean pa_mpjpe_mm"),
                                               ("height_error_mm", "mean abs height_error_mm"))):
            vals = [abs(b[key]) for b in body.values() if b.get(key) is not None]  # (MPJPEs are >= 0)
            if vals:
                cells = ["", "", ""]
                cells[column] = f"{np.mean(vals):.1f}"
                lines.append(f"| {label} |" + "".join(f" {c} |" if c else " |" for c in cells))
        lines.append("")
    tex = defaultdict(lambda: defaultdict(list))
    for v in persons.values():
        for meth, t in (v.get("texture") or {}).items():
            for k, val in t.items():
                if val is not None:
                    tex[meth][k].append(val)
    if tex:
        lines += ["## Texture in UV space (synthetic ground truth; mean absolute error, 0..255, lower is better)", "",
                  "`print_back` is the back's region behind the front-only print: a method that copies the front "
                  "onto the back shows the print there.", "", "| method | whole body | print_back |", "|---|---|---|"]
        for meth in sorted(tex):
            uv, pb = tex[meth]["uv_mae"], tex[meth]["print_back_mae"]
            lines.append(f"| {meth} | {np.mean(uv):.2f} | {np.mean(pb):.2f} |" if pb else
                         f"| {meth} | {np.mean(uv):.2f} | - |")
        lines.append("")
    if notes or errors:
        lines += ["## Notes", ""]
        lines += [f"- {n}" for n in notes]
        lines += [f"- {p}: {e}" for p, e in errors]
        lines.append("")
    return "\n".join(lines)


def plot_metrics(rows: list[dict], out_dir: Path) -> list[Path]:
    """One PNG per metric: the metric against the view angle, one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    methods = sorted({r["method"] for r in rows})
    rows = [r for r in rows if r.get("placement", "calibrated") == "calibrated"]
    for m in METRICS:
        pts = [(r["method"], r["angle_deg"], r[m]) for r in rows if not r.get("error") and r.get(m) is not None
               and math.isfinite(r[m])]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
        for meth in methods:
            xs = [a for mm, a, _ in pts if mm == meth]
            ys = [v for mm, _, v in pts if mm == meth]
            if xs:
                order = np.argsort(xs)
                ax.plot(np.asarray(xs)[order], np.asarray(ys)[order], marker="o", ms=3, lw=1, label=meth)
        for edge in (45, 135):
            ax.axvline(edge, color="#999", lw=0.6, ls="--")
        ax.set_xlabel("view angle to the source view (degrees)")
        ax.set_ylabel(m.upper().replace("_", "-"))
        ax.set_xlim(0, 180)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / "plots" / f"{m}_vs_angle.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def _thumb(path: Path | None, h: int) -> np.ndarray:
    if path is None or not Path(path).is_file():
        return np.full((h, h * 3 // 4, 3), 235, np.uint8)
    img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def write_grid(out_dir: Path, result: dict, views: dict[str, Path], source_photo: Path, h: int = 200) -> Path:
    """Row 0: the source photo, then the real target views; one row per method: its renders of those views."""
    targets = sorted({r["view"] for r in result["rows"]})
    rows = [[_thumb(source_photo, h)] + [_thumb(views.get(v), h) for v in targets]]
    labels = ["photo / real"]
    for meth, by_view in result.get("renders", {}).items():
        rows.append([np.full_like(rows[0][0], 255)] + [_thumb(out_dir / by_view[v] if v in by_view else None, h)
                                                        for v in targets])
        labels.append(meth)
    widths = [max(r[i].shape[1] for r in rows) for i in range(len(rows[0]))]
    canvas = np.full((h * len(rows) + 18 * len(rows), sum(widths) + 4 * len(widths), 3), 255, np.uint8)
    for ri, row in enumerate(rows):
        y = ri * (h + 18) + 18
        cv2.putText(canvas, labels[ri], (4, y - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x = 0
        for ci, img in enumerate(row):
            canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
            if ri == 0 and ci > 0:
                cv2.putText(canvas, targets[ci - 1], (x + 4, y - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80),
                            1, cv2.LINE_AA)
            x += widths[ci] + 4
    path = out_dir / "grids" / f"{result['person']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return path


def report_section(summary_md: str, images: list[Path], runs: Path) -> str:
    """The evaluation as an HTML fragment (tables from the markdown, images linked relative to `runs`)."""
    parts = ['<h2 id="evaluation">Evaluation</h2>']
    table: list[str] = []
    for line in summary_md.splitlines() + [""]:
        if line.startswith("|"):
            if set(line.replace("|", "").strip()) <= {"-"}:
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if not table else "td"
            table.append("<tr>" + "".join(
                f"<{tag}>{'<b>' + html.escape(c.strip('*')) + '</b>' if c.startswith('**') else html.escape(c)}</{tag}>"
                for c in cells) + "</tr>")
            continue
        if table:
            parts.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("## "):
            parts.append(f"<h3>{html.escape(line[3:])}</h3>")
        elif line.startswith("- "):
            parts.append(f"<div class='warn'>{html.escape(line[2:])}</div>")
        elif line and not line.startswith("# "):
            parts.append(f"<p>{html.escape(line)}</p>")
    for img in images:
        rel = Path("..") / Path(img).relative_to(runs.parent)
        parts.append(f'<figure><a href="{html.escape(rel.as_posix())}"><img src="{html.escape(rel.as_posix())}" '
                     f'alt="{html.escape(img.stem)}"></a><figcaption>{html.escape(img.stem)}</figcaption></figure>')
    return "\n".join(parts)


def write_outputs(out_dir: Path, result_paths: list[Path], errors: list, cfg: PipelineConfig) -> dict:
    """Gather the per-person results into eval.json, summary.md, plots, grids and the report section."""
    from tasks.eval_data import read_person

    results = [json.loads(Path(p).read_text("utf-8")) for p in result_paths]
    rows = [{k: r.get(k, "calibrated" if k == "placement" else None)
             for k in ("person", "view", "bucket", "angle_deg", "method", *METRICS, "error", "placement")}
            for res in results for r in res["rows"]]
    persons = {res["person"]: {k: res.get(k) for k in ("source", "body", "texture", "notes", "placement")}
               for res in results}
    notes = sorted({n for res in results for n in res.get("notes", [])})
    if not cfg.eval.lpips_weights:
        notes.insert(0, "LPIPS skipped: no weights configured (eval.lpips_weights); see docs/evaluation.md")
    eval_json = atomic_write_json(out_dir / "eval.json", {"rows": rows, "persons": persons,
                                                           "errors": [{"person": p, "error": e} for p, e in errors]})
    summary = summarize_rows(rows)
    md = summary_markdown(summary, persons, errors, notes, summarize_rows(rows, "scale-aligned"))
    summary_path = atomic_write_text(out_dir / "summary.md", md)
    images = plot_metrics(rows, out_dir)
    grids = []
    for res in results:
        views = {}
        src_root = res.get("data_root")
        if src_root:
            views = read_person(Path(src_root)).views
        grids.append(write_grid(out_dir, res, views, out_dir / "photos" / f"{res['person']}.png"))
    runs = out_dir / "runs"
    report = None
    if runs.is_dir():
        atomic_write_text(runs / EVALUATION_SECTION, report_section(md, images + grids, runs))
        report = write_report(runs)
    return {"eval_json": str(eval_json), "summary": str(summary_path), "plots": [str(p) for p in images],
            "grids": [str(p) for p in grids], "report": str(report) if report else None,
            "best": {f"{b}/{m}": meth for (b, m), meth in best_methods(summary).items()}}
