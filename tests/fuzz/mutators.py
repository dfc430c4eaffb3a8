"""Structure-aware mutations (hypothesis strategies) of valid files: raw bytes, pickle opcode streams, JSON trees,
zip archives (members, declared sizes) and ``.npy`` headers."""

from __future__ import annotations

import io
import json
import pickletools
import struct
import zipfile

from hypothesis import strategies as st

INTERESTING_INTS = [0, 1, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 64 - 1, 2 ** 40]


# ---- bytes ------------------------------------------------------------------------------------------------------
@st.composite
def mutated_bytes(draw, seed: bytes, max_ops: int = 6) -> bytes:
    """``seed`` with a few random edits: flips, overwrites with interesting values, inserts, deletes, duplicated
    ranges, truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        n = len(data)
        op = draw(st.sampled_from(["flip", "int", "insert", "delete", "dup", "truncate"]))
        pos = draw(st.integers(0, max(0, n - 1)))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "int" and n:
            width = draw(st.sampled_from([1, 2, 4, 8]))
            value = draw(st.sampled_from(INTERESTING_INTS)) % (1 << (8 * width))
            data[pos:pos + width] = value.to_bytes(width, draw(st.sampled_from(["little", "big"])))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and n:
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "dup" and n:
            chunk = data[pos:pos + draw(st.integers(1, 256))]
            data[pos:pos] = chunk * draw(st.integers(1, 8))
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


# ---- pickles ----------------------------------------------------------------------------------------------------
_GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
            ("subprocess", "Popen"), ("chumpy.ch", "Ch"), ("numpy", "ndarray"), ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.numeric", "_frombuffer"), ("collections", "OrderedDict"), ("_codecs", "encode"),
            ("copyreg", "_reconstructor"), ("builtins", "object"), ("scipy.sparse._csc", "csc_matrix"),
            ("torch._utils", "_rebuild_tensor_v2"), ("torch.storage", "_load_from_bytes"), ("builtins", "getattr")]


def _opcode_chunks(draw) -> bytes:
    """One inserted opcode with a plausible (or lying) argument."""
    kind = draw(st.sampled_from(["global", "mark", "build", "container", "int", "bytes", "frame", "memo",
                                 "string", "float", "raw"]))
    if kind == "global":
        mod, name = draw(st.sampled_from(_GLOBALS))
        return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
    if kind == "mark":
        return b"("
    if kind == "build":
        return draw(st.sampled_from([b"R", b"b", b"\x81", b"\x92", b"\x93", b"s", b"u", b"a", b"e", b"t", b"0",
                                     b"2", b"\x85", b"\x86", b"\x87"]))
    if kind == "container":
        return draw(st.sampled_from([b"]", b"}", b")", b"l", b"d", b"\x8f", b"\x90", b"\x91"]))
    if kind == "int":
        value = draw(st.sampled_from(INTERESTING_INTS))
        return b"\x8a\x08" + (value % (1 << 64)).to_bytes(8, "little")
    if kind == "bytes":
        declared = draw(st.sampled_from([0, 8, 1 << 20, 1 << 31, 1 << 62]))
        return b"\x8e" + declared.to_bytes(8, "little") + draw(st.binary(max_size=32))
    if kind == "frame":
        return b"\x95" + draw(st.sampled_from([0, 9, 1 << 40])).to_bytes(8, "little")
    if kind == "memo":
        return draw(st.sampled_from([b"\x94", b"h\x00", b"h\xff", b"j\xff\xff\xff\x7f", b"q\x05"]))
    if kind == "string":
        return b"X" + draw(st.sampled_from([3, 1 << 30])).to_bytes(4, "little") + b"abc"
    if kind == "float":
        return b"G" + struct.pack(">d", draw(st.sampled_from([float("inf"), float("nan"), 1e308, -0.0, 1e39])))
    return draw(st.binary(min_size=1, max_size=8))


@st.composite
def mutated_pickle(draw, seed: bytes, max_ops: int = 4, max_repeat_bytes: int = 4 << 20) -> bytes:
    """``seed`` (a pickle) edited at opcode boundaries: opcodes dropped, duplicated, swapped or inserted
    (globals, containers, lying lengths, huge ints) or a run of them repeated up to ``max_repeat_bytes``; sometimes
    raw byte edits on top. A seed that an earlier edit already broke (no opcode stream to cut) gets raw byte edits
    only."""
    try:
        ops = [(pos, op) for op, _arg, pos in pickletools.genops(seed)]
    except ValueError:
        return draw(mutated_bytes(seed, max_ops=3))
    bounds = [pos for pos, _ in ops] + [len(seed)]
    chunks = [seed[bounds[i]:bounds[i + 1]] for i in range(len(ops))] + [seed[bounds[-1]:]]
    for _ in range(draw(st.integers(1, max_ops))):
        i = draw(st.integers(0, len(chunks) - 1))
        op = draw(st.sampled_from(["drop", "dup", "swap", "insert", "insert", "repeat"]))
        if op == "drop" and len(chunks) > 1:
            del chunks[i]
        elif op == "dup":
            chunks.insert(i, chunks[i])
        elif op == "swap":
            j = draw(st.integers(0, len(chunks) - 1))
            chunks[i], chunks[j] = chunks[j], chunks[i]
        elif op == "insert":
            chunks.insert(i, _opcode_chunks(draw))
        elif op == "repeat":  # bounded: bombs made of small opcodes, not big files (unit tests cover those)
            run = b"".join(chunks[i:i + draw(st.integers(1, 6))])
            chunks.insert(i, run * min(draw(st.integers(2, 2000)), max(2, max_repeat_bytes // max(1, len(run)))))
    data = b"".join(chunks)
    if draw(st.booleans()) and draw(st.booleans()):
        data = draw(mutated_bytes(data, max_ops=2))
    return data


# ---- JSON -------------------------------------------------------------------------------------------------------
json_numbers = st.one_of(
    st.integers(), st.sampled_from([1e39, -1e39, 2e9, -2e9, 1e308, 5e-324, 0.0, -0.0, 1.0000001, 1.5, -1.0, 10 ** 30]),
    st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), json_numbers, st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)


def _paths(tree, max_depth: int = 6):
    """Paths (key tuples) of the tree's nodes down to ``max_depth``."""
    stack = [((), tree)]
    while stack:
        prefix, node = stack.pop()
        yield prefix
        if len(prefix) < max_depth:
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            stack.extend((prefix + (k,), v) for k, v in items)


