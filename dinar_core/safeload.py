"""Loading untrusted data files without running their code or spending unbounded memory.

Every loader of a user-supplied or downloaded file (SMPL-X model files, DINAR fit and animation pickles, AMASS
``.npz``, checkpoints, LPIPS weights) goes through here:

* :func:`load_pickle`: an allow-listed unpickler. It builds numpy arrays, dtypes and scalars, plain containers and
  (when the kind allows it) scipy sparse matrices (densified) and torch tensors; any other global is refused with
  the kind's ``unsafe`` error, which names the object and says how to convert the file. Before unpickling, the
  opcode stream is scanned (without building objects): at most ``max_ops`` opcodes, memo indices below that (CPython
  grows its memo table to the index given), no sets or extension codes, so the objects it can create are bounded;
  the file is unpickled from a memory map (a declared length cannot make a read allocate more than the file);
  arrays are built by stand-ins that check the bytes against the declared shape and dtype (numpy's own
  ``__setstate__`` never sees the file's state); afterwards the result is
  walked (iteratively: shared references are counted each time they are reached, so a "billion laughs" DAG hits
  ``max_items``) with a depth limit, and every array's dtype is checked (no object, void or structured dtypes).
* :func:`load_npz`: reads an ``.npz`` without pickle: each wanted member's declared uncompressed size (zip info),
  then its ``.npy`` header (dtype, shape, no object dtype) are checked against the kind's budget *before* any
  data is decompressed, and exactly the declared bytes are read (the zip CRC is checked at the end).
* :func:`torch_load`: ``torch.load(weights_only=True)`` after the same zip-member check (a checkpoint's members
  are stored, so the declared sizes cannot exceed the file by much).

A :class:`FileKind` says which errors to raise (the loader's own :class:`~dinar_core.errors.DinarError`
subclasses, so a motion file still gives a ``MotionError``), what the file should be, and the limits.

An old chumpy-style SMPL-X pickle is refused (unpickling it would build chumpy objects); the fix text points at
the SMPL-X site's `.npz` downloads and smplx's own converter (``tools/clean_ch.py`` in the smplx repository),
never at loading the file here.
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import pickle
import pickletools
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from dinar_core.errors import DinarError, FileLimitError, UnsafeFileError

MB = 1 << 20
GB = 1 << 30

CHUMPY_CONVERT = (
    "download the SMPL-X model as .npz (or the v1.1 .pkl files without chumpy) from https://smpl-x.is.tue.mpg.de, "
    "or convert this file once with smplx's own tools/clean_ch.py (github.com/vchoutas/smplx) in an environment "
    "where you trust it"
)
"""How to turn an SMPL-X pickle that holds chumpy objects into an ``.npz`` this loader reads."""


@dataclass(frozen=True)
class FileKind:
    """What a file should be, which errors it raises and its limits.

    label: how messages name the file ('motion file' -> "motion file X ..."; '' -> "X ...").
    format: what it should be ('animation pickle', 'SMPL-X model file'), as in "is not a readable <format>".
    fix: how to get a good file (the fix of every "unreadable" error).
    error: the kind's error for a malformed file; unsafe / too_large: for a forbidden object / a limit.
    max_file_bytes: the file's size limit. max_array_bytes: total bytes of all arrays built (and of the wanted
    members of an archive). max_ops: pickle opcodes. max_items: container items reached while walking the result.
    max_depth: container nesting. sparse: allow scipy sparse matrices (densified). torch_tensors: allow tensors
    pickled by ``pickle.dumps(tensor)``. unsafe_fix: the fix for a forbidden object (default: ``fix``).
    unreadable_as: the phrase after the file's name for an unreadable file (default "is not a readable <format>").
    """

    label: str
    format: str
    fix: str
    error: type[DinarError]
    unsafe: type[DinarError] = UnsafeFileError
    too_large: type[DinarError] = FileLimitError
    max_file_bytes: int = 64 * MB
    max_array_bytes: int = 512 * MB
    max_ops: int = 1_000_000
    max_items: int = 2_000_000
    max_depth: int = 32
    sparse: bool = False
    torch_tensors: bool = False
    unsafe_fix: str | None = None
    unreadable_as: str | None = None

    def subject(self, path: Path | str) -> str:
        return f"{self.label} {path}".strip()

    def unreadable(self, path, detail: str, cls: type[DinarError] | None = None) -> DinarError:
        phrase = self.unreadable_as or f"is not a readable {self.format}"
        return (cls or self.error)(f"{self.subject(path)} {phrase} ({detail})", fix=self.fix)

    def limit(self, path, detail: str) -> DinarError:
        return self.too_large(f"{self.subject(path)} is not a usable {self.format}: {detail}",
                              fix=f"{self.fix} (this file exceeds a safety limit; a zip or pickle bomb?)")


# ----------------------------------------------------------------------------------------------------------------
# Files


def check_file(path: str | Path, kind: FileKind) -> int:
    """The size of ``path`` in bytes; the kind's error when it is missing/not a file, ``too_large`` over the limit."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise kind.error(f"cannot read {kind.subject(path)}: {exc.strerror or exc}", fix=kind.fix) from None
    if not path.is_file():
        raise kind.error(f"{kind.subject(path)} is not a regular file", fix=kind.fix)
    if st.st_size > kind.max_file_bytes:
        raise kind.limit(path, f"{st.st_size:,} bytes, more than the {kind.max_file_bytes:,} allowed")
    return st.st_size


