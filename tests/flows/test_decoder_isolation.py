"""A photo whose decoder crashes costs only its own person: through the real flow, the isolated OpenCV decoder
dies by SIGSEGV on one photo, the other persons finish and the report is written."""

import json
import shutil

import pytest

from flows.pipeline import process_folder
from tasks.decode import FAULT_ENV
from tasks.decode_child import FAULT_MARKER
from tasks.status import runs_status

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_segfaulting_decoder_costs_only_its_own_person(tmp_path, samples_dir, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("sports2d_1.png", "sports2d_2.png"):
        shutil.copy(samples_dir / name, photos / name)
    # A Radiance HDR header, so the file goes to the isolated OpenCV decoder, whose process then kills itself
    # with SIGSEGV where cv2.imdecode would run (had it run in this process, pytest itself would die here).
    (photos / "crash.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + FAULT_MARKER)
    monkeypatch.setenv(FAULT_ENV, "segv")
    runs = tmp_path / "runs"
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="segment")
    assert out["persons"] == 3 and out["complete"] == 2 and out["with_failures"] == 1
    status = {st["person"]: st["stages"] for st in runs_status(runs)}
    for person in ("sports2d_1", "sports2d_2"):
        assert status[person]["segment"]["status"] == "done"
        assert (runs / person / "rgb" / f"{person}.png").is_file()
    assert status["crash"]["segment"]["status"] == "blocked"
    manifest = json.loads((runs / "crash" / "manifest.json").read_text())
    error = manifest["stages"]["ingest"]["error"]
    assert error["type"] == "DecoderCrashedError"
    assert "crash.hdr" in error["message"] and "SIGSEGV" in error["message"] and "fix:" in error["message"]
    report = (runs / "report.html").read_text()
    assert "DecoderCrashedError" in report and "sports2d_1" in report and "sports2d_2" in report
