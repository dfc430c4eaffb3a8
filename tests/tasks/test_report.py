"""The report shows each person's provenance image with its colour legend, the fit's 2D and 3D checks and the
fitted body from the side (issue 11, part 6)."""

from __future__ import annotations

import json

from tasks.report import PROVENANCE_LEGEND, write_report
from tasks.workspace import Workspace


def _person(runs, name: str, fractions: dict | None, frames: dict | None) -> Workspace:
    ws = Workspace(runs / name)
    ws.root.mkdir(parents=True)
    ws.write_manifest(ws.read_manifest())
    if fractions is not None:
        ws.avatar_dir.mkdir(parents=True)
        (ws.avatar_dir / "provenance.png").write_bytes(b"png")
        (ws.avatar_dir / "avatar.json").write_text(json.dumps({"fractions": fractions}))
    if frames is not None:
        ws.fit_dir.mkdir(parents=True, exist_ok=True)
        (ws.fit_dir / "metrics.json").write_text(json.dumps({"frames": frames}))
        ws.rgb_dir.mkdir(parents=True, exist_ok=True)
        for frame in frames:
            ws.rgb(frame).write_bytes(b"png")
            (ws.fit_dir / f"{frame}_side.png").write_bytes(b"png")
    return ws


def test_legend_matches_the_provenance_colours():
    from dinar_core.texture.inpaint import PROVENANCE_COLOURS, Provenance

    for key, rgb, _ in PROVENANCE_LEGEND:
        assert tuple(int(c) for c in PROVENANCE_COLOURS[Provenance[key.upper()]]) == rgb, key
    assert {k for k, _, _ in PROVENANCE_LEGEND} == {p.name.lower() for p in Provenance if p != Provenance.OUTSIDE}


def test_report_shows_provenance_legend_fit_metrics_and_side_view(tmp_path):
    runs = tmp_path / "runs"
    frames = {"f0": {"mask_iou": 0.873, "reprojection_error_rel": 0.0061,
                     "plausibility": {"height_m": 1.734, "waist_girth_m": 0.81, "girth_change_m": -0.021,
                                      "penetration_mm": 23.4, "feet_gap_mm": None,
                                      "limit_violations": [{"joint": "left_knee", "axis": "x", "excess_deg": 12.0}]}}}
    _person(runs, "alice", {"observed": 0.41, "mirrored": 0.22, "front_back": 0.0, "filled": 0.37}, frames)
    _person(runs, "bob", None, {"f0": "not a record"})  # a broken metrics file must not break the report
    page = write_report(runs).read_text()
    alice = page[page.index("alice"):page.index("bob")]
    assert "alice/avatar/provenance.png" in alice and "provenance:" in alice
    assert "rgb(60,180,75)" in alice and "seen in the photo 41%" in alice and "synthesised or filled 37%" in alice
    assert "alice/fit/f0_side.png" in alice and "f0: fit, side" in alice
    for text in ("0.873", "0.61%", "1.73 m", "0.81 m", "-0.021 m", "23 mm"):
        assert f"<td>{text}</td>" in alice, text
    assert "<td>-</td>" in alice  # feet gap unknown
    assert "<td>1</td>" in alice  # one joint beyond its limit
    bob = page[page.index("bob"):]
    assert "provenance:" not in bob and "bob/fit/f0_side.png" in bob


def test_report_legend_without_fractions(tmp_path):
    runs = tmp_path / "runs"
    ws = _person(runs, "carol", {}, None)
    (ws.avatar_dir / "avatar.json").write_text("{broken")
    page = write_report(runs).read_text()
    assert "provenance:" in page and "seen in the photo" in page and "%" not in page.split("provenance:")[1][:300]