# ----------------------------------------------------------------------------------------------------------------
# Pickles


class _Refused(Exception):
    """A global or value the unpickler will not build (carried out of pickle's machinery)."""

    def __init__(self, what: str, unsafe: bool = True, limit: bool = False):
        super().__init__(what)
        self.unsafe, self.limit = unsafe, limit


_NDARRAY_TOKEN = type("ndarray", (), {})  # what the pickle's "numpy.ndarray" resolves to: only _reconstruct takes it
_ALLOWED_KINDS = set("biufcSU")


def _check_dtype(dt: np.dtype) -> np.dtype:
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.kind not in _ALLOWED_KINDS:
        raise _Refused(f"an array of dtype {dt} (only plain numeric or string arrays are allowed)")
    return dt


def _count(shape) -> int:
    if not isinstance(shape, (tuple, list)) or not all(isinstance(s, int) and 0 <= s for s in shape):
        raise _Refused(f"an array of shape {shape!r}", unsafe=False)
    return math.prod(shape)


class _Budget:
    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def check(self, nbytes: int, what: str) -> None:
        """One array's size against the whole budget (nothing spent: :func:`_walk` spends once per array)."""
        if nbytes > self.limit:
            raise _Refused(f"{what} of {nbytes:,} bytes, more than the {self.limit:,} allowed", unsafe=False,
                           limit=True)

    def spend(self, nbytes: int, what: str) -> None:
        self.used += nbytes
        if self.used > self.limit:
            raise _Refused(f"{what} brings the arrays to {self.used:,} bytes, more than the {self.limit:,} allowed",
                           unsafe=False, limit=True)


class _DtypeStandIn:
    """What the pickle's ``numpy.dtype(...)`` builds: the type string, and the byte order from the BUILD that follows.
    numpy's own ``dtype.__setstate__`` never sees the file's state (a crafted one sets flags and sizes that make
    numpy allocate gigabytes)."""

    def __init__(self, obj):
        if not isinstance(obj, str) or len(obj) > 16:
            raise _Refused(f"a dtype given as {type(obj).__name__} {str(obj)[:20]!r}", unsafe=False)
        self.dtype = _check_dtype(np.dtype(obj))

    def __setstate__(self, state):
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if order in ("<", ">") and self.dtype.byteorder != "|":
            self.dtype = self.dtype.newbyteorder(order)


def _real_dtype(dtype) -> np.dtype:
    if not isinstance(dtype, _DtypeStandIn):
        raise _Refused(f"an array whose dtype is a {type(dtype).__name__}", unsafe=False)
    return dtype.dtype


