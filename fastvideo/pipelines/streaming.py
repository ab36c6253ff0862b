"""Block streaming: the DiT's blocks live in (pinned) CPU memory and are copied to the device a few blocks ahead.

The blocks of a DiT run one after another, each once per forward.  With ``memory_mode="block_stream"`` only
``slots`` of them are on the device at any time: each block's parameters and buffers are packed into one
contiguous host buffer (pinned on CUDA), the device holds ``slots`` buffers of the largest block's size, and a
side stream copies block ``i + slots`` into the slot block ``i`` used as soon as block ``i``'s kernels are done.
The copy of the next blocks overlaps the compute of the current one; the order is cyclic (after the last block
the first ones are fetched again), so the next forward (the next step, or CFG's second pass) finds its first
blocks already there.

Three parts, the first two device-free (``tests/pipelines/test_streaming.py`` runs them on the CPU):

* :class:`StreamSchedule`: which block is in which slot, which to fetch next (pure bookkeeping, no torch);
* :class:`Transport`: allocations, copies and the events ordering them.  :class:`CpuTransport` copies at once
  (the exactness test streams a real forward through it); :class:`CudaTransport` uses a copy stream and one
  "ready" and one "done" event per slot;
* :class:`BlockStreamer`: packs the blocks, swaps each block's tensors between its host view and its slot view,
  and runs the schedule.  Installing it replaces ``model.blocks`` by a :class:`StreamedBlocks` ``ModuleList``
  whose iteration does the swaps, so the model's code (``for block in self.blocks``) and its parameter names are
  unchanged, and compiled blocks stay compiled (nothing runs inside a block).

Streaming moves bytes, never changes them: a streamed forward is bit-identical to the resident one.
:func:`choose_slots` picks how many blocks are in flight from the free memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

ALIGN = 256  # byte alignment of each tensor inside a packed block (any dtype view is aligned)
MIN_SLOTS = 2  # one block computing, one being copied


# ----------------------------------------------------------------------------------------- schedule


class StreamSchedule:
    """Which block sits in which device slot, and what to fetch next (no torch, no device).

    Blocks run in order ``0 .. n-1``, forward after forward.  :meth:`before` (block ``i`` is about to run)
    returns the fetches needed so that ``i`` is resident (at most a refill after an unexpected order, e.g. a
    forward cut short by an exception); :meth:`after` (block ``i`` has been launched) frees its slot and returns
    the next fetch into it: the block ``slots`` places ahead, cyclically.  With as many slots as blocks every
    block stays resident after its first fetch.  Each action is ``("fetch", block, slot)``.
    """

    def __init__(self, num_blocks: int, num_slots: int):
        if num_blocks < 1:
            raise ValueError(f"nothing to stream: {num_blocks} blocks")
        if num_slots < 1:
            raise ValueError(f"block streaming needs at least 1 device slot, got {num_slots}")
        self.num_blocks = num_blocks
        self.num_slots = min(num_slots, num_blocks)
        self.slot_of: dict[int, int] = {}  # resident (or in flight) block -> slot
        self.block_in: list[int | None] = [None] * self.num_slots  # slot -> block
        self.next_fetch = 0  # the next block to fetch (cyclic)
        self.fetches = 0  # copies issued (tests, logs)

    @property
    def all_resident(self) -> bool:
        return self.num_slots >= self.num_blocks

    def resident(self) -> list[int]:
        return sorted(self.slot_of)

    def _fetch(self, block: int, slot: int) -> tuple[str, int, int]:
        old = self.block_in[slot]
        if old is not None:
            del self.slot_of[old]
        self.block_in[slot] = block
        self.slot_of[block] = slot
        self.fetches += 1
        return ("fetch", block, slot)

    def _fill_from(self, first: int) -> list[tuple[str, int, int]]:
        """Forget every slot and fetch ``first, first+1, ...`` (cyclic) into all of them."""
        self.slot_of.clear()
        self.block_in = [None] * self.num_slots
        actions = [self._fetch((first + k) % self.num_blocks, k) for k in range(self.num_slots)]
        self.next_fetch = (first + self.num_slots) % self.num_blocks
        return actions

    def before(self, block: int) -> list[tuple[str, int, int]]:
        if not 0 <= block < self.num_blocks:
            raise IndexError(f"block {block} of {self.num_blocks}")
        if block in self.slot_of:
            return []
        if self.all_resident and self.slot_of:  # a slot per block: fetch just the missing one
            return [self._fetch(block, block)]
        return self._fill_from(block)  # first use, or out of order: the window restarts at this block

    def after(self, block: int) -> list[tuple[str, int, int]]:
        if self.all_resident or block not in self.slot_of:
            return []
        slot = self.slot_of[block]
        nxt = self.next_fetch
        if nxt in self.slot_of:  # already there (window wider than the rest of the cycle)
            return []
        self.next_fetch = (nxt + 1) % self.num_blocks
        return [self._fetch(nxt, slot)]

    def clear(self) -> None:
        self.slot_of.clear()
        self.block_in = [None] * self.num_slots
        self.next_fetch = 0


def choose_slots(free_bytes: int, block_bytes: int, reserve_bytes: int, num_blocks: int,
                 min_slots: int = MIN_SLOTS) -> int:
    """How many blocks to keep in flight: as many as fit in ``free_bytes - reserve_bytes`` (the reserve is what
    the rest of the step needs: activations, resident weights), at least ``min_slots``, at most every block."""
    if block_bytes <= 0:
        return num_blocks
    room = (free_bytes - reserve_bytes) // block_bytes
    return int(max(min(min_slots, num_blocks), min(num_blocks, room)))


# ----------------------------------------------------------------------------------------- transport


class Transport:
    """Allocations and ordered copies of a device (see :class:`CpuTransport`, :class:`CudaTransport`)."""

    device: torch.device

    def host_buffer(self, nbytes: int) -> torch.Tensor:
        return torch.empty(nbytes, dtype=torch.uint8)

    def slot_buffer(self, nbytes: int) -> torch.Tensor:
        return torch.empty(nbytes, dtype=torch.uint8, device=self.device)

    def copy(self, dst: torch.Tensor, src: torch.Tensor, slot: int) -> None:
        """Copy ``src`` (a packed host block) into slot ``slot``'s buffer, after the slot's last use."""
        dst.copy_(src)

    def wait_ready(self, slot: int) -> None:
        """Make the compute wait for the copy into ``slot``."""

    def mark_done(self, slot: int) -> None:
        """The compute launched so far is the slot's last use (the next copy into it waits for it)."""

    def synchronize(self) -> None:
        """Wait for every copy and every use of the slots."""


