"""What makes a fit poor (``fit_check`` thresholds), for the fit stage's `PoorFit` warning and `dinar fit-check`:
one function over a frame's record in ``fit/metrics.json``, so both say the same. Torch-free."""

from __future__ import annotations

import math

from tasks.config import FitCheckConfig


def fit_problems(m: dict, check: FitCheckConfig) -> list[str]:
    """The thresholds a frame's metrics (a ``frames`` entry of ``fit/metrics.json``) break, as short phrases
    (empty: a good fit). 2D: reprojection error and mask IoU; 3D: interpenetration depth and joint-limit excess."""
    problems = []
    err = float(m.get("reprojection_error_rel", 0.0))
    iou = m.get("mask_iou", 1.0)
    iou = 1.0 if iou is None or (isinstance(iou, float) and math.isnan(iou)) else float(iou)
    if err > check.max_reprojection_error_rel:
        problems.append(f"reprojection {err:.1%} > {check.max_reprojection_error_rel:.0%}")
    if iou < check.min_mask_iou:
        problems.append(f"mask IoU {iou:.2f} < {check.min_mask_iou:.2f}")
    plaus = m.get("plausibility") or {}
    pen = float(plaus.get("penetration_mm") or 0.0)
    if pen > check.max_penetration_mm:
        worst = max((plaus.get("penetrations") or {"?": pen}).items(), key=lambda kv: kv[1])[0]
        problems.append(f"penetration {pen:.0f} mm ({worst}) > {check.max_penetration_mm:.0f} mm")
    over = [v for v in plaus.get("limit_violations") or [] if float(v.get("excess_deg", 0)) > check.max_limit_violation_deg]
    if over:
        worst = max(over, key=lambda v: float(v["excess_deg"]))
        problems.append(f"joint limit: {worst['joint']} {worst['axis']} {float(worst['excess_deg']):.0f} deg beyond "
                        f"(> {check.max_limit_violation_deg:.0f})" + (f", and {len(over) - 1} more" if len(over) > 1 else ""))
    return problems
