"""What Blender makes of a GLB: its own glTF importer, run headless (``blender -b``), reports the armatures and
bone names, the meshes (skinned or not, their image textures), the actions and, at given times, every mesh's
skinned vertices as Blender evaluates them (`probe_glb`; the script Blender runs is ``blender_probe.py``).

A development and test tool, as the glTF validator is: nothing at run time needs Blender. Debian's ``blender``
package (3.4, with ``python3-numpy``) is enough; ``$DINAR_BLENDER`` names another binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dinar_core.errors import BlenderError

PROBE = Path(__file__).with_name("blender_probe.py")
INSTALL = "apt-get install blender python3-numpy (Debian, Ubuntu), or set DINAR_BLENDER to a Blender binary"


@dataclass(frozen=True)
class BlenderImport:
    """Blender's import of one GLB. armatures: [{name, bones, parents}]; meshes: [{name, vertices, skinned,
    images}]; actions: [{name, frame_range}]; fps: the scene's; frames: {seconds: {mesh name: (V, 3) skinned
    vertices in glTF's Y-up world}}; version: Blender's."""

    armatures: list
    meshes: list
    actions: list
    fps: float
    frames: dict
    version: str


def find_blender() -> str | None:
    """The Blender binary (``$DINAR_BLENDER``, else ``blender`` on PATH), or None."""
    env = os.environ.get("DINAR_BLENDER")
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("blender")


def probe_glb(glb: str | Path, seconds: tuple[float, ...] = (), blender: str | None = None,
              timeout: float = 300.0) -> BlenderImport:
    """Import `glb` in a headless Blender and report what it made (see `BlenderImport`), the vertices at each time
    of `seconds`. BlenderError when Blender is missing or the import fails (its last output lines quoted)."""
    exe = blender or find_blender()
    if exe is None:
        raise BlenderError("Blender not found", fix=INSTALL)
    with tempfile.TemporaryDirectory(prefix="dinar_blender_") as tmp:
        out = Path(tmp) / "import.json"
        cmd = [exe, "-b", "--factory-startup", "--python-exit-code", "3", "--python", str(PROBE), "--",
               str(Path(glb).resolve()), str(out), *(repr(float(s)) for s in seconds)]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 env={**os.environ, "PYTHONNOUSERSITE": "1"})
        except subprocess.TimeoutExpired as exc:
            raise BlenderError(f"Blender did not import {glb} within {timeout:.0f} s",
                               fix="check the file with the glTF validator") from exc
        if run.returncode != 0 or not out.is_file():
            tail = " | ".join((run.stdout + run.stderr).strip().splitlines()[-6:])
            raise BlenderError(f"Blender could not import {glb} (exit {run.returncode}): {tail}",
                               fix="check the file with the glTF validator; " + INSTALL)
        doc = json.loads(out.read_text())
    frames = {float(t): {name: np.asarray(v, np.float64).reshape(-1, 3) for name, v in meshes.items()}
              for t, meshes in doc["frames"].items()}
    return BlenderImport(doc["armatures"], doc["meshes"], doc["actions"], float(doc["fps"]), frames,
                         doc["blender"])