class CpuTransport(Transport):
    """Everything at once on the CPU (or any device without streams): copies are plain ``copy_``."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)


class CudaTransport(Transport):
    """A side stream for the copies; per slot a "ready" event (copy done) and a "done" event (compute done)."""

    def __init__(self, device: torch.device | str, num_slots: int):
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(self.device)
        self.ready = [torch.cuda.Event() for _ in range(num_slots)]
        self.done = [torch.cuda.Event() for _ in range(num_slots)]
        self.used = [False] * num_slots

    def host_buffer(self, nbytes: int) -> torch.Tensor:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)

    def copy(self, dst: torch.Tensor, src: torch.Tensor, slot: int) -> None:
        with torch.cuda.stream(self.stream):
            if self.used[slot]:
                self.stream.wait_event(self.done[slot])
            dst.copy_(src, non_blocking=True)
            self.ready[slot].record(self.stream)

    def wait_ready(self, slot: int) -> None:
        torch.cuda.current_stream(self.device).wait_event(self.ready[slot])

    def mark_done(self, slot: int) -> None:
        self.done[slot].record(torch.cuda.current_stream(self.device))
        self.used[slot] = True

    def synchronize(self) -> None:
        self.stream.synchronize()
        torch.cuda.current_stream(self.device).synchronize()


# ----------------------------------------------------------------------------------------- packing


@dataclass
class _Entry:
    module: nn.Module
    name: str
    is_param: bool
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int
    nbytes: int


@dataclass
class PackedBlock:
    """One block's tensors as views of one host buffer (``entries`` say where each lives)."""

    host: torch.Tensor
    entries: list[_Entry] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return int(self.host.numel())

    def views(self, buffer: torch.Tensor) -> Iterator[tuple[_Entry, torch.Tensor]]:
        for e in self.entries:
            yield e, buffer[e.offset:e.offset + e.nbytes].view(e.dtype).view(e.shape)

    def point_to(self, buffer: torch.Tensor) -> None:
        """Make the block's parameters and buffers views of ``buffer`` (its host copy or a slot)."""
        for e, view in self.views(buffer):
            if e.is_param:
                e.module._parameters[e.name].data = view
            else:
                e.module._buffers[e.name] = view


