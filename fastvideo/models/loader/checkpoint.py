"""Checkpoint files: headers without data, tensors streamed one at a time.

* safetensors (single file or sharded with ``*.safetensors.index.json``): the
  header is the first 8 bytes (little-endian length) plus that much JSON, so
  reading it touches nothing else.  Tensors are read with plain ``seek``/``read``
  into their own buffer (no whole-file memory map, which fails for files larger
  than RAM on some machines).
* ``.pth`` / ``.bin`` / ``.pt``: ``torch.load(weights_only=True, mmap=True)`` -- never
  unpickles arbitrary objects; with mmap the tensors are not read until used.

The safetensors header reader is pure Python (no torch import) and lives in
:mod:`fastvideo.mapping.safetensors_header` so the studio can use it; its names are
importable from here too.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from fastvideo.mapping.rules import TensorInfo
from fastvideo.mapping.safetensors_header import (  # noqa: F401 (re-exported: the loader's public names)
    MAX_HEADER_BYTES,
    SAFETENSORS_DTYPES,
    CheckpointError,
    SafetensorsEntry,
    read_safetensors_header,
)

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def weight_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files of a component folder: a sharded index wins, else all weight files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: folder not found")
    indexes = sorted(folder.glob("*.safetensors.index.json")) + sorted(folder.glob("*.bin.index.json"))
    if indexes:
        from fastvideo.hub.names import shard_names

        index = indexes[0]
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index}: not a valid shard index ({exc})") from None
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: not a valid shard index ('weight_map' is not an object)")
        files = []
        for shard in shard_names(index):  # plain file names in this folder only (raises otherwise)
            p = folder / shard
            if not p.is_file():
                raise CheckpointError(f"{index}: lists shard {shard!r}, which is not in {folder}")
            files.append(p)
        return files
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        raise CheckpointError(f"{folder}: no weight files (*.safetensors, *.pth, *.bin) found")
    return files


def read_headers(paths: list[Path] | Path | str) -> dict[str, TensorInfo]:
    """name -> TensorInfo for a file, a folder, or a list of files. Reads no tensor data
    for safetensors; for pickled formats tensors are memory-mapped, not read."""
    files = _as_files(paths)
    out: dict[str, TensorInfo] = {}
    for p in files:
        if p.suffix == ".safetensors":
            entries, _ = read_safetensors_header(p)
            for k, e in entries.items():
                _check_dup(out, k, p)
                out[k] = e.info
        else:
            for k, t in _torch_load(p).items():
                _check_dup(out, k, p)
                out[k] = TensorInfo(tuple(t.shape), torch_dtype_to_code(t.dtype))
    return out


def iter_tensors(paths: list[Path] | Path | str, names: set[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:  # noqa: F821
    """Yield (name, tensor) one at a time; each tensor owns its memory."""
    import torch

    for p in _as_files(paths):
        if p.suffix == ".safetensors":
            entries, _ = read_safetensors_header(p)
            with open(p, "rb") as f:
                for name, e in sorted(entries.items(), key=lambda kv: kv[1].begin):
                    if names is not None and name not in names:
                        continue
                    yield name, _read_tensor(f, e, torch)
        else:
            sd = _torch_load(p)
            for name in list(sd):
                if names is not None and name not in names:
                    continue
                yield name, sd.pop(name).clone()


def _read_tensor(f, e: SafetensorsEntry, torch):
    nbytes = e.end - e.begin
    buf = torch.empty(nbytes, dtype=torch.uint8)
    f.seek(e.begin)
    if nbytes:
        got = f.readinto(memoryview(buf.numpy()))
        if got != nbytes:
            raise CheckpointError(f"{e.path}: truncated while reading a tensor ({got} of {nbytes} bytes)")
    return buf.view(code_to_torch_dtype(e.info.dtype)).reshape(e.info.shape)


def _torch_load(p: Path) -> dict:
    import pickle
    import zipfile

    import torch

    if not p.is_file():
        raise CheckpointError(f"{p}: file not found")
    try:
        mmap = zipfile.is_zipfile(p)
        sd = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{p}: refused to load: it holds objects other than tensors ({exc})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{p}: expected a dict of tensors")
    return sd


def _as_files(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        return weight_files(p) if p.is_dir() else [p]
    return [Path(p) for p in paths]


def _check_dup(out: dict, key: str, p: Path) -> None:
    if key in out:
        raise CheckpointError(f"{p}: tensor {key!r} also appears in another shard")


_CODES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "U16": "uint16", "U32": "uint32", "U64": "uint64",
}


def code_to_torch_dtype(code: str):
    import torch

    return getattr(torch, _CODES[code])


def torch_dtype_to_code(dtype) -> str:
    name = str(dtype).replace("torch.", "")
    for code, n in _CODES.items():
        if n == name:
            return code
    raise CheckpointError(f"dtype {dtype} cannot be stored in safetensors")


class SafetensorsWriter:
    """Stream tensors into a safetensors file whose header is known up front.

    Used by conversion: the header (names, shapes, dtypes) comes from the source
    headers, then each tensor is written as it is read, so only one tensor is in
    memory at a time.  Writes to ``path + '.tmp'`` and renames on ``close()``.
    """

    def __init__(self, path: str | os.PathLike, infos: dict[str, TensorInfo], metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        header: dict = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        offset = 0
        self._offsets: dict[str, tuple[int, int]] = {}
        for name, info in infos.items():
            numel = 1
            for d in info.shape:
                numel *= d
            n = numel * SAFETENSORS_DTYPES[info.dtype]
            header[name] = {"dtype": info.dtype, "shape": list(info.shape), "data_offsets": [offset, offset + n]}
            self._offsets[name] = (offset, offset + n)
            offset += n
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        self._infos = infos
        self._data_start = 8 + len(raw)
        self._written: set[str] = set()
        self._f = open(self.tmp, "wb")
        self._f.write(struct.pack("<Q", len(raw)) + raw)
        self._f.truncate(self._data_start + offset)

    def write(self, name: str, tensor) -> None:
        info = self._infos.get(name)
        if info is None:
            raise KeyError(f"{name!r} is not in the header of {self.path}")
        if tuple(tensor.shape) != info.shape or torch_dtype_to_code(tensor.dtype) != info.dtype:
            raise ValueError(f"{name}: got {list(tensor.shape)} {tensor.dtype}, header says {list(info.shape)} {info.dtype}")
        b, e = self._offsets[name]
        self._f.seek(self._data_start + b)
        data = tensor.detach().contiguous().cpu().reshape(-1).view(__import__("torch").uint8).numpy()
        self._f.write(memoryview(data))
        self._written.add(name)

    def close(self) -> None:
        self._f.close()
        missing = set(self._infos) - self._written
        if missing:
            self.tmp.unlink(missing_ok=True)
            raise ValueError(f"{self.path}: {len(missing)} tensors were never written, e.g. {sorted(missing)[:3]}")
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def save_safetensors(path: str | os.PathLike, state_dict: dict, metadata: dict[str, str] | None = None) -> None:
    """Write a whole state dict atomically (temp file + rename)."""
    infos = {k: TensorInfo(tuple(v.shape), torch_dtype_to_code(v.dtype)) for k, v in state_dict.items()}
    with SafetensorsWriter(path, infos, metadata) as w:
        for k, v in state_dict.items():
            w.write(k, v)
