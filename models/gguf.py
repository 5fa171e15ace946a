"""Minimal GGUF v3 writer and reader (no dependency on the gguf package).

Layout (little-endian): magic "GGUF", u32 version 3, u64 tensor_count, u64 kv_count,
kv_count x (string key, u32 value_type, value), tensor_count x (string name,
u32 n_dims, n_dims x u64 ne, u32 ggml_type, u64 offset), zero padding to
general.alignment, then the tensor data, each tensor at its offset (a multiple of the
alignment) from the start of the data section. A string is u64 byte length + UTF-8
bytes; an array is u32 element type, u64 count, elements. ne[0] is the contiguous
dimension: a row-major numpy array of shape (rows, cols) is written with
ne = [cols, rows] and its bytes as they are.
"""

import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3

# Metadata value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FMT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
               FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# Tensor types.
GGML_F32, GGML_F16 = 0, 1
_GGML_DTYPE = {GGML_F32: np.float32, GGML_F16: np.float16}


class Value:
    """A typed metadata value: Value(UINT32, 3), Value(ARRAY, [..], elem=STRING)."""

    def __init__(self, vtype, value, elem=None):
        self.vtype, self.value, self.elem = vtype, value, elem


def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, value, elem=None):
    if vtype == STRING:
        return _pack_string(value)
    if vtype == ARRAY:
        out = [struct.pack("<IQ", elem, len(value))]
        if elem == STRING:
            out.extend(_pack_string(v) for v in value)
        else:
            out.append(np.asarray(value, dtype=np.dtype(_SCALAR_FMT[elem])).tobytes())
        return b"".join(out)
    return struct.pack(_SCALAR_FMT[vtype], value)


def write(path, metadata, tensors, alignment=32):
    """metadata: ordered dict key -> Value; tensors: ordered dict name -> np.ndarray
    (float32 or float16, C-contiguous). general.alignment is added if absent."""
    metadata = dict(metadata)
    metadata.setdefault("general.alignment", Value(UINT32, alignment))
    head = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(metadata))]
    for k, v in metadata.items():
        head.append(_pack_string(k) + struct.pack("<I", v.vtype) + _pack_value(v.vtype, v.value, v.elem))
    offset, blobs = 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        gtype = {np.dtype(np.float32): GGML_F32, np.dtype(np.float16): GGML_F16}[arr.dtype]
        ne = list(reversed(arr.shape))
        head.append(_pack_string(name) + struct.pack("<I", len(ne))
                    + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", gtype, offset))
        data = arr.tobytes()
        pad = (-len(data)) % alignment
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    header = b"".join(head)
    header += b"\0" * ((-len(header)) % alignment)
    with open(path, "wb") as f:
        f.write(header)
        for b in blobs:
            f.write(b)


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("<Q")
        s = self.buf[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            elem, n = self.take("<IQ")
            if elem == STRING:
                return [self.string() for _ in range(n)]
            if elem == ARRAY:
                return [self.value(ARRAY) for _ in range(n)]
            dt = np.dtype(_SCALAR_FMT[elem])
            arr = np.frombuffer(self.buf, dtype=dt, count=n, offset=self.pos)
            self.pos += n * dt.itemsize
            return arr.tolist()
        return self.take(_SCALAR_FMT[vtype])


def read(path):
    """Returns (metadata dict key -> python value, tensors dict name -> np.ndarray)."""
    with open(path, "rb") as f:
        buf = f.read()
    c = _Cursor(buf)
    if buf[:4] != GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file")
    c.pos = 4
    version, n_tensors, n_kv = c.take("<IQQ")
    if version != GGUF_VERSION:
        raise ValueError(f"{path}: GGUF version {version}, want 3")
    meta = {}
    for _ in range(n_kv):
        k = c.string()
        meta[k] = c.value(c.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.take("<I")
        ne = [c.take("<Q") for _ in range(nd)]
        gtype, off = c.take("<IQ")
        infos.append((name, ne, gtype, off))
    align = meta.get("general.alignment", 32)
    start = c.pos + ((-c.pos) % align)
    tensors = {}
    for name, ne, gtype, off in infos:
        dt = np.dtype(_GGML_DTYPE[gtype])
        count = int(np.prod(ne))
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=start + off)
        tensors[name] = arr.reshape(list(reversed(ne)))
    return meta, tensors
