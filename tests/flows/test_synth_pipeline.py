"""The synthetic people look like people to the real pipeline: `dinar run --until keypoints` on one synthetic
person's views finds a person with a torso in the frontal view, where the ground-truth joints project."""

import json

import numpy as np
import pytest

from dinar_core.keypoints.layout import BODY_25_NAMES as BODY25_NAMES
from dinar_core.cameras.multiview import read_cameras
from dinar_core.synth.scene import SynthConfig
from flows.pipeline import process_folder
from tasks.synth import synth_dataset

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]  # the harness + mediapipe: ~30 s

TORSO = ("Neck", "RShoulder", "LShoulder", "MidHip", "RHip", "LHip")


def test_dinar_run_finds_the_synthetic_person_and_its_torso(tmp_path):
    data = tmp_path / "data"
    synth_dataset(data, persons=1, views=2, seed=0, size=384, config=SynthConfig(texture_size=256))
    person = data / "p000"
    runs = tmp_path / "runs"
    summary = process_folder(photos=str(person / "views"), out=str(runs), config={}, until="keypoints")
    assert summary["failures"] == [] or all(f["person"] != "cam01" for f in summary["failures"]), summary
    doc = json.loads((runs / "cam01" / "openpose" / "cam01_keypoints.json").read_text())
    kp = np.asarray(doc["people"][0]["pose_keypoints_2d"], np.float32).reshape(25, 3)
    index = [BODY25_NAMES.index(n) for n in TORSO]
    assert (kp[index, 2] > 0.5).all(), kp[index]
    # where the ground truth says the torso is (within 6 % of the image height: mediapipe's hips sit higher and
    # its shoulders wider than Anny's joints)
    cam = read_cameras(person)["cam01"]
    gt = cam.project(np.load(person / "gt" / "joints.npy", allow_pickle=False).astype(np.float64))
    err = np.linalg.norm(kp[index, :2] - gt[index], axis=1)
    assert float(err.max()) < 0.06 * cam.height, dict(zip(TORSO, err.round(1)))
