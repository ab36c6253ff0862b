"""A short CPU training run of the whole pipeline at tiny sizes: losses go down, a model folder comes out."""

import json

import torch
import torch.nn.functional as F

from fastvideo.training.data import make_batch
from fastvideo.training.models import TINY, build_modules
from fastvideo.training.vae import train_vae, vae_forward


def test_vae_loss_decreases():
    torch.manual_seed(0)
    vae = build_modules(TINY, 100, 0)["vae"]
    x, _, _ = make_batch(4, seed=123, num_frames=5, size=32)

    def loss():
        with torch.no_grad():
            return F.mse_loss(vae_forward(vae, x, sample=False)[0], x).item()

    before = loss()
    summary = train_vae(vae, seconds=60, max_steps=40, batch=4, num_frames=5, size=32, lr=2e-3, warmup=1,
                        final_lr=1.0, log=lambda m: None)  # constant LR: 40 steps are too few for a decay
    assert summary["steps"] == 40
    assert loss() < 0.8 * before


def test_dit_loss_decreases_and_export(tmp_path):
    from transformers import AutoTokenizer

    from fastvideo.training.data import caption_corpus
    from fastvideo.training.dit import encode_latents, shift_sigmas, train_dit
    from fastvideo.training.export import export_model, fit_latent_rgb
    from fastvideo.training.text import embed, make_tokenizer, tokenize

    tok_dir = make_tokenizer(tmp_path / "tok", caption_corpus())
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    m = build_modules(TINY, len(tok), 0)
    vae, dit, te = m["vae"].eval(), m["transformer"], m["text_encoder"]
    x, caps, _ = make_batch(4, seed=99, size=32)
    x0 = encode_latents(vae, x)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=g)
    s = shift_sigmas(torch.tensor([0.2, 0.4, 0.6, 0.8]), 3.0)
    ids, mask = tokenize(tok, caps, 64)

    def loss(d, t):
        with torch.no_grad():
            xt = (1 - s.view(-1, 1, 1, 1, 1)) * x0 + s.view(-1, 1, 1, 1, 1) * noise
            return F.mse_loss(d(xt, s * 1000, embed(t, ids, mask)), noise - x0).item()

    before = loss(dit, te)
    ema, summary = train_dit(dit, te, vae, tok, seconds=60, max_steps=30, batch=4, size=32, text_len=64, lr=2e-3,
                             pool_clips=16,
                             log=lambda m: None)
    assert summary["steps"] == 30
    assert loss(dit, te) < before
    rgb = fit_latent_rgb(vae, batches=1, batch=2, size=32)
    out = export_model(tmp_path / "fastvideo-shapes-t2v", {"transformer": dit, "vae": vae, "text_encoder": te},
                       tok_dir, latent_rgb=rgb)
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "WanPipeline"
    factors = json.loads((out / "vae" / "latent_rgb.json").read_text())
    assert len(factors["factors"]) == 16 and len(factors["bias"]) == 3
    from safetensors import safe_open

    with safe_open(str(out / "transformer" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())


def test_exported_folder_loads_with_its_preview_factors_and_preset(tmp_path):
    from fastvideo import SamplingParam, VideoGenerator
    from fastvideo.training.train import run_training

    model = run_training(tmp_path / "run", tiny=True, seconds_vae=60, seconds_dit=60, vae_steps=2, dit_steps=2,
                         device="cpu", eval_prompts=0)
    assert model.name == "fastvideo-shapes-t2v"
    rgb = json.loads((model / "vae" / "latent_rgb.json").read_text())
    sp = SamplingParam.from_pretrained(str(model))
    assert (sp.height, sp.width, sp.num_frames) == (128, 128, 17)
    gen = VideoGenerator.from_pretrained(str(model))
    try:
        assert gen.config.preview_factors == rgb["factors"] and gen.config.preview_bias == rgb["bias"]
    finally:
        gen.shutdown()


def test_cli_registers_train():
    from fastvideo.entrypoints.cli.main import build_parser

    args = build_parser().parse_args(["train", "--output", "x", "--tiny", "--seconds-vae", "1", "--device", "cpu"])
    assert args.tiny and args.seconds_vae == 1.0 and args.func is not None
