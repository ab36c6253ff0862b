"""The VAE recipe's parts: shape windows, the LR schedule, the VAE file format, and phase-split runs."""

import math
import random

import pytest
import torch

from fastvideo.training.data import make_batch
from fastvideo.training.models import TINY, build_modules
from fastvideo.training.vae import foreground, load_vae_file, lr_at, save_vae_file, shape_windows


def test_shape_windows_contain_the_shape():
    x, _, labels = make_batch(16, seed=5, num_frames=17, size=128)
    win = shape_windows(x, labels, 64, random.Random(0))
    assert win.shape == (16, 3, 17, 64, 64)
    full = foreground(x).flatten(1).sum(1)
    inside = foreground(win).flatten(1).sum(1)
    # The window is centred on the path's midpoint (jitter +-16 px): most of the shape's pixels are inside.
    assert bool((inside > 0.6 * full).all()), (inside / full).tolist()
    # Windows of the same clips with another rng move (random jitter), but stay in the frame.
    other = shape_windows(x, labels, 64, random.Random(1))
    assert not torch.equal(win, other)


def test_lr_schedule_warms_up_then_decays_by_cosine():
    assert lr_at(1e-3, 0, 0.0, 100, 0.1) == pytest.approx(1e-5)
    assert lr_at(1e-3, 99, 0.0, 100, 0.1) == pytest.approx(1e-3)
    assert lr_at(1e-3, 500, 0.5, 100, 0.1) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(1e-3, 900, 1.0, 100, 0.1) == pytest.approx(1e-4)
    assert lr_at(1e-3, 900, 7.0, 100, 0.1) == pytest.approx(1e-4)  # past the end: stays at the floor
    values = [lr_at(1.0, 200 + i, i / 100, 100, 0.0) for i in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[50] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_vae_file_round_trip_and_errors(tmp_path):
    vae = build_modules(TINY, 100, 0)["vae"]
    path = save_vae_file(tmp_path / "v" / "vae.safetensors", vae.state_dict(), [0.5] * 16, [2.0] * 16,
                         {"steps": 3}, dtype=torch.float16)
    assert sorted(p.name for p in path.parent.iterdir()) == ["vae.safetensors", "vae.safetensors.json"]
    back = load_vae_file(path)
    assert back["latents_mean"] == [0.5] * 16 and back["summary"] == {"steps": 3}
    for k, v in vae.state_dict().items():
        assert back["vae"][k].dtype == torch.float32
        torch.testing.assert_close(back["vae"][k], v.half().float())
    with pytest.raises(FileNotFoundError, match="no VAE file"):
        load_vae_file(tmp_path / "missing.pt")
    (tmp_path / "v" / "vae.safetensors.json").unlink()
    with pytest.raises(FileNotFoundError, match="latent statistics"):
        load_vae_file(path)


def test_phase_split_run_vae_then_dit(tmp_path):
    """--stop-after vae writes vae.pt; --vae-resume continues it; --vae-from trains only the DiT."""
    from fastvideo.training.train import run_training

    vae_file = run_training(tmp_path / "a", tiny=True, seconds_vae=60, vae_steps=3, seconds_dit=1, eval_prompts=0,
                            device="cpu", stop_after="vae", vae_frames=5, vae_crop=16)
    assert vae_file.name == "vae.pt" and not (tmp_path / "a" / "fastvideo-shapes-t2v").exists()
    state = load_vae_file(vae_file)
    assert state["summary"]["steps"] == 3 and "reconstruction_check" in state["summary"]

    resumed = run_training(tmp_path / "b", tiny=True, seconds_vae=60, vae_steps=2, eval_prompts=0, device="cpu",
                           stop_after="vae", vae_frames=5, vae_resume=vae_file)
    assert load_vae_file(resumed)["summary"]["resumed_from"]["summary"]["steps"] == 3

    model = run_training(tmp_path / "c", tiny=True, seconds_dit=60, dit_steps=2, eval_prompts=0, device="cpu",
                         vae_from=vae_file)
    again = run_training(tmp_path / "d", tiny=True, seconds_dit=60, dit_steps=1, eval_prompts=0, device="cpu",
                         vae_from=vae_file, dit_resume=tmp_path / "c" / "checkpoint.pt")
    assert torch.load(again.parent / "checkpoint.pt")["dit_resumed_from"].endswith("checkpoint.pt")
    vae = build_modules(TINY, 100, 0)["vae"]
    from safetensors.torch import load_file

    exported = load_file(str(model / "vae" / "diffusion_pytorch_model.safetensors"))
    key = next(k for k in exported if k.endswith("weight") and exported[k].ndim == 5)
    assert key in vae.state_dict()
    torch.testing.assert_close(exported[key].float(), state["vae"][key].half().float())


def test_embed_on_the_real_tokens_equals_the_full_padding(tmp_path):
    from transformers import AutoTokenizer

    from fastvideo.testing.tokenizer import make_tiny_t5_tokenizer
    from fastvideo.training.text import embed, tokenize

    tok = AutoTokenizer.from_pretrained(str(make_tiny_t5_tokenizer(tmp_path / "tok")))
    te = build_modules(TINY, len(tok), 0)["text_encoder"].eval()
    ids, mask = tokenize(tok, ["a red circle moves left on blue", "", "green square"], 64)
    with torch.no_grad():
        short = embed(te, ids, mask)
        full = te(ids, mask).last_hidden_state * mask[..., None]
    assert short.shape == full.shape == (3, 64, full.shape[-1])
    torch.testing.assert_close(short, full, rtol=1e-5, atol=1e-6)
    assert short[:, int(mask.sum(1).max()):].abs().max() == 0


def test_cached_tokenizer_matches_the_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from fastvideo.testing.tokenizer import make_tiny_t5_tokenizer
    from fastvideo.training.text import CachedTokenizer, tokenize

    tok = AutoTokenizer.from_pretrained(str(make_tiny_t5_tokenizer(tmp_path / "tok")))
    cached = CachedTokenizer(tok, 32)
    prompts = ["a red circle moves left", "", "a red circle moves left", "word " * 50]  # repeat, empty, truncated
    for _ in range(2):  # the second pass is served from the cache
        ids, mask = cached(prompts)
        ref_ids, ref_mask = tokenize(tok, prompts, 32)
        assert torch.equal(ids, ref_ids) and torch.equal(mask, ref_mask)
    assert len(cached._cache) == 3
