"""Block streaming (fastvideo.pipelines.streaming): the schedule on a fake device, the streamed forward
bit-identical to the resident one on the CPU, and the real CUDA streams (GPU-marked)."""

from __future__ import annotations

import copy

import pytest
import torch

from fastvideo.configs.models.dits import WanVideoConfig
from fastvideo.models.dits import WanTransformer3DModel
from fastvideo.pipelines.streaming import (
    BlockStreamer,
    CpuTransport,
    StreamSchedule,
    block_nbytes,
    choose_slots,
    streamer_of,
)

TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
            text_dim=32, freq_dim=32, ffn_dim=48, num_layers=5)


def tiny_dit(seed: int = 0, **overrides) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    model = WanTransformer3DModel(WanVideoConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def inputs(seed: int = 1, batch: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, 3, 4, 4, generator=g)
    t = torch.tensor([500.0] * batch)
    text = torch.randn(batch, 7, 32, generator=g)
    return x, t, text


# ----------------------------------------------------------------------------------------- schedule


def run_forward(s: StreamSchedule, log: list) -> None:
    for i in range(s.num_blocks):
        log += s.before(i)
        assert i in s.slot_of, f"block {i} not resident when it runs"
        assert len(s.slot_of) <= s.num_slots
        log += s.after(i)


def test_schedule_prefetches_slots_ahead_cyclically():
    s = StreamSchedule(num_blocks=5, num_slots=2)
    log: list = []
    run_forward(s, log)
    # First use fills both slots (0, 1); each finished block's slot takes the block 2 ahead, cyclically:
    # after block 3 ran, block 0 (the next forward's first) is already on its way.
    assert log == [("fetch", 0, 0), ("fetch", 1, 1), ("fetch", 2, 0), ("fetch", 3, 1), ("fetch", 4, 0),
                   ("fetch", 0, 1), ("fetch", 1, 0)]
    assert s.resident() == [0, 1]
    log2: list = []
    run_forward(s, log2)  # the second forward never waits for a fetch it did not issue ahead
    assert [a[1] for a in log2] == [2, 3, 4, 0, 1]
    assert s.fetches == 12


def test_schedule_evicts_only_finished_blocks():
    s = StreamSchedule(num_blocks=6, num_slots=3)
    s.before(0)
    assert s.resident() == [0, 1, 2]
    assert s.after(0) == [("fetch", 3, 0)]  # block 0's slot, block 3 in
    assert s.resident() == [1, 2, 3] and s.block_in == [3, 1, 2]
    assert s.before(1) == []


def test_schedule_restarts_after_an_interrupted_forward():
    s = StreamSchedule(num_blocks=4, num_slots=2)
    s.before(0)
    s.after(0)
    s.before(1)  # an exception here: block 1 never finishes; the next forward starts at block 0
    acts = s.before(0)
    assert 0 in s.slot_of and acts[0][:2] == ("fetch", 0)
    assert s.resident() == [0, 1]


def test_schedule_with_a_slot_per_block_keeps_everything():
    s = StreamSchedule(num_blocks=3, num_slots=8)
    assert s.num_slots == 3 and s.all_resident
    log: list = []
    run_forward(s, log)
    run_forward(s, log)
    assert log == [("fetch", 0, 0), ("fetch", 1, 1), ("fetch", 2, 2)]


def test_schedule_rejects_nonsense():
    with pytest.raises(ValueError, match="at least 1 device slot"):
        StreamSchedule(3, 0)
    with pytest.raises(IndexError):
        StreamSchedule(3, 2).before(3)


def test_choose_slots_from_free_memory():
    gib = 2**30
    # 14B: 40 blocks of ~0.7 GiB; 12 GiB card with 8 GiB needed for the rest: 5 blocks in flight.
    assert choose_slots(12 * gib, int(0.7 * gib), 8 * gib, 40) == 5
    assert choose_slots(80 * gib, int(0.7 * gib), 8 * gib, 40) == 40  # everything fits
    assert choose_slots(8 * gib, int(0.7 * gib), 8 * gib, 40) == 2  # never fewer than two
    assert choose_slots(1, 10, 0, 1) == 1


# ----------------------------------------------------------------------------------------- fake device


class RecordingTransport(CpuTransport):
    """A CPU "device" that logs the copies and the compute/copy ordering calls."""

    def __init__(self):
        super().__init__("cpu")
        self.log: list[tuple] = []

    def copy(self, dst, src, slot):
        self.log.append(("copy", slot, int(src.numel())))
        super().copy(dst, src, slot)

    def wait_ready(self, slot):
        self.log.append(("wait_ready", slot))

    def mark_done(self, slot):
        self.log.append(("mark_done", slot))


def test_streamer_orders_copies_after_uses():
    model = tiny_dit()
    t = RecordingTransport()
    streamer = BlockStreamer("cpu", slots=2, transport=t).install(model)
    x, ts, text = inputs()
    with torch.no_grad(), streamer.use(model):
        model(x, ts, text)
        log = list(t.log)
    # Two slots prefetched on entry; then per block: wait for its copy, compute, mark the slot done, and
    # only then copy the next block into that slot.
    assert [e[0] for e in log[:2]] == ["copy", "copy"]
    body = log[2:]
    for k, event in enumerate(body):
        if event[0] == "copy":
            assert body[k - 1] == ("mark_done", event[1]), body
    assert sum(e[0] == "wait_ready" for e in body) == 5
    assert streamer.buffers == []  # released on exit


def test_only_slots_hold_blocks_while_streaming():
    model = tiny_dit()
    streamer = BlockStreamer("cpu", slots=2).install(model)
    x, ts, text = inputs()
    seen = []
    for i, block in enumerate(model.blocks._modules.values()):
        def hook(mod, args, i=i):
            w = mod.ffn.fc_in.weight
            slots = [b.data_ptr() for b in streamer.buffers]
            seen.append((i, any(p <= w.data_ptr() < p + streamer.slot_bytes for p in slots)))
            others = [j for j, pb in enumerate(streamer.packed)
                      if j != i and any(pb.entries[0].module._parameters[pb.entries[0].name].data_ptr() == p
                                        for p in slots)]
            assert others == [], f"blocks {others} point at a slot while block {i} runs"
        block.register_forward_pre_hook(hook)
    with torch.no_grad(), streamer.use(model):
        model(x, ts, text)
    assert seen == [(i, True) for i in range(5)]
    # Outside use(): every block on its host copy.
    assert all(pb.entries[0].module._parameters[pb.entries[0].name].data_ptr() == pb.host.data_ptr()
               for pb in streamer.packed)


@pytest.mark.parametrize("slots", [1, 2, 3, 5])
def test_streamed_forward_is_bit_identical(slots):
    model = tiny_dit()
    ref_model = copy.deepcopy(model)
    x, ts, text = inputs()
    with torch.no_grad():
        ref = ref_model(x, ts, text)
        ref2 = ref_model(x * 0.5, ts, text)
    streamer = BlockStreamer("cpu", slots=slots).install(model)
    assert streamer_of(model) is streamer and streamer.num_slots == min(slots, 5)
    with torch.no_grad(), streamer.use(model):
        out = model(x, ts, text)
        out2 = model(x * 0.5, ts, text)  # a second forward (next step) through the cyclic prefetch
    assert torch.equal(out, ref) and torch.equal(out2, ref2)
    # state_dict names and values unchanged; uninstall gives the resident model back
    assert list(model.state_dict()) == list(ref_model.state_dict())
    streamer.uninstall()
    with torch.no_grad():
        assert torch.equal(model(x, ts, text), ref)
    assert type(model.blocks).__name__ == "ModuleList"


def test_block_nbytes_counts_every_tensor():
    model = tiny_dit()
    block = model.blocks[0]
    raw = sum(p.numel() * p.element_size() for p in block.parameters())
    assert raw <= block_nbytes(block) < raw + 256 * 40


def test_lora_merge_lands_in_the_streamed_host_copy():
    model = tiny_dit()
    streamer = BlockStreamer("cpu", slots=2).install(model)
    p = model.blocks[3].ffn.fc_in.weight
    with torch.no_grad():
        p.copy_(p + 1.0)  # what LoraManager does (in place)
    host = streamer.packed[3]
    e = next(e for e in host.entries if e.module is model.blocks[3].ffn.fc_in and e.name == "weight")
    assert torch.equal(host.host[e.offset:e.offset + e.nbytes].view(e.dtype).view(e.shape), p)


# ----------------------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_streams_bit_identical_and_bounded():
    model = tiny_dit(num_layers=8).to(torch.bfloat16)
    ref_model = copy.deepcopy(model).cuda()
    x, ts, text = (t.cuda() for t in inputs())
    with torch.no_grad():
        ref = ref_model(x.bfloat16(), ts, text.bfloat16())
    del ref_model
    streamer = BlockStreamer("cuda", slots=2).install(model)
    assert streamer.packed[0].host.is_pinned()
    with torch.no_grad(), streamer.use(model):
        out = model(x.bfloat16(), ts, text.bfloat16())
        out2 = model(x.bfloat16(), ts, text.bfloat16())
        torch.cuda.synchronize()
    assert torch.equal(out, ref) and torch.equal(out2, ref)
    assert streamer.buffers == []


def test_t5_encoder_blocks_stream_bit_identical():
    """The text encoder streams too (``encoder.block`` of transformers' UMT5: iterated the same way)."""
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=4, num_heads=4,
                     relative_attention_num_buckets=8, relative_attention_max_distance=16)
    model = UMT5EncoderModel(cfg).eval()
    ids = torch.randint(0, 64, (2, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ref = model(ids, mask).last_hidden_state
    streamer = BlockStreamer("cpu", slots=2, resident_rest=False).install(model, "encoder.block")
    with torch.no_grad(), streamer.use(model):
        out = model(ids, mask).last_hidden_state
    assert streamer.schedule.fetches >= 4
    assert torch.equal(out, ref)


def test_t5_with_its_token_table_kept_on_the_host():
    """block_stream's text encoder: blocks streamed, the vocabulary table never moved (looked up in place)."""
    from transformers import UMT5Config, UMT5EncoderModel

    from fastvideo.models.encoders.t5 import _module_device_dtype
    from fastvideo.pipelines.memory_modes import host_embedding

    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=3, num_heads=4,
                     relative_attention_num_buckets=8, relative_attention_max_distance=16)
    model = UMT5EncoderModel(cfg).eval()
    ids, mask = torch.randint(0, 64, (2, 9)), torch.ones(2, 9, dtype=torch.long)
    with torch.no_grad():
        ref = model(ids, mask).last_hidden_state
    emb = model.encoder.embed_tokens
    host_embedding(emb, "cpu")
    model.compute_device = "cpu"
    streamer = BlockStreamer("cpu", slots=2, resident_rest=False, host_tensors=(emb.weight,)).install(
        model, "encoder.block")
    assert all(mod is not emb for mod, _, _ in streamer.rest)
    assert _module_device_dtype(model)[0] == torch.device("cpu")
    with torch.no_grad(), streamer.use(model):
        out = model(ids, mask).last_hidden_state
    assert torch.equal(out, ref)