class _ArrayStandIn:
    """What ``_reconstruct`` builds; its ``__setstate__`` (numpy's array state: version, shape, dtype, Fortran
    order, raw bytes) makes the real array with the declared size checked against the bytes given."""

    def __init__(self, budget: "_Budget"):
        self.budget, self.array = budget, None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused("an array state that is not numpy's", unsafe=False)
        shape, dtype, fortran, raw = state[-4:]
        dt = _real_dtype(dtype)
        count = _count(shape)
        if not isinstance(raw, bytes) or len(raw) != count * dt.itemsize:
            raise _Refused(f"an array of shape {shape} {dt} without its {count * dt.itemsize:,} bytes",
                           unsafe=False)
        self.budget.check(len(raw), "an array")
        flat = np.frombuffer(raw, dt, count=count).copy()
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _resolve(value):
    """An array stand-in as its array (refused when its state never came)."""
    if isinstance(value, _ArrayStandIn):
        if value.array is None:
            raise _Refused("an array without its data", unsafe=False)
        return value.array
    return value


class _SparseStandIn:
    """Collects a pickled scipy sparse matrix's state; :func:`_densify` turns it into a checked dense array."""

    FORMAT = ""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise _Refused("a sparse matrix without its state dict", unsafe=False)
        self.state = state


def _sparse_class(fmt: str) -> type:
    return type(f"{fmt}_matrix", (_SparseStandIn,), {"FORMAT": fmt})


_SPARSE = {fmt: _sparse_class(fmt) for fmt in ("csc", "csr")}
MAX_SPARSE_DENSE_BYTES = 64 * MB
"""Largest sparse matrix densified (SMPL-X's J_regressor, 55 x 10475, is 4.6 MB dense): scipy's ``toarray`` needs
about twice this while converting."""