def _block_tensors(block: nn.Module) -> list[tuple[nn.Module, str, bool, torch.Tensor]]:
    out, seen = [], set()
    for mod in block.modules():
        for name, p in mod._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                out.append((mod, name, True, p.data))
        for name, b in mod._buffers.items():
            if b is not None and id(b) not in seen:
                seen.add(id(b))
                out.append((mod, name, False, b))
    return out


def block_nbytes(block: nn.Module) -> int:
    """The packed size of a block (each tensor aligned to :data:`ALIGN` bytes)."""
    total = 0
    for *_, t in _block_tensors(block):
        total += -(-t.numel() * t.element_size() // ALIGN) * ALIGN
    return total


def pack_block(block: nn.Module, transport: Transport) -> PackedBlock:
    """Copy a block's tensors into one host buffer (pinned on CUDA) and point the block at it."""
    tensors = _block_tensors(block)
    entries, offset = [], 0
    for mod, name, is_param, t in tensors:
        n = t.numel() * t.element_size()
        entries.append(_Entry(mod, name, is_param, t.dtype, tuple(t.shape), offset, n))
        offset += -(-n // ALIGN) * ALIGN
    packed = PackedBlock(transport.host_buffer(max(offset, ALIGN)), entries)
    for (_, _, _, t), (e, view) in zip(tensors, packed.views(packed.host)):
        view.copy_(t.detach().reshape(e.shape))
    packed.point_to(packed.host)
    return packed


# ----------------------------------------------------------------------------------------- streamer


class StreamedBlocks(nn.ModuleList):
    """``model.blocks`` while streamed: iterating it makes each block resident just before it runs."""

    def __init__(self, blocks: nn.ModuleList, streamer: BlockStreamer):
        super().__init__(list(blocks))
        object.__setattr__(self, "_streamer", streamer)  # not a submodule

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # a plain ModuleList of those blocks (ModuleList would call our __init__)
            return nn.ModuleList(list(self._modules.values())[idx])
        return super().__getitem__(idx)

    def __iter__(self) -> Iterator[nn.Module]:
        streamer = self._streamer
        if not streamer.active:
            yield from super().__iter__()
            return
        for i, block in enumerate(super().__iter__()):
            streamer.before(i)
            yield block
            streamer.after(i)


class BlockStreamer:
    """Streams ``model.blocks`` through ``slots`` device buffers (see the module docstring).

    ``install`` packs the blocks into host memory and moves everything else of the model to the device;
    ``uninstall`` puts every block back on the device (``memory_mode`` resident again).  ``use(model)`` is the
    context the denoising stage enters (the same interface as :class:`~fastvideo.pipelines.offload.Offloader`):
    slots are allocated on entry and freed on exit, so the VAE gets that memory back.
    """

    def __init__(self, device: torch.device | str, slots: int, transport: Transport | None = None,
                 resident_rest: bool = True, host_tensors: tuple[torch.Tensor, ...] = ()):
        self.device = torch.device(device)
        # The model's other tensors (embedders, head): on the device for good (a DiT: used every step), or only
        # inside use() (a text encoder: its 2 GiB token embedding is needed once per generation).
        self.resident_rest = resident_rest
        self.rest: list[tuple[nn.Module, str, bool]] = []
        self.host_ids = {id(t) for t in host_tensors}  # never moved (a text encoder's token embedding)
        self.requested_slots = int(slots)
        self.transport = transport
        self.model: nn.Module | None = None
        self.packed: list[PackedBlock] = []
        self.schedule: StreamSchedule | None = None
        self.buffers: list[torch.Tensor] = []
        self.active = False
        self.slot_bytes = 0

    # -- install / uninstall --

    def install(self, model: nn.Module, path: str = "blocks") -> BlockStreamer:
        """Stream ``model.<path>`` (a ModuleList: ``blocks`` of a DiT, ``encoder.block`` of a T5)."""
        parent_name, _, leaf = path.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        blocks = getattr(parent, leaf)
        n = len(blocks)
        slots = min(self.requested_slots, n)
        if self.transport is None:
            self.transport = CudaTransport(self.device, slots) if self.device.type == "cuda" else \
                CpuTransport(self.device)
        streamed = {id(t) for b in blocks for t in (*b.parameters(), *b.buffers())}
        self.rest = []
        for mod in model.modules():  # everything but the blocks
            for name, p in mod._parameters.items():
                if p is not None and id(p) not in streamed and id(p) not in self.host_ids:
                    self.rest.append((mod, name, True))
            for name, b in mod._buffers.items():
                if b is not None and id(b) not in streamed:
                    self.rest.append((mod, name, False))
        self._move_rest(self.device if self.resident_rest else torch.device("cpu"))
        self.packed = []
        for block in blocks:  # one block at a time: the host peak is the model plus one block
            self.packed.append(pack_block(block, self.transport))
        self.slot_bytes = max(p.nbytes for p in self.packed)
        self.schedule = StreamSchedule(n, slots)
        setattr(parent, leaf, StreamedBlocks(blocks, self))
        self._parent, self._leaf = parent, leaf
        model._block_streamer = self
        self.model = model
        self.active = True
        return self

    def uninstall(self) -> None:
        model = self.model
        if model is None:
            return
        self.release()
        self._move_rest(self.device)
        for packed in self.packed:
            for e, view in packed.views(packed.host):
                t = view.to(self.device).clone() if self.device.type == "cpu" else view.to(self.device)
                if e.is_param:
                    e.module._parameters[e.name].data = t
                else:
                    e.module._buffers[e.name] = t
        blocks = getattr(self._parent, self._leaf)
        setattr(self._parent, self._leaf, nn.ModuleList(list(blocks._modules.values())))
        del model._block_streamer
        self.packed, self.model, self.active = [], None, False

    def set_slots(self, slots: int) -> None:
        """Change how many blocks are in flight (frees the current slots; the next use allocates the new ones)."""
        self.release()
        n = len(self.packed)
        self.schedule = StreamSchedule(n, min(int(slots), n))
        if isinstance(self.transport, CudaTransport):
            self.transport = CudaTransport(self.device, self.schedule.num_slots)

    def _move_rest(self, device: torch.device) -> None:
        for mod, name, is_param in self.rest:
            if is_param:
                p = mod._parameters[name]
                p.data = p.data.to(device)
            else:
                mod._buffers[name] = mod._buffers[name].to(device)

    @property
    def num_slots(self) -> int:
        return self.schedule.num_slots if self.schedule else 0

    def device_bytes(self) -> int:
        """Device memory the slots take while allocated."""
        return self.num_slots * self.slot_bytes

    def host_bytes(self) -> int:
        return sum(p.nbytes for p in self.packed)

    # -- the schedule, executed --

    def _ensure_buffers(self) -> None:
        if not self.buffers:
            self.buffers = [self.transport.slot_buffer(self.slot_bytes) for _ in range(self.num_slots)]

    def _run(self, actions) -> None:
        for _, block, slot in actions:
            packed = self.packed[block]
            self.transport.copy(self.buffers[slot][:packed.nbytes], packed.host, slot)

    def before(self, i: int) -> None:
        self._ensure_buffers()
        self._run(self.schedule.before(i))
        slot = self.schedule.slot_of[i]
        self.transport.wait_ready(slot)
        self.packed[i].point_to(self.buffers[slot])

    def after(self, i: int) -> None:
        slot = self.schedule.slot_of[i]
        self.transport.mark_done(slot)
        if not self.schedule.all_resident:
            self.packed[i].point_to(self.packed[i].host)  # the block is back on the host until next time
        self._run(self.schedule.after(i))

    def prefetch(self) -> None:
        """Start copying the first blocks now (before the first forward)."""
        self._ensure_buffers()
        if not self.schedule.slot_of:
            self._run(self.schedule.before(0))

    def release(self) -> None:
        """Free the device slots (every block back on its host copy)."""
        if self.buffers:
            self.transport.synchronize()
        for packed in self.packed:
            packed.point_to(packed.host)
        self.buffers = []
        if self.schedule is not None:
            self.schedule.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @contextlib.contextmanager
    def use(self, module: nn.Module):
        if not self.resident_rest:
            self._move_rest(self.device)
        self.prefetch()
        try:
            yield module
        finally:
            self.release()
            if not self.resident_rest:
                self._move_rest(torch.device("cpu"))


def streamer_of(model: nn.Module) -> BlockStreamer | None:
    return getattr(model, "_block_streamer", None)
