"""Reading an evaluation dataset: each problem is a named error for that person, the others are read."""

from __future__ import annotations

import json
import shutil

import numpy as np

from tasks.eval_data import read_people
from tests.conftest import ROOT

DEMO = ROOT / "data" / "multiview" / "pose2sim_demo" / "Demo_SinglePerson_f0010"


def test_each_bad_person_is_named_and_the_others_are_read(tmp_path):
    data = tmp_path / "data"
    for name in ("good", "nocam", "extra", "single", "nogt"):
        shutil.copytree(DEMO, data / name)
    doc = json.loads((data / "nocam" / "cameras.json").read_text())
    del doc["cameras"]["cam02"]
    (data / "nocam" / "cameras.json").write_text(json.dumps(doc))
    (data / "extra" / "views" / "cam04.png").unlink()  # a calibrated camera without its view
    for cam in ("cam02", "cam03", "cam04"):
        (data / "single" / "views" / f"{cam}.png").unlink()
    doc = json.loads((data / "single" / "cameras.json").read_text())
    doc["cameras"] = {"cam01": doc["cameras"]["cam01"]}
    (data / "single" / "cameras.json").write_text(json.dumps(doc))
    for name in ("good", "nocam", "extra", "single"):
        (data / name / "gt").mkdir()
        np.save(data / name / "gt" / "joints.npy", np.zeros((25, 3), np.float32))
    (data / "dataset.json").write_text(json.dumps({"kind": "synth", "source": "test", "licence": "-",
                                                   "persons": ["good", "nocam", "extra", "single", "nogt"]}))
    people, errors = read_people(data)
    assert [p.name for p in people] == ["good"]
    assert set(people[0].views) == {"cam01", "cam02", "cam03", "cam04"} and people[0].has_gt()
    errors = dict(errors)
    assert "MissingCameraError" in errors["nocam"] and "cam02" in errors["nocam"]
    assert "MissingCameraError" in errors["extra"] and "cam04" in errors["extra"]
    assert "EvalDataError" in errors["single"] and "1 view" in errors["single"]
    assert "EvalDataError" in errors["nogt"] and "ground truth" in errors["nogt"]
