"""The isolated OpenCV decoder: ``python -m tasks.decode_child``, started once per process by
`tasks.decode.decode_isolated`, serves decodes so that a decoder crash (SIGSEGV), runaway allocation or endless loop
on crafted bytes costs one throw-away process only.

It is a fork server: it imports OpenCV and numpy, then reads one JSON request per line on stdin and forks a fresh
child for each photo. The server itself never reads a photo; each child is a copy of it as it was before any
decode, so one file cannot affect the next. Before it touches the file a child limits itself: address space to
what it has mapped now (Python, numpy, OpenCV) plus ``decode_memory`` (RLIMIT_AS), CPU time to ``decode_timeout``
(RLIMIT_CPU), no core dumps; OpenCV's own header check refuses more than ``max_pixels``
(OPENCV_IO_MAX_IMAGE_PIXELS). The server kills a child still running after ``decode_timeout`` seconds of wall
clock and answers each request with one JSON line, ``{"code": N}`` (the child's exit code, negative for the signal
that killed it) or ``{"code": null}`` (timed out). Forking costs milliseconds where a fresh interpreter importing
OpenCV costs ~0.2 s, which is what lets ``make fuzz`` try 100,000 files through this path.

A child writes its answer, one JSON object, to the request's ``answer`` file: ``{"status": "ok", "original": [w,
h]}`` with the (H, W, 3) uint8 pixels, reduced by `dinar_core.image.reduction_factor`, in the ``out`` file; or
``{"status": "invalid" | "too_large", "message": ...}``; its stderr goes to the ``log`` file.

Test-only fault injection: when the request's ``fault`` (the parent's environment variable `tasks.decode.FAULT_ENV`) is set and
the file contains `FAULT_MARKER`, the child behaves as a decoder that crashes (``segv``: it kills itself with
SIGSEGV), never ends (``hang``), allocates without bound (``oom``) or answers with pixels that are not what it
declares (``lie``), right where the decoder would run, so tests exercise the paths real faults take.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import time
import traceback

import cv2
import numpy as np

from dinar_core.image import reduction_factor, to_rgb8

FAULT_MARKER = b"DINAR-TEST-DECODER-FAULT"
_MEMORY_WORDS = ("Insufficient memory", "Failed to allocate", "bad_alloc", "CV_IO_MAX_IMAGE_PIXELS")


def serve() -> int:
    """The server loop: a request per stdin line (``path``, ``out``, ``answer``, ``log``, ``limits``, ``fault``), a
    ``{"code": ...}`` line back per request; ends when stdin closes."""
    cv2.setNumThreads(1)  # before any fork: a child inherits no pool (a thread pool's stacks are address space too)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)  # never returns
        code = _wait(pid, float(request["limits"]["decode_timeout"]))
        sys.stdout.write(json.dumps({"code": code}) + "\n")
        sys.stdout.flush()
    return 0


def _child(request: dict) -> None:
    """In the forked child: limit, decode, write the answer, exit (never returns to the server loop)."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)  # nothing reaches the server's answer pipe
        os.dup2(os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
        limits = request["limits"]
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(int(limits["max_pixels"]))
        _limit_resources(int(limits["decode_memory"]), float(limits["decode_timeout"]))
        answer = _answer(request["path"], request["out"], limits, request.get("fault"))
        with open(request["answer"], "w") as fh:
            fh.write(json.dumps(answer))
        code = 0
    except BaseException:  # a bug here, not a photo's fault: keep its traceback in the log the parent quotes
        traceback.print_exc()
    finally:
        os._exit(code)


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit code (negative: the signal that ended it), or None after killing it at `timeout` s."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(pause)
        pause = min(2 * pause, 0.02)


def _answer(path: str, out: str, limits: dict, fault: str | None) -> dict:
    """The decode's answer, with the failures a photo can cause as named statuses."""
    try:
        return _decode(path, out, limits, fault)
    except MemoryError:
        return {"status": "too_large", "message": f"decoding needs more than ingest.decode_memory = "
                                                  f"{int(limits['decode_memory']) / 2**20:,.0f} MB"}
    except ValueError as exc:  # pixels of a type no photo has (signed 8/16-bit ...)
        return {"status": "invalid", "message": str(exc)}
    except cv2.error as exc:
        text = " ".join(str(exc).split())
        return {"status": "too_large" if any(w in text for w in _MEMORY_WORDS) else "invalid", "message": text}


def _limit_resources(memory: int, seconds: float) -> None:
    """RLIMIT_AS = the address space mapped now + `memory`, RLIMIT_CPU = `seconds`, RLIMIT_CORE = 0."""
    with open("/proc/self/statm") as fh:
        mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    for kind, soft in ((resource.RLIMIT_AS, mapped + memory), (resource.RLIMIT_CPU, math.ceil(seconds)),
                       (resource.RLIMIT_CORE, 0)):
        hard = resource.getrlimit(kind)[1]
        resource.setrlimit(kind, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _decode(path: str, out: str, limits: dict, fault: str | None) -> dict:
    with open(path, "rb") as fh:  # read() of n bytes allocates n first: ask for the file's size, capped
        data = fh.read(min(os.fstat(fh.fileno()).st_size, int(limits["max_file_bytes"])) + 1)
    if len(data) > int(limits["max_file_bytes"]):
        return {"status": "too_large", "message": f"the file is over ingest.max_file_bytes = "
                                                  f"{int(limits['max_file_bytes']):,} bytes"}
    if fault and FAULT_MARKER in data:
        lie = _fault(fault, out, int(limits["decode_memory"]))
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
    sys.exit(serve())