def _densify(obj: _SparseStandIn, budget: _Budget) -> np.ndarray:
    import scipy.sparse

    state = getattr(obj, "state", None) or {}
    shape = state.get("_shape", state.get("shape"))
    arrays = [_resolve(state.get(k)) for k in ("data", "indices", "indptr")]
    if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in arrays) or not (
            isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise _Refused(f"a {obj.FORMAT} sparse matrix without data/indices/indptr arrays and a 2-D shape",
                       unsafe=False)
    data, indices, indptr = arrays
    if data.dtype.kind not in "biuf" or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise _Refused(f"a {obj.FORMAT} sparse matrix of dtypes {data.dtype}/{indices.dtype}/{indptr.dtype}",
                       unsafe=False)
    dense = math.prod(shape) * 8
    if dense > MAX_SPARSE_DENSE_BYTES:
        raise _Refused(f"a {shape} sparse matrix ({dense:,} bytes dense, more than {MAX_SPARSE_DENSE_BYTES:,})",
                       unsafe=False, limit=True)
    budget.spend(dense, f"a dense {shape} sparse matrix")
    cls = scipy.sparse.csc_matrix if obj.FORMAT == "csc" else scipy.sparse.csr_matrix
    try:
        mat = cls((data, indices, indptr), shape=shape)
        mat.check_format(full_check=True)
        return mat.toarray()
    except (ValueError, TypeError, IndexError) as exc:
        raise _Refused(f"an inconsistent {obj.FORMAT} sparse matrix ({exc})", unsafe=False) from None


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals, each wrapped so it checks what it builds (see the module docstring)."""

    def __init__(self, file, kind: FileKind, budget: _Budget):
        super().__init__(file, encoding="latin1")
        self.kind, self.budget = kind, budget
        np_mods = ("numpy.core.multiarray", "numpy._core.multiarray")
        allowed: dict[tuple[str, str], Any] = {
            ("numpy", "ndarray"): _NDARRAY_TOKEN,
            ("numpy", "dtype"): self._dtype,
            **{(m, "_reconstruct"): self._reconstruct for m in np_mods},
            **{(m, "scalar"): self._scalar for m in np_mods},
            **{(m, "_frombuffer"): self._frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
            ("collections", "OrderedDict"): OrderedDict,
            ("_codecs", "encode"): _latin1_encode,
        }
        if kind.sparse:
            for fmt, cls in _SPARSE.items():
                for mod in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
                    allowed[(mod, f"{fmt}_matrix")] = cls
            for mod in ("copy_reg", "copyreg"):
                allowed[(mod, "_reconstructor")] = _reconstructor
            allowed[("__builtin__", "object")] = allowed[("builtins", "object")] = object
        if kind.torch_tensors:
            allowed[("torch._utils", "_rebuild_tensor_v2")] = self._torch_global("_rebuild_tensor_v2")
            allowed[("torch._utils", "_rebuild_parameter")] = self._torch_global("_rebuild_parameter")
            allowed[("torch.storage", "_load_from_bytes")] = _tensor_from_bytes
        self.allowed = allowed

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise _Refused(f"a persistent id ({str(pid)[:40]!r})")

    # -- wrapped constructors
    def _dtype(self, obj, align=False, copy=False):
        return _DtypeStandIn(obj)

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not _NDARRAY_TOKEN:
            raise _Refused(f"an array of type {getattr(subtype, '__name__', subtype)!r}")
        return _ArrayStandIn(self.budget)

    def _scalar(self, dtype, data=None):
        dt = _real_dtype(dtype)
        if not isinstance(data, bytes) or len(data) != dt.itemsize:
            raise _Refused(f"a {dt} scalar without its {dt.itemsize} bytes", unsafe=False)
        return np.frombuffer(data, dt)[0].copy()

    def _frombuffer(self, buf, dtype, shape, order="C"):
        dt = _real_dtype(dtype)
        n = _count(shape)
        self.budget.check(n * dt.itemsize, "an array")
        arr = np.frombuffer(buf, dt, count=n)
        return arr.reshape(shape, order="F" if order == "F" else "C")

    def _torch_global(self, name: str) -> Callable:
        import torch._utils

        return getattr(torch._utils, name)


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as Python 3 pickles bytes with protocol 2: str -> bytes, latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` for the sparse stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _SparseStandIn) and base is object and state is None):
        raise _Refused(f"copyreg._reconstructor({cls!r}, {base!r})")
    return cls.__new__(cls)


def _tensor_from_bytes(data: bytes):
    """Stand-in for ``torch.storage._load_from_bytes``: a weights-only load of the embedded storage."""
    import torch

    if not isinstance(data, bytes):
        raise _Refused("torch.storage._load_from_bytes without bytes", unsafe=False)
    buf = io.BytesIO(data)
    if zipfile.is_zipfile(buf):  # a stored torch archive declares about its own size; more is a bomb
        with zipfile.ZipFile(buf) as zf:
            declared = sum(i.file_size for i in zf.infolist())
        if declared > 2 * len(data) + MB:
            raise _Refused(f"an embedded tensor archive declaring {declared:,} bytes in {len(data):,}",
                           unsafe=False, limit=True)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


_FORBIDDEN_OPS = {"EMPTY_SET", "ADDITEMS", "FROZENSET", "EXT1", "EXT2", "EXT4", "INST", "OBJ", "PERSID",
                  "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER"}


def _opcode_table(forbidden: set[str]) -> list:
    """Per opcode byte: None (unknown), 'stop', 'forbidden:<NAME>', ('fixed', n), ('len', n) (an n-byte
    little-endian length, then that many bytes) or ('line', k) (k newline-terminated text arguments)."""
    table: list = [None] * 256
    for op in pickletools.opcodes:
        arg, code = op.arg, ord(op.code.encode("latin1"))
        if op.name in forbidden:
            table[code] = f"forbidden:{op.name}"
        elif op.name == "STOP":
            table[code] = "stop"
        elif arg is None:
            table[code] = ("fixed", 0)
        elif arg.n >= 0:
            table[code] = ("fixed", arg.n)
        elif arg.n == pickletools.UP_TO_NEWLINE:  # GLOBAL / INST: two lines (module, name)
            table[code] = ("line", 2 if arg.name == "stringnl_noescape_pair" else 1)
        elif arg.n == pickletools.TAKEN_FROM_ARGUMENT1:
            table[code] = ("len", 1)
        elif arg.n == pickletools.TAKEN_FROM_ARGUMENT4 or arg.n == pickletools.TAKEN_FROM_ARGUMENT4U:
            table[code] = ("len", 4)
        elif arg.n == pickletools.TAKEN_FROM_ARGUMENT8U:
            table[code] = ("len", 8)
    return table


_OPCODES = _opcode_table(_FORBIDDEN_OPS)
_TORCH_OPCODES = _opcode_table(_FORBIDDEN_OPS - {"BINPERSID"})
"""A torch file's pickles also hold BINPERSID (a tensor's storage, which torch's weights-only unpickler resolves)."""
MAX_GLOBAL_BYTES = 1024
"""Longest GLOBAL argument (module or name) a pickle may hold. Real ones are tens of bytes; torch's weights-only
loader quotes a refused name in its error and then searches that message with a regex that is quadratic in the
name's length (a 256 KB name cost minutes of CPU; found by ``make fuzz``)."""
_PUT_CODES = {ord(op.code.encode("latin1")) for op in pickletools.opcodes if op.name in ("PUT", "BINPUT", "LONG_BINPUT")}


def code_is_put(code: int) -> bool:
    return code in _PUT_CODES


def _text_int(data, pos: int) -> int:
    nl = data.find(b"\n", pos)
    try:
        return int(bytes(data[pos:nl if nl >= 0 else pos + 24]))
    except ValueError:
        return 0  # not a number: the unpickler refuses it


def _fixed_opcode() -> bytes:
    """A regex alternation matching one allowed opcode with a fixed-size argument (MEMOIZE, MARK, BININT1, TUPLE2,
    FRAME, ...; LONG_BINPUT excepted: its memo index is checked one by one). Each opcode byte belongs to one width
    class, so repeating it tokenizes a run exactly as the per-opcode walk does: the prescan skips such runs in C and
    counts their opcodes with ``subn`` (a flood of them costs no Python loop per opcode)."""
    widths: dict[int, list[int]] = {}
    for c, e in enumerate(_OPCODES):
        if isinstance(e, tuple) and e[0] == "fixed" and not (code_is_put(c) and e[1] > 1):
            widths.setdefault(e[1], []).append(c)
    alts = [b"[" + b"".join(re.escape(bytes([c])) for c in codes) + b"]" + b"." * n
            for n, codes in sorted(widths.items())]
    return b"(?:" + b"|".join(alts) + b")"


_ONE_OP = re.compile(_fixed_opcode(), re.DOTALL)  # one opcode (for counting)
_RUN = re.compile(_ONE_OP.pattern + b"+", re.DOTALL)  # a run of them
_RUN_CHUNK = 1 << 20


def _prescan(data, kind: FileKind, path, table: list = _OPCODES, start: int = 0) -> int:
    """Walk the opcode stream starting at byte ``start`` once without building objects (``data``: bytes or an
    mmap): at most ``kind.max_ops`` opcodes, none that ``table`` forbids, GLOBAL arguments of at most
    `MAX_GLOBAL_BYTES`, well-formed to its STOP; the position after the STOP. So the unpickler that follows
    creates a bounded number of objects. Runs of fixed-size opcodes are skipped by regex and counted exactly (make
    fuzz: a 0.8 MB MEMOIZE flood took 0.7 s in the per-opcode loop, 4.2 MB of BININT1/TUPLE2 triples 7.4 s)."""
    pos, end, ops = start, len(data), 0
    while True:
        m = _RUN.match(data, pos, min(end, pos + _RUN_CHUNK))  # at most 1 MB at a time: the count copies it
        if m is not None and m.end() - pos > 9:  # a run (a few opcodes are cheaper in the loop below)
            ops += _ONE_OP.subn(b"", data[pos:m.end()])[1]
            if ops > kind.max_ops:
                raise kind.limit(path, f"more than {kind.max_ops:,} pickle opcodes")
            pos = m.end()
        if pos >= end:
            raise kind.unreadable(path, f"the pickle stream ends without STOP after {ops:,} opcodes")
        entry = table[data[pos]]
        ops += 1
        if ops > kind.max_ops:
            raise kind.limit(path, f"more than {kind.max_ops:,} pickle opcodes")
        if entry is None:
            raise kind.unreadable(path, f"unknown pickle opcode {data[pos]:#04x} at byte {pos}")
        pos += 1
        if entry == "stop":
            return pos
        if isinstance(entry, str):
            raise kind.unreadable(path, f"pickle opcode {entry[10:]}, which a {kind.format} never holds")
        how, n = entry
        if code_is_put(data[pos - 1]):  # CPython's unpickler grows its memo table to the index: 4e9 -> 32 GB
            index = int.from_bytes(data[pos:pos + n], "little") if how == "fixed" else _text_int(data, pos)
            if index > kind.max_ops:
                raise kind.limit(path, f"a pickle memo index of {index:,} (more than {kind.max_ops:,} opcodes)")
        if how == "fixed":
            pos += n
        elif how == "len":
            pos += n + int.from_bytes(data[pos:pos + n], "little")
        else:
            for _ in range(n):
                nl = data.find(b"\n", pos, pos + MAX_GLOBAL_BYTES + 1 if n == 2 else end)
                if nl < 0 and n == 2 and end - pos > MAX_GLOBAL_BYTES:  # GLOBAL: module and name lines
                    raise kind.unreadable(path, f"a pickle GLOBAL name over {MAX_GLOBAL_BYTES:,} bytes long")
                if nl < 0:
                    raise kind.unreadable(path, "a pickle text argument without its newline")
                pos = nl + 1


def _leaf(node, kind: FileKind, path, torch) -> None:
    """Check one non-container value of the unpickled tree."""
    if node is None or isinstance(node, (bool, float, str, bytes)):
        return
    if isinstance(node, int):
        if abs(node) >= 1 << 63:
            raise kind.unreadable(path, f"an integer of {node.bit_length()} bits")
        return
    if isinstance(node, np.ndarray):
        _check_dtype(node.dtype)
        return
    if isinstance(node, np.generic):
        if node.dtype.kind not in _ALLOWED_KINDS:
            raise kind.unreadable(path, f"a scalar of dtype {node.dtype}")
        return
    if torch is not None and isinstance(node, torch.Tensor):
        return
    raise kind.unreadable(path, f"an object of type {type(node).__name__}")


def _walk(obj, kind: FileKind, budget: _Budget, path):
    """Check the unpickled tree iteratively: depth, items (each container's length is counted every time it is
    reached, so shared references add up), leaf types, array bytes (once per array); sparse stand-ins are
    densified in place."""
    import sys

    torch = sys.modules.get("torch") if kind.torch_tensors else None
    seen: set[int] = set()
    items = 0
    containers = (dict, list, tuple)
    obj = _resolve(obj)
    if isinstance(obj, _SparseStandIn):
        obj = _densify(obj, budget)
    stack = [(obj, 0)] if isinstance(obj, containers) else []
    if not stack:
        _leaf(obj, kind, path, torch)
    while stack:
        node, depth = stack.pop()
        if depth >= kind.max_depth:
            raise kind.limit(path, f"containers nested deeper than {kind.max_depth}")
        items += len(node)
        if items > kind.max_items:
            raise kind.limit(path, f"more than {kind.max_items:,} objects (shared references count each time)")
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, (str, bytes, int)):
                    raise kind.unreadable(path, f"a dict key of type {type(key).__name__}")
            pairs = list(node.items())
        else:
            pairs = list(enumerate(node))
        for key, value in pairs:
            if isinstance(value, containers):
                stack.append((value, depth + 1))
                continue
            if isinstance(value, (_SparseStandIn, _ArrayStandIn)):
                if isinstance(node, tuple):
                    raise kind.unreadable(path, "an array or sparse matrix inside a tuple")
                value = _resolve(value)
                node[key] = value = _densify(value, budget) if isinstance(value, _SparseStandIn) else value
            _leaf(value, kind, path, torch)
            if id(value) not in seen and (isinstance(value, np.ndarray)
                                          or torch is not None and isinstance(value, torch.Tensor)):
                seen.add(id(value))
                size = value.size if isinstance(value, np.ndarray) else value.numel()
                budget.spend(size * max(value.itemsize if isinstance(value, np.ndarray) else value.element_size(),
                                        4), "an array")
    return obj


