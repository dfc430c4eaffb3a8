"""`dinar app` in headless Chromium: a sample photo uploaded through the page goes through the whole pipeline (a
quick config: few fit iterations, a 1 s turntable), and the page then shows the person's video and the 3D view of
its GLB; a second upload of that photo and a new one computes the new person only, and a person picked from the
list is shown. Skipped where Chromium is not installed (`make test-clients` installs it)."""

from __future__ import annotations

import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from flows.app import AppSettings, launch
from tests.helpers.browser import chromium, needs_chromium, wait_for
from tests.helpers.quick import quick_pipeline

pytestmark = [pytest.mark.clients, needs_chromium, pytest.mark.usefixtures("prefect_harness")]

QUICK = quick_pipeline()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_drawn(element, timeout: float) -> int:
    """Pixels of `element` that differ from its corner's colour, once two looks a second apart both find the
    avatar drawn (its clip plays, so the count changes from look to look)."""
    import io

    import numpy as np
    from PIL import Image

    end, last = time.time() + timeout, -1
    while time.time() < end:
        shot = np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")).astype(int)
        count = int((np.abs(shot - shot[2, 2]).sum(-1) > 40).sum())
        if count > 2000 and last > 2000:
            return count
        last = count
        time.sleep(1.0)
    return last


@contextmanager
def _screenshot_on_failure(box: list, folder: Path):
    try:
        yield
    except Exception:
        if box:
            box[0].save_screenshot(str(folder / "failed.png"))
            print(f"screenshot of the page: {folder / 'failed.png'}\n{box[0].find_element('tag name', 'body').text}")
        raise


def test_a_photo_uploaded_in_the_browser_becomes_a_video_and_a_3d_view(tmp_path, samples_dir):
    from selenium.webdriver.common.by import By

    from tasks.config import resolve_config, to_dict

    photo = Path(shutil.copy(samples_dir / "sports2d_2.png", tmp_path / "runner.png"))
    other = Path(shutil.copy(samples_dir / "sports2d_3.png", tmp_path / "jumper.png"))
    settings = AppSettings(runs=tmp_path / "runs", port=_free_port())
    demo = launch(settings, to_dict(resolve_config(QUICK)), block=False)
    try:
        with chromium(1400, 1800) as driver, _screenshot_on_failure(driver_box := [], tmp_path):
            driver_box.append(driver)
            driver.get(f"http://127.0.0.1:{settings.port}/")
            wait_for(driver, "return document.querySelector('#photos input[type=file]')", 60)
            driver.find_element(By.CSS_SELECTOR, "#photos input[type=file]").send_keys(str(photo))
            wait_for(driver, "return document.querySelector('#photos').innerText.replace(/\\s/g, '')"
                                 ".includes('runner.png')", 60)
            driver.find_element(By.CSS_SELECTOR, "#go").click()
            started = time.time()
            src = wait_for(driver, "const v = document.querySelector('#video video'); return v && v.src", 600)
            seconds = time.time() - started
            assert "video.mp4" in src
            wait_for(driver, "return document.querySelector('#model3d canvas')", 120)
            drawn = _wait_drawn(driver.find_element(By.CSS_SELECTOR, "#model3d canvas"), 120)
            assert drawn > 2000, f"the 3D view drew {drawn} pixels"  # the avatar, not an empty canvas
            text = driver.find_element(By.CSS_SELECTOR, "#message").text
            assert "1 persons: 1 complete" in text, text
            links = wait_for(driver, "const d = document.querySelector('#downloads'); "
                                     "return d.querySelectorAll('a').length == 3 && d.innerText", 60)
            links = links.replace("\n", "")  # the page splits a name at its suffix
            assert "avatar.glb" in links and "video.mp4" in links and "runner.zip" in links, links
            shot = Path(os.environ.get("DINAR_APP_SCREENSHOT", tmp_path / "app.png"))
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(str(shot))
            # A second upload with the same photo and a new one: only the new person is computed (the same cache
            # as the CLI; the first photo is still in the upload list, so it is given twice: one person); then
            # picking the first person from the list shows its results again.
            driver.find_element(By.CSS_SELECTOR, "#photos input[type=file]").send_keys(f"{photo}\n{other}")
            wait_for(driver, "return document.querySelector('#photos').innerText.replace(/\\s/g, '')"
                             ".includes('jumper.png')", 60)
            driver.find_element(By.CSS_SELECTOR, "#go").click()
            text = wait_for(driver, "const t = document.querySelector('#message').innerText; "
                                    "return t.includes('2 persons') && t", 600)
            assert "2 persons: 2 complete" in text and "7 stage runs executed" in text, text
            jumper = wait_for(driver, "const v = document.querySelector('#video video'); "
                                      f"return v && v.src != {src!r} && v.src", 60)
            driver.find_element(By.CSS_SELECTOR, "#person input").click()
            wait_for(driver, "return document.querySelectorAll('ul[role=listbox] li').length == 2", 30)
            runner = [o for o in driver.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li")
                      if (o.get_attribute("textContent") or "").split()[-1:] == ["runner"]]
            assert runner, [o.get_attribute("textContent") for o in driver.find_elements(By.CSS_SELECTOR, "ul li")]
            runner[0].click()
            wait_for(driver, f"const v = document.querySelector('#video video'); return v && v.src != {jumper!r}", 60)
            driver.execute_script("document.querySelector('#model3d').scrollIntoView()")
            canvas = wait_for(driver, "return document.querySelector('#model3d canvas')", 120)
            assert _wait_drawn(canvas, 120) > 2000  # the picked person's GLB is drawn too
    finally:
        demo.close()
    for person in ("runner", "jumper"):
        ws = settings.runs / person
        assert (ws / "avatar" / "avatar.glb").is_file() and (ws / "renders" / "video.mp4").is_file()
    print(f"photo -> video + 3D view in the browser: {seconds:.0f} s")