def _replace(tree, path, value):
    if not path:
        return value
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return tree


@st.composite
def mutated_json(draw, seed: dict, max_ops: int = 4) -> bytes:
    """``seed`` (a JSON document) with subtrees replaced by odd types, huge or non-finite numbers, lists of the
    wrong length or deep nesting; serialised (sometimes with raw text edits: '1e999', 50,000 nested brackets)."""
    tree = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(1, max_ops))):
        paths = list(_paths(tree))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["value", "value", "number_list", "wrap", "delete"]))
        if op == "value":
            tree = _replace(tree, path, draw(json_values))
        elif op == "number_list":
            tree = _replace(tree, path, draw(st.lists(json_numbers, min_size=0, max_size=220)))
        elif op == "wrap":
            depth = draw(st.sampled_from([1, 3, 100]))  # deeper nesting: the raw 'brackets' edit below
            value = draw(json_values)
            for _ in range(depth):
                value = [value]
            tree = _replace(tree, path, value)
        elif op == "delete" and path:
            parent = tree
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
    try:
        text = json.dumps(tree)
    except (RecursionError, ValueError):
        text = json.dumps(seed)
    raw = draw(st.sampled_from(["none", "none", "number", "brackets", "bytes"]))
    if raw == "number":
        text = text.replace("1.0", draw(st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "1" * 5000])), 1)
    elif raw == "brackets":
        n = draw(st.sampled_from([1000, 50_000]))
        text = text.replace("[", "[" * n, 1).replace("]", "]" * n, 1)
    data = text.encode()
    if raw == "bytes":
        data = draw(mutated_bytes(data, max_ops=3))
    return data


