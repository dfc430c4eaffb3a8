import json
import os

import pytest

from tasks.config import ConfigError, PipelineConfig, load_config, override, parse_dotlist
from tasks.workspace import Workspace, atomic_path, atomic_write_json, clean_temporaries, safe_id, unique_ids


@pytest.mark.parametrize("name, expected", [
    ("alice", "alice"),
    ("../../etc/passwd", "etc_passwd"),
    ("..", "person"),
    ("a/b\\c", "a_b_c"),
    ("Zoë 写真", "Zoë_写真"),
    ("tab\tnew\nline", "tab_new_line"),
    (".hidden", "hidden"),
    ("x" * 300, "x" * 100),
])
def test_safe_id(name, expected):
    out = safe_id(name)
    assert out == expected
    assert "/" not in out and "\\" not in out and ".." not in out and not out.startswith(".")


def test_unique_ids_suffix_collisions_case_insensitively():
    assert unique_ids(["a b", "a_b", "A_B", "c"]) == ["a_b", "a_b-2", "A_B-3", "c"]


def test_atomic_path_leaves_no_partial_file_on_error(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_clean_temporaries_removes_leftovers(tmp_path):
    (tmp_path / "rgb").mkdir()
    left = tmp_path / "rgb" / f".a.tmp-{os.getpid()}.png"
    left.write_bytes(b"x")
    keep = tmp_path / "rgb" / "a.png"
    keep.write_bytes(b"y")
    assert clean_temporaries(tmp_path) == [left]
    assert keep.exists() and not left.exists()


def test_workspace_frames_ignore_temporaries(tmp_path):
    ws = Workspace(tmp_path / "p")
    ws.rgb_dir.mkdir(parents=True)
    (ws.rgb_dir / "b.png").write_bytes(b"")
    (ws.rgb_dir / "a.png").write_bytes(b"")
    (ws.rgb_dir / ".c.tmp-1.png").write_bytes(b"")
    assert ws.frames() == ["a", "b"]
    assert ws.keypoints("a").name == "a_keypoints.json"


def test_corrupt_manifest_is_set_aside(tmp_path):
    ws = Workspace(tmp_path / "p")
    ws.root.mkdir()
    ws.manifest_path.write_text("{not json")
    assert ws.read_manifest()["stages"] == {}
    assert (ws.root / "manifest.json.corrupt").exists()
    atomic_write_json(ws.manifest_path, {"stages": {"ingest": {"status": "done"}}})
    assert json.loads(ws.manifest_path.read_text())["stages"]["ingest"]["status"] == "done"


def test_config_override_validates_keys_types_and_choices(tmp_path):
    cfg = override(PipelineConfig(), {"segment": {"threshold": 1, "backend": "rembg"}})
    assert cfg.segment.threshold == 1.0 and isinstance(cfg.segment.threshold, float)
    assert cfg.segment.backend == "rembg"
    with pytest.raises(ConfigError, match="unknown config key 'segment.treshold'"):
        override(PipelineConfig(), {"segment": {"treshold": 0.3}})
    with pytest.raises(ConfigError, match="not one of"):
        override(PipelineConfig(), {"segment": {"backend": "graphonomy"}})
    with pytest.raises(ConfigError, match="expected an integer"):
        override(PipelineConfig(), {"ingest": {"max_side": "big"}})
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  max_side: 640\n")
    cfg = load_config(path, ["keypoints.crop_margin=0.3"])
    assert cfg.ingest.max_side == 640 and cfg.keypoints.crop_margin == 0.3
    assert parse_dotlist(["a.b.c=x"]) == {"a": {"b": {"c": "x"}}}


def test_shipped_configs_load():
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"):
        load_config(path)
