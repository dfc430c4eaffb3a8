"""The isolated OpenCV decoder: ``python -m tasks.decode_child PHOTO OUT.npy LIMITS_JSON``, started by
`tasks.decode.decode_isolated` in a fresh process for each photo, so that a decoder crash (SIGSEGV), runaway
allocation or endless loop on crafted bytes costs this process only.

Before it touches the file it limits itself: address space to what it has mapped now (Python, numpy, OpenCV)
plus ``decode_memory`` (RLIMIT_AS), CPU time to ``decode_timeout`` (RLIMIT_CPU), no core dumps; OpenCV's own
header check refuses more than ``max_pixels`` (OPENCV_IO_MAX_IMAGE_PIXELS, set by the parent). It answers with one
JSON object on stdout, ``{"status": "ok", "original": [w, h]}`` with the (H, W, 3) uint8 pixels, reduced by
`dinar_core.image.reduction_factor`, in OUT.npy; or ``{"status": "invalid" | "too_large", "message": ...}``.

Test-only fault injection: when the environment variable `FAULT_ENV` is set and the file contains `FAULT_MARKER`,
the process behaves as a decoder that crashes (``segv``: it kills itself with SIGSEGV), never ends (``hang``),
allocates without bound (``oom``) or answers with pixels that are not what it declares (``lie``), right where the
decoder would run, so tests exercise the paths real faults take.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import time

import cv2
import numpy as np

from dinar_core.image import reduction_factor, to_rgb8

FAULT_ENV = "DINAR_TEST_DECODER_FAULT"
FAULT_MARKER = b"DINAR-TEST-DECODER-FAULT"
_MEMORY_WORDS = ("Insufficient memory", "Failed to allocate", "bad_alloc", "CV_IO_MAX_IMAGE_PIXELS")


def main(argv: list[str]) -> int:
    path, out, limits = argv[1], argv[2], json.loads(argv[3])
    _limit_resources(int(limits["decode_memory"]), float(limits["decode_timeout"]))
    try:
        answer = _decode(path, out, limits)
    except MemoryError:
        answer = {"status": "too_large", "message": f"decoding needs more than ingest.decode_memory = "
                                                    f"{int(limits['decode_memory']) / 2**20:,.0f} MB"}
    except ValueError as exc:  # pixels of a type no photo has (signed 8/16-bit ...)
        answer = {"status": "invalid", "message": str(exc)}
    except cv2.error as exc:
        text = " ".join(str(exc).split())
        answer = {"status": "too_large" if any(w in text for w in _MEMORY_WORDS) else "invalid", "message": text}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


def _limit_resources(memory: int, seconds: float) -> None:
    """RLIMIT_AS = the address space mapped now + `memory`, RLIMIT_CPU = `seconds`, RLIMIT_CORE = 0."""
    cv2.setNumThreads(1)  # before the limit: a thread pool's stacks are address space too
    with open("/proc/self/statm") as fh:
        mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    for kind, soft in ((resource.RLIMIT_AS, mapped + memory), (resource.RLIMIT_CPU, math.ceil(seconds)),
                       (resource.RLIMIT_CORE, 0)):
        hard = resource.getrlimit(kind)[1]
        resource.setrlimit(kind, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _decode(path: str, out: str, limits: dict) -> dict:
    with open(path, "rb") as fh:  # read() of n bytes allocates n first: ask for the file's size, capped
        data = fh.read(min(os.fstat(fh.fileno()).st_size, int(limits["max_file_bytes"])) + 1)
    if len(data) > int(limits["max_file_bytes"]):
        return {"status": "too_large", "message": f"the file is over ingest.max_file_bytes = "
                                                  f"{int(limits['max_file_bytes']):,} bytes"}
    if os.environ.get(FAULT_ENV) and FAULT_MARKER in data:
        lie = _fault(os.environ[FAULT_ENV], out, int(limits["decode_memory"]))
        if lie:
            return lie
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    del data
    if pixels is None:
        return {"status": "invalid", "message": "OpenCV cannot decode it"}
    h, w = pixels.shape[:2]
    color = pixels.ndim == 3 and pixels.shape[2] >= 3  # BGR or BGRA
    rgb = to_rgb8(pixels)  # (h, w, 3) uint8, still B, G, R when `color`
    del pixels
    factor = reduction_factor(w, h, int(limits["max_side"]))
    if factor > 1:
        rgb = cv2.resize(rgb, (math.ceil(w / factor), math.ceil(h / factor)), interpolation=cv2.INTER_AREA)
    np.save(out, np.ascontiguousarray(rgb[:, :, ::-1] if color else rgb), allow_pickle=False)
    return {"status": "ok", "original": [int(w), int(h)]}


def _fault(kind: str, out: str, memory: int) -> dict | None:
    """Test-only: what a faulty decoder does (see the module docstring); ``lie`` answers "ok" with pixels that
    do not match the size it declares, as a subverted process might."""
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "hang":
        while True:
            time.sleep(1)
    elif kind == "oom":
        bytearray(2 * memory)  # MemoryError under RLIMIT_AS, as any allocation over the limit
    elif kind == "lie":
        np.save(out, np.zeros((5, 5, 3), np.uint8), allow_pickle=False)
        return {"status": "ok", "original": [640, 480]}
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv))
