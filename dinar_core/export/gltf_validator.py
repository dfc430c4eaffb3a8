"""Run the Khronos glTF validator (npm ``gltf-validator``) on a file and return its issue counts.

The validator is a project-local dev tool under ``tools/gltf-validator/`` (``package.json`` and
``package-lock.json`` are committed; ``npm ci`` there installs it into ``node_modules/``). Its location can be
overridden with ``$DINAR_GLTF_VALIDATOR_DIR``; the Node binary with ``$NODE`` (default: ``node`` on PATH).
Nothing here is needed at run time: the export stage may call it when available, the tests do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "tools" / "gltf-validator"


@dataclass
class ValidationReport:
    """The validator's verdict: counts per severity and the messages (dicts with code, severity, message,
    pointer), at most 200."""

    errors: int
    warnings: int
    infos: int
    hints: int
    messages: list[dict] = field(default_factory=list)

    def summary(self, severity: str = "error") -> str:
        return "; ".join(f"{m['code']} at {m['pointer']}: {m['message']}" for m in self.messages
                         if m["severity"] == severity)


def validator_dir() -> Path:
    return Path(os.environ.get("DINAR_GLTF_VALIDATOR_DIR", DEFAULT_DIR))


def find_validator() -> tuple[str, Path] | None:
    """(node executable, validate.mjs) when both Node and the installed validator are present, else None."""
    node = os.environ.get("NODE") or shutil.which("node")
    script = validator_dir() / "validate.mjs"
    if not node or not script.is_file() or not (validator_dir() / "node_modules" / "gltf-validator").is_dir():
        return None
    return node, script


def validate_gltf(path: str | Path, timeout: float = 120.0) -> ValidationReport:
    """Validate a .glb/.gltf file. Raises FileNotFoundError when Node or the validator is not installed, and
    RuntimeError when the validator itself fails."""
    found = find_validator()
    if found is None:
        raise FileNotFoundError(f"the glTF validator is not installed: run `npm ci` in {validator_dir()} "
                                "(needs Node.js)")
    node, script = found
    proc = subprocess.run([node, str(script), str(path)], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"glTF validator failed on {path} (exit {proc.returncode}): {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    return ValidationReport(errors=data["errors"], warnings=data["warnings"], infos=data["infos"],
                            hints=data["hints"], messages=data["messages"])