def load_pickle(path: str | Path, kind: FileKind):
    """Unpickle ``path`` with the allow-list and limits of ``kind`` (see the module docstring)."""
    path = Path(path)
    size = check_file(path, kind)
    budget = _Budget(kind.max_array_bytes)
    try:
        # Unpickled from a memory map, never from a file object: BufferedReader.read(n) allocates n bytes before
        # reading, so a FRAME or BINBYTES8 declaring 10 GB in a 300 KB file would cost 10 GB; mmap.read(n) is
        # clipped to what the file holds.
        with path.open("rb") as fh, (mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size
                                     else contextlib.nullcontext(io.BytesIO(b""))) as data:
            _prescan(data, kind, path)
            obj = _SafeUnpickler(data, kind, budget).load()
        return _walk(obj, kind, budget, path)
    except _Refused as exc:
        raise _refusal(exc, kind, path) from None
    except DinarError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the stream makes pickle/numpy raise: not our format
        raise kind.unreadable(path, f"{type(exc).__name__}: {str(exc)[:160]}") from None


def _refusal(exc: _Refused, kind: FileKind, path) -> DinarError:
    what = str(exc)
    if exc.limit:
        return kind.limit(path, what)
    if not exc.unsafe:
        return kind.unreadable(path, what)
    if what.startswith("chumpy"):
        return kind.unsafe(f"{kind.subject(path)} is not a readable {kind.format}: it holds chumpy objects "
                           f"({what}), which this loader does not build", fix=CHUMPY_CONVERT)
    return kind.unsafe(f"{kind.subject(path)} is not a readable {kind.format}: it refers to {what}, which a "
                       f"{kind.format} never holds (unpickling it could run code); nothing was loaded",
                       fix=kind.unsafe_fix or kind.fix)


