"""The studio <-> inference-process protocol: framing and message types.

Torch-free and Qt-free (stdlib + numpy), so both the GUI process and the worker
import it.  Full description with every message: ``docs/protocol.md``.

Wire format (both directions), one *frame* per message::

    magic      4 bytes   b"FVS\\x01"  (resynchronisation point, checks the stream)
    header_len 4 bytes   big-endian unsigned, length of the JSON header
    payload_len 4 bytes  big-endian unsigned, length of the raw payload (often 0)
    header     header_len bytes of UTF-8 JSON: an object with at least "type"
    payload    payload_len raw bytes (preview frames: uint8 pixels, C order)

The worker talks on its *original* stdout file descriptor, which it duplicates
and then points fd 1 and fd 2 at a pipe it reads itself; whatever libraries
print (Python or C level) therefore becomes ``log`` events and can never
corrupt the channel.  Requests arrive on the worker's stdin.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1

MAGIC = b"FVS\x01"
_PREFIX = struct.Struct(">4sII")
PREFIX_SIZE = _PREFIX.size  # 12
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024 * 1024 - 1

# Requests (studio -> worker).
REQ_LOAD_MODEL = "load_model"
REQ_DESCRIBE = "describe"
REQ_GENERATE = "generate"
REQ_CANCEL = "cancel"
REQ_RUN_PARITY = "run_parity"
REQ_INSPECT = "inspect"
REQ_PING = "ping"
REQ_SHUTDOWN = "shutdown"
REQ_DEBUG = "_debug"  # only honoured when the worker runs with --test-hooks
REQ_PUT_FILE = "put_file"  # a piece of an input file (a remote client's image / video); payload: the bytes
REQUEST_TYPES = frozenset({
    REQ_LOAD_MODEL, REQ_DESCRIBE, REQ_GENERATE, REQ_CANCEL, REQ_RUN_PARITY,
    REQ_INSPECT, REQ_PING, REQ_SHUTDOWN, REQ_DEBUG, REQ_PUT_FILE,
})

# Events (worker -> studio).
EV_HELLO = "hello"
EV_HEARTBEAT = "heartbeat"
EV_LOG = "log"
EV_LOADING = "loading"
EV_READY = "ready"
EV_DESCRIBED = "described"
EV_STARTED = "started"
EV_STAGE = "stage"
EV_PROGRESS = "progress"
EV_PREVIEW = "preview"
EV_RESULT = "result"
EV_CANCELLED = "cancelled"
EV_ERROR = "error"
EV_PARITY_RESULT = "parity_result"
EV_INSPECT_RESULT = "inspect_result"
EV_PONG = "pong"
EV_BYE = "bye"
EV_FILE_CHUNK = "file_chunk"  # a piece of a finished video (generate with stream_video: true); payload: the bytes
EV_FILE_END = "file_end"  # the video's size and sha256, after its last chunk
EV_FILE_STORED = "file_stored"  # answers the last put_file piece: the file's path on the engine's host
EVENT_TYPES = frozenset({
    EV_HELLO, EV_HEARTBEAT, EV_LOG, EV_LOADING, EV_READY, EV_DESCRIBED, EV_STARTED,
    EV_STAGE, EV_PROGRESS, EV_PREVIEW, EV_RESULT, EV_CANCELLED, EV_ERROR,
    EV_PARITY_RESULT, EV_INSPECT_RESULT, EV_PONG, EV_BYE, EV_FILE_CHUNK, EV_FILE_END, EV_FILE_STORED,
})
FILE_CHUNK_BYTES = 1 << 20  # file_chunk payload size (the last chunk may be smaller)


class ProtocolError(ValueError):
    """A frame that cannot be decoded (bad magic, oversized, bad JSON, bad preview)."""


@dataclass
class Message:
    """One decoded frame: the JSON header and the raw payload (b"" if none)."""

    header: dict[str, Any]
    payload: bytes = b""

    @property
    def type(self) -> str:
        return self.header.get("type", "")

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.header[key]


def encode(header: dict[str, Any], payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One frame for ``header`` (must contain "type") and an optional raw payload."""
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("a message header must be a dict with a string 'type'")
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    payload = bytes(payload) if not isinstance(payload, bytes) else payload
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return _PREFIX.pack(MAGIC, len(raw), len(payload)) + raw + payload


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"<ndarray {list(value.shape)} {value.dtype}>"
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "__fspath__"):
        return str(value)
    return repr(value)


