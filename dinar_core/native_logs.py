"""Native (C++) log lines of mediapipe and TensorFlow Lite kept off the terminal.

mediapipe 0.10.21 logs through absl before ``absl::InitializeLog()`` is called, straight to file descriptor 2 and
with no environment variable to quiet it (``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL`` and
``ABSL_MIN_LOG_LEVEL`` were tried): a dozen "Feedback manager requires a model with a single signature" warnings
per photo. :func:`filtered_native_stderr` points descriptor 2 at a temporary file while a block runs and then writes
back every line that is not one of those known, harmless lines, so nothing else printed meanwhile (by this thread
or another) is lost; it only arrives when the block ends.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

# absl/glog info and warning lines ("W0000 00:00:1795580813.643939    3024 inference_feedback_manager.cc:114] ..."), and the two
# banner lines TFLite and absl print once per process
NATIVE_NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\] .*"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)\r?\n?$")

_LOCK = threading.RLock()  # descriptor 2 is per process: one redirection at a time


@contextmanager
def filtered_native_stderr(noise: re.Pattern[bytes] = NATIVE_NOISE) -> Iterator[None]:
    """Run the block with descriptor 2 captured; afterwards re-emit the captured lines that do not match
    ``noise``. Error and fatal lines (``E...``, ``F...``) are always kept, so a failing model still says why."""
    with _LOCK:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):  # no or closed Python-level stderr
            pass
        with tempfile.TemporaryFile() as capture:
            saved = os.dup(2)
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except (AttributeError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = [line for line in capture.read().splitlines(keepends=True) if not noise.match(line)]
                if kept:
                    os.write(2, b"".join(kept))