# ----------------------------------------------------------------------------------------------------------------
# Zip archives and .npz


def check_zip_members(zf: zipfile.ZipFile, kind: FileKind, path, names: Iterable[str] | None = None,
                      max_members: int = 10_000) -> list[zipfile.ZipInfo]:
    """The archive's members (only ``names`` when given), after checking their declared uncompressed sizes
    against ``kind.max_array_bytes`` in total."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise kind.limit(path, f"{len(infos):,} archive members, more than {max_members:,}")
    wanted = None if names is None else set(names)
    chosen = [i for i in infos if wanted is None or i.filename in wanted]
    total = sum(i.file_size for i in chosen)
    if total > kind.max_array_bytes:
        raise kind.limit(path, f"its members declare {total:,} uncompressed bytes, more than the "
                               f"{kind.max_array_bytes:,} allowed")
    return chosen


def _read_npy_member(fp, info: zipfile.ZipInfo, budget: _Budget) -> np.ndarray:
    from numpy.lib import format as npy

    version = npy.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fp)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = npy.read_array_header_2_0(fp)
    else:
        raise _Refused(f"an .npy version {version}", unsafe=False)
    dt = _check_dtype(dtype)
    count = _count(shape)
    nbytes = count * dt.itemsize
    header = fp.tell() if hasattr(fp, "tell") else 0
    if header + nbytes > info.file_size:
        raise _Refused(f"member {info.filename!r} declares {nbytes:,} array bytes in {info.file_size:,}",
                       unsafe=False)
    budget.spend(nbytes, f"member {info.filename!r}")
    flat = np.empty(count, dt)
    view = memoryview(flat).cast("B")
    done = 0
    while done < nbytes:
        chunk = fp.read(min(8 * MB, nbytes - done))
        if not chunk:
            raise _Refused(f"member {info.filename!r} is truncated ({done:,} of {nbytes:,} bytes)", unsafe=False)
        view[done:done + len(chunk)] = chunk
        done += len(chunk)
    fp.read(1)  # reach the member's end so zipfile checks its CRC
    return flat.reshape(shape, order="F" if fortran else "C")


def load_npz(path: str | Path, kind: FileKind, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (only ``keys`` when given; absent keys are left out), read without pickle after
    checking each member's declared size and ``.npy`` header against ``kind``'s limits."""
    path = Path(path)
    check_file(path, kind)
    budget = _Budget(kind.max_array_bytes)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            names = None if keys is None else [k + ".npy" for k in keys] + list(keys)
            for info in check_zip_members(zf, kind, path, names):
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key in out:
                    raise kind.unreadable(path, f"member {key!r} given twice")
                with zf.open(info) as fp:
                    out[key] = _read_npy_member(fp, info, budget)
    except _Refused as exc:
        raise _refusal(exc, kind, path) from None
    except DinarError:
        raise
    except Exception as exc:  # noqa: BLE001 - BadZipFile, bad headers, CRC errors, zlib errors ...
        raise kind.unreadable(path, f"{type(exc).__name__}: {str(exc)[:160]}") from None
    return out


