"""DINAR's reference state-dict key list (../shared/reference), read once; tests skip cleanly without it."""

from functools import lru_cache
from pathlib import Path

import pytest

REF_KEYS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "dinar-state-dict" / \
    "state_dict_keys.txt"


@lru_cache(maxsize=None)
def _all_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    out = []
    for line in REF_KEYS.read_text().splitlines():
        key, shape = line.split("\t")[:2]
        out.append((key, tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())))
    return tuple(out)


def reference_shapes(prefix: str = "") -> dict[str, tuple[int, ...]]:
    """{key without `prefix`: shape} of every reference key starting with `prefix`, in the list's order."""
    if not REF_KEYS.is_file():
        pytest.skip(f"reference key list not found at {REF_KEYS}")
    return {k[len(prefix):]: s for k, s in _all_shapes() if k.startswith(prefix)}