def encode_preview(frames: np.ndarray, **fields: Any) -> bytes:
    """A ``preview`` event: uint8 frames ``[T, h, w, 3]`` travel as raw bytes."""
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ProtocolError(f"preview frames must be uint8 [T, h, w, 3], got {frames.dtype} {list(frames.shape)}")
    header = {"type": EV_PREVIEW, **fields, "shape": list(frames.shape), "dtype": "uint8"}
    return encode(header, frames.tobytes())


def decode_preview(message: Message) -> np.ndarray:
    """The frames of a ``preview`` message as a read-only uint8 array ``[T, h, w, 3]``."""
    shape = message.get("shape")
    if message.get("dtype") != "uint8" or not isinstance(shape, list) or len(shape) != 4:
        raise ProtocolError(f"preview header has bad shape/dtype: {shape!r} {message.get('dtype')!r}")
    expected = int(np.prod(shape))
    if expected != len(message.payload):
        raise ProtocolError(f"preview payload is {len(message.payload)} bytes, shape {shape} needs {expected}")
    return np.frombuffer(message.payload, dtype=np.uint8).reshape(shape)


@dataclass
class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the complete messages so far.

    Partial frames are kept until the rest arrives.  Bytes that do not start with
    the magic (a corrupted stream) are skipped up to the next magic; each such
    event is counted in ``skipped_bytes`` and described in ``errors`` so the
    caller can log it.  Frames with oversized lengths or bad JSON are dropped
    the same way.
    """

    buffer: bytearray = field(default_factory=bytearray)
    skipped_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Message]:
        if data:
            self.buffer += data
        out: list[Message] = []
        buf = self.buffer
        while True:
            if len(buf) < PREFIX_SIZE:
                # Keep a possible partial magic; drop anything before it.
                if buf and not MAGIC.startswith(bytes(buf[: len(MAGIC)])):
                    self._resync()
                    continue
                break
            magic, hlen, plen = _PREFIX.unpack_from(buf, 0)
            if magic != MAGIC:
                self._resync()
                continue
            if hlen > MAX_HEADER_BYTES or plen > MAX_PAYLOAD_BYTES or hlen == 0:
                self._skip(1, f"frame with bad lengths (header {hlen}, payload {plen})")
                continue
            total = PREFIX_SIZE + hlen + plen
            if len(buf) < total:
                break
            raw_header = bytes(buf[PREFIX_SIZE:PREFIX_SIZE + hlen])
            payload = bytes(buf[PREFIX_SIZE + hlen:total])
            try:
                header = json.loads(raw_header.decode("utf-8"))
                if not isinstance(header, dict) or not isinstance(header.get("type"), str):
                    raise ValueError("header is not an object with a string 'type'")
            except (UnicodeDecodeError, ValueError) as exc:
                self._skip(1, f"frame with bad JSON header ({exc})")
                continue
            del buf[:total]
            out.append(Message(header, payload))
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered for a frame not yet complete."""
        return len(self.buffer)

    def _resync(self) -> None:
        idx = self.buffer.find(MAGIC, 1)
        if idx < 0:
            # Keep a tail that could be the start of the next magic.
            keep = 0
            for k in range(min(len(MAGIC) - 1, len(self.buffer)), 0, -1):
                if MAGIC.startswith(bytes(self.buffer[-k:])):
                    keep = k
                    break
            self._skip(len(self.buffer) - keep, "garbage between frames")
        else:
            self._skip(idx, "garbage between frames")

    def _skip(self, n: int, reason: str) -> None:
        if n <= 0:
            return
        del self.buffer[:n]
        self.skipped_bytes += n
        if len(self.errors) < 100:
            self.errors.append(f"skipped {n} bytes: {reason}")


def request(type_: str, request_id: str | None = None, payload: bytes = b"", **fields: Any) -> bytes:
    """Encode a request frame (convenience for clients); ``payload``: raw bytes (``put_file``)."""
    if type_ not in REQUEST_TYPES:
        raise ProtocolError(f"unknown request type {type_!r}")
    header: dict[str, Any] = {"type": type_, **fields}
    if request_id is not None:
        header["id"] = request_id
    return encode(header, payload)
