import json
import struct

import pytest
import torch

from fastvideo.mapping.rules import TensorInfo
from fastvideo.models.loader.checkpoint import (
    CheckpointError,
    SafetensorsWriter,
    iter_tensors,
    read_headers,
    read_safetensors_header,
    save_safetensors,
    weight_files,
)


def _sd():
    g = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(3, 4, generator=g),
        "a.bias": torch.randn(3, generator=g).to(torch.bfloat16),
        "b.idx": torch.arange(5, dtype=torch.int64),
        "c.half": torch.randn(2, 2, generator=g).half(),
    }


def test_single_file_round_trip(tmp_path):
    sd = _sd()
    save_safetensors(tmp_path / "m.safetensors", sd, metadata={"format": "pt"})
    assert not list(tmp_path.glob("*.tmp"))
    # Readable by the reference implementation too.
    from safetensors.torch import load_file

    ref = load_file(tmp_path / "m.safetensors")
    for k, v in sd.items():
        assert torch.equal(ref[k], v)
    got = dict(iter_tensors(tmp_path / "m.safetensors"))
    assert set(got) == set(sd)
    for k, v in sd.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v)
    headers = read_headers(tmp_path)
    assert headers["a.bias"] == TensorInfo((3,), "BF16")


def test_sharded_round_trip(tmp_path):
    sd = _sd()
    names = list(sd)
    save_safetensors(tmp_path / "model-00001-of-00002.safetensors", {k: sd[k] for k in names[:2]})
    save_safetensors(tmp_path / "model-00002-of-00002.safetensors", {k: sd[k] for k in names[2:]})
    index = {"metadata": {}, "weight_map": {k: f"model-0000{1 if i < 2 else 2}-of-00002.safetensors"
                                            for i, k in enumerate(names)}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    files = weight_files(tmp_path)
    assert [f.name for f in files] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    got = dict(iter_tensors(files))
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    assert set(read_headers(tmp_path)) == set(sd)


def test_shard_index_pointing_at_missing_file(tmp_path):
    (tmp_path / "m.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "gone.safetensors"}}))
    with pytest.raises(CheckpointError, match="gone.safetensors"):
        weight_files(tmp_path)


def test_pth_round_trip_and_refuses_pickled_objects(tmp_path):
    sd = _sd()
    torch.save(sd, tmp_path / "m.pth")
    got = dict(iter_tensors(tmp_path / "m.pth"))
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    assert read_headers(tmp_path / "m.pth")["a.weight"] == TensorInfo((3, 4), "F32")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth"):
        read_headers(tmp_path / "evil.pth")


def test_header_only_reading_reads_no_tensor_data(tmp_path, monkeypatch):
    # A 4 GiB tensor in a sparse file: reading the header must touch only the first bytes.
    path = tmp_path / "big.safetensors"
    infos = {"huge": TensorInfo((1024, 1024, 1024), "F32"), "small": TensorInfo((2,), "F32")}
    w = SafetensorsWriter(path, infos)  # truncate() makes the file sparse
    w._f.close()
    w.tmp.rename(path)
    size = path.stat().st_size
    assert size > 4 * 1024**3

    read_bytes = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            data = self.f.read(n)
            read_bytes.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    from fastvideo.mapping import safetensors_header  # the pure-Python reader behind ckpt.read_safetensors_header

    monkeypatch.setattr(safetensors_header, "open", lambda p, mode="r", *a, **k: Counting(real_open(p, mode, *a, **k)),
                        raising=False)
    entries, _ = read_safetensors_header(path)
    (n,) = struct.unpack("<Q", real_open(path, "rb").read(8))
    assert sum(read_bytes) == 8 + n
    assert entries["huge"].info.shape == (1024, 1024, 1024)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "truncated"),
        (b"\x05\x00", "truncated"),
        (struct.pack("<Q", 10**9) + b"{}", "corrupt or truncated"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
)
def test_corrupt_headers_name_the_file(tmp_path, content, match):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as exc:
        read_safetensors_header(p)
    assert "bad.safetensors" in str(exc.value)


def test_truncated_data_region(tmp_path):
    save_safetensors(tmp_path / "m.safetensors", _sd())
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match=r"cut.safetensors: truncated file"):
        read_headers(tmp_path / "cut.safetensors")


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(CheckpointError, match="nothere.safetensors: file not found"):
        read_headers(tmp_path / "nothere.safetensors")
    with pytest.raises(CheckpointError, match="no weight files"):
        weight_files(tmp_path)


def test_writer_never_leaves_partial_file(tmp_path):
    infos = {"a": TensorInfo((2,), "F32"), "b": TensorInfo((2,), "F32")}
    with pytest.raises(ValueError, match="never written"):
        with SafetensorsWriter(tmp_path / "x.safetensors", infos) as w:
            w.write("a", torch.zeros(2))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with SafetensorsWriter(tmp_path / "x.safetensors", infos) as w:
            w.write("a", torch.zeros(2))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
