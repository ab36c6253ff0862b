"""Safetensors headers in pure Python: the tensor names, shapes, dtypes and byte ranges of a file, read
without its data (the first 8 bytes give the header length, then that much JSON), plus the values of tiny
tensors (a LoRA's ``alpha`` scalars) read straight from their bytes.

Torch-free, so the studio reads LoRA and checkpoint headers itself; :mod:`fastvideo.models.loader.checkpoint`
builds the tensor reading on it.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from fastvideo.mapping.rules import TensorInfo

SAFETENSORS_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}
# A header larger than this is certainly corrupt (real ones are a few MB).
MAX_HEADER_BYTES = 256 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class SafetensorsEntry:
    info: TensorInfo
    path: Path
    begin: int  # absolute byte offset in the file
    end: int


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, SafetensorsEntry], dict[str, str]]:
    """Parse one safetensors header. Returns (entries, __metadata__)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, no header length)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(
                f"{path}: corrupt or truncated safetensors header (header says {n} bytes, file has {size})"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors header (not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    data_start = 8 + n
    entries: dict[str, SafetensorsEntry] = {}
    for name, spec in header.items():
        try:
            dtype, shape, (b, e) = spec["dtype"], tuple(int(x) for x in spec["shape"]), spec["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: corrupt safetensors header entry for {name!r}") from None
        if dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
        numel = 1
        for d in shape:
            numel *= d
        if e - b != numel * SAFETENSORS_DTYPES[dtype] or b < 0:
            raise CheckpointError(f"{path}: tensor {name!r} byte range {b}..{e} does not fit shape {list(shape)} {dtype}")
        if data_start + e > size:
            raise CheckpointError(
                f"{path}: truncated file: tensor {name!r} ends at byte {data_start + e}, file has {size} bytes"
            )
        entries[name] = SafetensorsEntry(TensorInfo(shape, dtype), path, data_start + b, data_start + e)
    return entries, meta


#: struct codes of the dtypes whose values :func:`read_small_values` decodes (BF16 is widened to F32 by hand)
_STRUCT_CODES = {"F64": "d", "F32": "f", "F16": "e", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U8": "B",
                 "BOOL": "?", "U16": "H", "U32": "I", "U64": "Q"}
MAX_SMALL_VALUES = 64


def read_small_values(entry: SafetensorsEntry) -> list[float]:
    """The values of a tiny tensor (at most :data:`MAX_SMALL_VALUES` elements, e.g. a LoRA's ``alpha``)
    decoded from its bytes, in C order; a :class:`CheckpointError` for a dtype it cannot decode."""
    dtype, n = entry.info.dtype, 1
    for d in entry.info.shape:
        n *= int(d)
    if n > MAX_SMALL_VALUES:
        raise CheckpointError(f"{entry.path}: {n} values is not a small tensor")
    with open(entry.path, "rb") as f:
        f.seek(entry.begin)
        raw = f.read(entry.end - entry.begin)
    if len(raw) != entry.end - entry.begin:
        raise CheckpointError(f"{entry.path}: truncated while reading a tensor")
    if dtype == "BF16":
        return [v for (v,) in struct.iter_unpack("<f", b"".join(b"\0\0" + raw[i:i + 2] for i in range(0, len(raw), 2)))]
    code = _STRUCT_CODES.get(dtype)
    if code is None:
        raise CheckpointError(f"{entry.path}: cannot decode {dtype} values without torch")
    return [float(v) for v in struct.unpack(f"<{n}{code}", raw)] if n else []
