"""Read TensorFlow checkpoints without TensorFlow.

The official VGGish weights (``vggish_model.ckpt``) are a TensorFlow checkpoint. Both on-disk
formats are LevelDB-style sorted tables of protocol buffers:

* V1 (one file): the table maps "" to a SavedTensorSlices message whose ``meta`` lists every
  tensor, and one key per tensor slice to a SavedTensorSlices whose ``data`` holds the values.
* V2 (``<prefix>.index`` + ``<prefix>.data-NNNNN-of-NNNNN``): the index table maps each tensor
  name to a BundleEntryProto (dtype, shape, shard, offset, size); the values are raw
  little-endian bytes in the data shard.

Only what checkpoints of plain float/int variables need is implemented: tables with no or
Snappy compression, and the protobuf fields named above.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..utils import relative_hint

TABLE_MAGIC = 0xDB4775248B80FB57
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
          9: np.int64, 10: np.bool_, 17: np.uint16}
# field numbers of TensorProto's repeated value fields, by dtype
_VALUE_FIELDS = {np.float32: (5, "<f4"), np.float64: (6, "<f8"), np.int32: (7, "<i4"),
                 np.int64: (10, "<i8")}


class CheckpointError(ValueError):
    pass


# ----------------------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a message; length-delimited values stay bytes."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wt}")
        out.append((num, wt, val))
    return out


def _get(fields, num):
    return [v for n, _, v in fields if n == num]


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _shape(buf: bytes) -> tuple[int, ...]:
    return tuple(_signed64(_get(_fields(d), 1)[0]) if _get(_fields(d), 1) else 0
                 for d in _get(_fields(buf), 2))


# ----------------------------------------------------------------------------- sorted tables


def _snappy_decompress(src: bytes) -> bytes:
    length, pos = _varint(src, 0)
    out = bytearray()
    while pos < len(src):
        tag = src[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(src[pos:pos + extra], "little")
                pos += extra
            n += 1
            out += src[pos:pos + n]
            pos += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | src[pos]
            pos += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            off = int.from_bytes(src[pos:pos + 2], "little")
            pos += 2
        else:
            n = (tag >> 2) + 1
            off = int.from_bytes(src[pos:pos + 4], "little")
            pos += 4
        for _ in range(n):  # copies may overlap their own output
            out.append(out[-off])
    if len(out) != length:
        raise CheckpointError("corrupt snappy block")
    return bytes(out)


def _block(data: bytes, offset: int, size: int) -> bytes:
    raw = data[offset:offset + size]
    kind = data[offset + size]
    if kind == 0:
        return raw
    if kind == 1:
        return _snappy_decompress(raw)
    raise CheckpointError(f"unsupported table block compression {kind}")


def _block_entries(block: bytes):
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + vlen]
        pos += vlen


def read_table(path: str | Path) -> dict[bytes, bytes]:
    """Every key/value of a LevelDB-format table file."""
    data = Path(path).read_bytes()
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TensorFlow checkpoint table (bad magic number)")
    footer = data[-48:]
    _, pos = _varint(footer, 0)          # metaindex offset
    _, pos = _varint(footer, pos)        # metaindex size
    idx_off, pos = _varint(footer, pos)
    idx_size, pos = _varint(footer, pos)
    table = {}
    for _, handle in _block_entries(_block(data, idx_off, idx_size)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for k, v in _block_entries(_block(data, off, size)):
            table[k] = v
    return table


# ----------------------------------------------------------------------------- checkpoints


def _tensor_values(tensor_proto: bytes, dtype, count: int) -> np.ndarray:
    f = _fields(tensor_proto)
    content = _get(f, 4)
    if content:
        return np.frombuffer(content[0], dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    num, fmt = _VALUE_FIELDS.get(dtype, (None, None))
    if num is None:
        raise CheckpointError(f"unsupported tensor dtype {dtype}")
    vals = []
    for n, wt, v in f:
        if n != num:
            continue
        if wt == 2 and fmt in ("<f4", "<f8"):  # packed floats
            vals.append(np.frombuffer(v, dtype=fmt))
        elif wt == 2:  # packed varints
            pos, ints = 0, []
            while pos < len(v):
                x, pos = _varint(v, pos)
                ints.append(_signed64(x))
            vals.append(np.array(ints, dtype=fmt))
        elif wt == 5:
            vals.append(np.frombuffer(v, dtype="<f4"))
        elif wt == 1:
            vals.append(np.frombuffer(v, dtype="<f8"))
        else:
            vals.append(np.array([_signed64(v)], dtype=fmt))
    arr = np.concatenate(vals) if vals else np.zeros(0, dtype)
    if arr.size == 1 and count > 1:  # a constant tensor stores one value
        arr = np.full(count, arr[0])
    return arr.astype(dtype)


def _slice_extents(slice_proto: bytes, shape: tuple[int, ...]) -> tuple[slice, ...]:
    extents = [_fields(e) for e in _get(_fields(slice_proto), 1)]
    out = []
    for d, size in enumerate(shape):
        if d < len(extents) and _get(extents[d], 2):
            start = _get(extents[d], 1)[0] if _get(extents[d], 1) else 0
            out.append(slice(start, start + _get(extents[d], 2)[0]))
        else:
            out.append(slice(0, size))
    return tuple(out)


def _read_v1(path: Path) -> dict[str, np.ndarray]:
    table = read_table(path)
    if b"" not in table:
        raise CheckpointError(f"{path}: no tensor list in the checkpoint")
    meta = _get(_fields(table[b""]), 1)[0]
    tensors: dict[str, np.ndarray] = {}
    specs = {}
    for t in _get(_fields(meta), 1):
        f = _fields(t)
        name = _get(f, 1)[0].decode()
        shape = _shape(_get(f, 2)[0]) if _get(f, 2) else ()
        dtype = DTYPES.get(_get(f, 3)[0] if _get(f, 3) else 1)
        specs[name] = (shape, dtype)
        tensors[name] = np.zeros(shape, dtype)
    for key, value in table.items():
        if key == b"":
            continue
        data = _get(_fields(value), 2)
        if not data:
            continue
        f = _fields(data[0])
        name = _get(f, 1)[0].decode()
        shape, dtype = specs[name]
        region = _slice_extents(_get(f, 2)[0], shape) if _get(f, 2) else tuple(slice(0, s) for s in shape)
        sub_shape = tuple(s.stop - s.start for s in region)
        values = _tensor_values(_get(f, 3)[0], dtype, int(np.prod(sub_shape)))
        tensors[name][region] = values.reshape(sub_shape)
    return tensors


def _read_v2(prefix: Path) -> dict[str, np.ndarray]:
    table = read_table(prefix.with_name(prefix.name + ".index"))
    tensors = {}
    shards: dict[int, bytes] = {}
    header = _fields(table.get(b"", b""))
    num_shards = _get(header, 1)[0] if _get(header, 1) else 1
    for key, value in table.items():
        if key == b"":
            continue
        f = _fields(value)
        dtype = DTYPES.get(_get(f, 1)[0] if _get(f, 1) else 1)
        shape = _shape(_get(f, 2)[0]) if _get(f, 2) else ()
        shard = _get(f, 3)[0] if _get(f, 3) else 0
        offset = _get(f, 4)[0] if _get(f, 4) else 0
        size = _get(f, 5)[0] if _get(f, 5) else 0
        if shard not in shards:
            shards[shard] = prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}").read_bytes()
        raw = shards[shard][offset:offset + size]
        tensors[key.decode()] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    return tensors


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """All variables of a TensorFlow checkpoint, by name.

    ``path`` is a V1 checkpoint file, or a V2 prefix (``model.ckpt`` for ``model.ckpt.index``),
    or the ``.index`` file itself.
    """
    p = Path(path)
    if p.suffix == ".index":
        p = p.with_suffix("")
    if p.with_name(p.name + ".index").exists():
        return _read_v2(p)
    if p.is_file():
        return _read_v1(p)
    raise FileNotFoundError(f"no TensorFlow checkpoint at {path}{relative_hint(path)} (expected a file, or {path}.index)")
