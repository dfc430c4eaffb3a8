"""The convention every fuzz test (``tests/fuzz/test_fuzz_<decoder>.py``) follows.

* hypothesis, **seeded**: ``derandomize=True`` and no example database, so every run draws the same cases and a
  failure reproduces by rerunning the test;
* the number of cases per decoder comes from ``DINAR_FUZZ_EXAMPLES`` (default :data:`DEFAULT_EXAMPLES`, small so
  ``make test`` stays fast; ``make fuzz`` sets 100,000);
* each case has a **deadline of 5 s of CPU time** (``time.process_time``, so a busy machine does not make cases
  flaky; hypothesis' own wall-clock deadline is off) and a **peak-RSS bound of 1 GB** above the process's size
  before the case (the kernel's high-water mark is reset per case through ``/proc/self/clear_refs``);
* the property: the decoder returns a valid result or raises a :class:`~dinar_core.errors.DinarError` subclass;
  any other exception fails the test (:func:`run_decoder`).

Cases are mutations of valid files the tests generate themselves (structure-aware: JSON trees, pickle opcode
streams, zip members and ``.npy`` headers; see ``tests/fuzz/mutators.py``), never files from the network.

A test reads::

    @fuzz_settings
    @given(data=mutated_bytes(seed_file_bytes))
    def test_fuzz_x(data):
        result = decode_file(load_x, data, "x.npz")  # None after a DinarError
        assert result is None or <result is valid>
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from hypothesis import HealthCheck, settings

from dinar_core.errors import DinarError

DEFAULT_EXAMPLES = 200
FUZZ_EXAMPLES = int(os.environ.get("DINAR_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
DEADLINE_MS = 5000
MAX_RSS_GROWTH_MB = 1024

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
"""The settings decorator of every fuzz test."""


def _rss_kb(field: str) -> int | None:
    try:
        match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


@contextlib.contextmanager
def bounded_memory(limit_mb: int = MAX_RSS_GROWTH_MB) -> Iterator[None]:
    """Fail when the process's peak RSS during the block exceeds its RSS before it by more than ``limit_mb``."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (Linux >= 4.0)
        resettable = True
    except OSError:
        resettable = False
    before = _rss_kb("VmRSS")
    yield
    peak = _rss_kb("VmHWM")
    if resettable and before is not None and peak is not None:
        grown = (peak - before) / 1024
        assert grown <= limit_mb, f"peak RSS grew by {grown:.0f} MB in one case (limit {limit_mb} MB)"


REPORT_PATH = os.environ.get("DINAR_FUZZ_REPORT")
"""When set (``make fuzz``), every fuzz test's figures are written there as JSON at the end of the session."""
_FIGURES: dict[str, dict[str, float]] = {}
PROGRESS_EVERY = 1000


def _record(outcome: str, cpu_ms: float, rss_mb: float | None) -> None:
    """Count one case of the running test (``PYTEST_CURRENT_TEST``) and keep its worst CPU time and memory."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
    fig = _FIGURES.setdefault(test, {"cases": 0, "valid": 0, "named_errors": 0, "max_cpu_ms": 0.0,
                                     "max_rss_growth_mb": 0.0, "started": time.time(), "seconds": 0.0})
    fig["cases"] += 1
    fig[outcome] += 1
    fig["max_cpu_ms"] = max(fig["max_cpu_ms"], round(cpu_ms, 1))
    if rss_mb is not None:
        fig["max_rss_growth_mb"] = max(fig["max_rss_growth_mb"], round(rss_mb, 1))
    fig["seconds"] = round(time.time() - fig["started"], 1)
    if fig["cases"] % PROGRESS_EVERY == 0:  # a long run shows how far it got (and keeps it if stopped)
        _write_report(None)


def _write_report(exit_status: int | None) -> None:
    """The figures so far to ``DINAR_FUZZ_REPORT`` (merged with the tests an earlier run of the file recorded, so a
    long run interrupted and resumed on the remaining tests still gives one file)."""
    if not (REPORT_PATH and _FIGURES):
        return
    import json

    path = Path(REPORT_PATH)
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        out = {}
    tests = out.get("tests", {})
    for k, f in _FIGURES.items():
        tests[k] = {n: v for n, v in f.items() if n != "started"} | {"examples_setting": FUZZ_EXAMPLES}
    out = {"tests": tests, "exit_status": exit_status, "note": "cases per test; exit_status of the last run"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


def pytest_runtest_logreport(report) -> None:
    if report.when == "call":
        _FIGURES.get(report.nodeid, {})["passed"] = report.passed
        _write_report(None)


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 - pytest's hook signature
    _write_report(int(exitstatus))


def run_decoder(decode: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``decode``: its result, or None when it raised a DinarError; any other exception propagates (and fails
    the case). Memory is bounded by :func:`bounded_memory`, CPU time by ``DEADLINE_MS``. Each case that ends
    (valid or a named error) is counted for ``DINAR_FUZZ_REPORT``."""
    start = time.process_time()
    before = _rss_kb("VmRSS")
    outcome = "valid"
    with bounded_memory():
        try:
            return decode(*args, **kwargs)
        except DinarError as exc:
            assert str(exc), f"{type(exc).__name__} without a message"
            outcome = "named_errors"
            return None
        finally:
            spent = (time.process_time() - start) * 1000
            peak = _rss_kb("VmHWM")
            _record(outcome, spent, None if before is None or peak is None else (peak - before) / 1024)
            assert spent <= DEADLINE_MS, f"one case took {spent:.0f} ms of CPU (deadline {DEADLINE_MS} ms)"


_SCRATCH = Path(tempfile.mkdtemp(prefix="dinar-fuzz-"))


@contextlib.contextmanager
def scratch_file(data: bytes, name: str) -> Iterator[Path]:
    """``data`` written to a fresh file called ``name`` (removed afterwards)."""
    with tempfile.TemporaryDirectory(dir=_SCRATCH) as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        yield path


def decode_file(decode: Callable[[Path], Any], data: bytes, name: str) -> Any:
    """:func:`run_decoder` of ``decode(path)`` for ``data`` written to a scratch file called ``name``."""
    with scratch_file(data, name) as path:
        return run_decoder(decode, path)