# ----------------------------------------------------------------------------------------------------------------
# torch files


ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError)
"""What ``zipfile`` raises on a damaged or crafted archive (NotImplementedError: a "version needed" or a
compression it lacks, found by make fuzz; RuntimeError: an encrypted member)."""


def torch_load(path: str | Path, kind: FileKind, safe_globals: list | None = None):
    """``torch.load(path, weights_only=True)`` after :func:`check_file`, :func:`prescan_torch_file` and, for a
    zip-format file, the member-size check (a torch archive stores its members, so they cannot declare more than
    ~the file's size). Exceptions of ``torch.load`` propagate (the caller names them: truncated, unsupported object
    ...)."""
    import torch

    path = Path(path)
    size = check_file(path, kind)
    if zipfile.is_zipfile(path):
        limit = replace(kind, max_array_bytes=min(kind.max_array_bytes, 2 * size + MB))
        try:
            with zipfile.ZipFile(path) as zf:
                check_zip_members(zf, limit, path)
        except ZIP_ERRORS:
            pass  # torch names a damaged archive itself
    prescan_torch_file(path, kind)
    with torch.serialization.safe_globals(safe_globals or []):
        return torch.load(path, map_location="cpu", weights_only=True)


def torch_load_named(path: str | Path, kind: FileKind, safe_globals: list | None = None):
    """:func:`torch_load`, whatever torch itself raises on a damaged or foreign file turned into ``kind``'s
    unreadable error naming the file (for loaders with no finer naming of torch's messages)."""
    try:
        return torch_load(path, kind, safe_globals)
    except DinarError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything torch raises on a damaged or foreign file gets a name
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise kind.unreadable(path, f"{type(exc).__name__}: {first}") from None