# ---- zip archives and .npy headers -----------------------------------------------------------------------------
_DESCRS = ["<f4", "<f8", ">f8", "|O", "<U5", "|S3", "|V8", "<c16", "<i8", "|b1", "<M8[s]",
           "[('a', '<f4'), ('b', '|O')]", "('<f4', (3,))"]


@st.composite
def mutated_npy_header(draw, header: bytes) -> bytes:
    """An ``.npy`` header (magic, version, length, dict text) with its dtype, shape or order edited."""
    text = header[10:].decode("latin1")
    op = draw(st.sampled_from(["descr", "shape", "order", "version", "text"]))
    if not all(mark in text for mark in ("'descr': ", ", 'fortran_order'", "'shape': ", "}")):
        op = "text"  # a header an earlier edit already broke: byte edits only
    if op == "descr":
        start = text.index("'descr': ") + 9
        end = text.index(", 'fortran_order'")
        text = text[:start] + repr(draw(st.sampled_from(_DESCRS))) + text[end:]
    elif op == "shape":
        start = text.index("'shape': ") + 9
        end = text.index("}")
        dims = draw(st.lists(st.sampled_from([0, 1, 3, 165, 10 ** 6, 2 ** 31, 2 ** 62, -1]), max_size=4))
        text = text[:start] + repr(tuple(dims)) + ", " + text[end:]
    elif op == "order":
        text = text.replace("False", "True") if "False" in text else text.replace("True", "False")
    elif op == "text":
        return draw(mutated_bytes(header, max_ops=2))
    body = text.encode("latin1")
    version = header[6:8] if op != "version" else draw(st.sampled_from([b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    if version == b"\x01\x00":
        return header[:6] + version + struct.pack("<H", len(body)) + body
    return header[:6] + version + struct.pack("<I", len(body)) + body


def npz_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _patch_declared_sizes(data: bytes, draw) -> bytes:
    """Overwrite the declared (un)compressed size of some local / central zip headers."""
    out = bytearray(data)
    for sig, offsets in ((b"PK\x03\x04", (18, 22)), (b"PK\x01\x02", (20, 24))):
        pos = out.find(sig)
        while pos >= 0:
            if draw(st.booleans()):
                field = pos + draw(st.sampled_from(offsets))
                value = draw(st.sampled_from([0, 1, 100, 2 ** 31, 2 ** 32 - 1]))
                out[field:field + 4] = value.to_bytes(4, "little")
            pos = out.find(sig, pos + 4)
    return bytes(out)


@st.composite
def mutated_zip(draw, members: dict[str, bytes], npy: bool = True, member_mutator=None) -> bytes:
    """An archive of ``members`` after edits: a member's .npy header or payload mutated, members dropped,
    renamed, duplicated, deflated bombs added (declared sizes honest), and declared sizes patched (lying)."""
    members = dict(members)
    names = list(members)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["header", "payload", "drop", "rename", "bomb", "none"]))
        name = draw(st.sampled_from(names)) if names else None
        if name is None or name not in members:
            continue
        if op == "header" and npy and members[name][:6] == b"\x93NUMPY" and len(members[name]) >= 12:
            raw = members[name]
            hlen = 10 + (struct.unpack("<H", raw[8:10])[0] if raw[6] == 1 else struct.unpack("<I", raw[8:12])[0] + 2)
            members[name] = draw(mutated_npy_header(raw[:hlen])) + raw[hlen:]
        elif op == "payload":
            mutate = member_mutator or (lambda seed: mutated_bytes(seed, max_ops=3))
            members[name] = draw(mutate(members[name]))
        elif op == "drop":
            del members[name]
        elif op == "rename":
            members[draw(st.sampled_from(["poses.npy", "x.npy", name + "x", "../evil.npy"]))] = members.pop(name)
        elif op == "bomb":
            members[name] = members[name][:128] + bytes(draw(st.sampled_from([1 << 16, 1 << 22])))
    buf = io.BytesIO()
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    data = buf.getvalue()
    if draw(st.booleans()):
        data = _patch_declared_sizes(data, draw)
    if draw(st.booleans()) and draw(st.booleans()):
        data = draw(mutated_bytes(data, max_ops=2))
    return data