LEGACY_PICKLES = 5
"""A legacy (non-zip) torch file: magic number, protocol, system info, the object, its storage keys; then raw
storage bytes."""


def prescan_torch_file(path: Path, kind: FileKind) -> None:
    """:func:`_prescan` every pickle that ``torch.load`` would unpickle in ``path``: each ``data.pkl`` of a zip
    archive (torch reads the zip format when the file starts with a local file header), else the
    `LEGACY_PICKLES` pickles of the legacy format. torch's pre-1.0 tar format is refused (torch would read its
    members unchecked). A file that is neither (no pickle protocol header) raises ``pickle.UnpicklingError``, as
    ``torch.load`` would, for the caller to name (an HTML page, an empty file ...)."""
    import tarfile

    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [i for i in zf.infolist() if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
                for info in names:  # sizes already checked by check_zip_members
                    _prescan(zf.read(info), kind, path, _TORCH_OPCODES)
        except ZIP_ERRORS:
            pass  # torch names a damaged archive itself (zipfile and torch's reader do not agree on every damage)
        return
    if tarfile.is_tarfile(path):
        raise kind.unreadable(path, "torch's pre-1.0 tar format, which is not read")
    if head[:1] != b"\x80":
        raise pickle.UnpicklingError(f"{path.name} starts with {head!r}, not with a pickle protocol header")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0
        for _ in range(LEGACY_PICKLES):
            pos = _prescan(data, kind, path, _TORCH_OPCODES, start=pos)
