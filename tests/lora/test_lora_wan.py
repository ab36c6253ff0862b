"""LoRA on the Wan DiT vs Diffusers' ``load_lora_weights`` (the numerical reference), tiny model, fp32, CPU.

One Diffusers-format LoRA is made with PEFT on Diffusers' WanTransformer3DModel (rank 4, lora_alpha 8:
scale 2, with lora_B.bias); the official-name and kohya files are the same numbers under their names.
For every file, our DiT with the LoRA merged must match Diffusers' DiT with the same file loaded.
"""

from __future__ import annotations

import copy

import pytest
import torch

from fastvideo.lora import LoraError, apply_loras, lora_manager, plan_lora
from fastvideo.models.loader.checkpoint import save_safetensors

diffusers = pytest.importorskip("diffusers")
peft = pytest.importorskip("peft")

ATOL = 1e-3
RANK, ALPHA = 4, 8.0
SCALE = ALPHA / RANK
TARGETS = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
           "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2"]
# Diffusers name -> official name (inside blocks.N.), and official -> kohya (flattened)
OFFICIAL = {"attn1.to_q": "self_attn.q", "attn1.to_k": "self_attn.k", "attn1.to_v": "self_attn.v",
            "attn1.to_out.0": "self_attn.o", "attn2.to_q": "cross_attn.q", "attn2.to_k": "cross_attn.k",
            "attn2.to_v": "cross_attn.v", "attn2.to_out.0": "cross_attn.o", "ffn.net.0.proj": "ffn.0",
            "ffn.net.2": "ffn.2"}
MAX_DIFFS: dict[str, float] = {}


@pytest.fixture(scope="module")
def ref_pipe(tiny_t2v):
    pipe = diffusers.WanPipeline.from_pretrained(str(tiny_t2v), torch_dtype=torch.float32)
    pipe.transformer.eval()
    return pipe


@pytest.fixture(scope="module")
def dit(tiny_t2v):
    from fastvideo.models.loader.component_loader import load_component

    model = load_component(str(tiny_t2v), "transformer", dtype=torch.float32)
    yield model
    apply_loras(model, [])


def _peft_lora(ref_pipe, seed: int, bias: bool):
    """A PEFT LoRA on a copy of Diffusers' DiT: (Diffusers-format state dict, PEFT config dict)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model = copy.deepcopy(ref_pipe.transformer)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS, lora_bias=bias, init_lora_weights=False)
    model.add_adapter(config, adapter_name="x")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    sd = get_peft_model_state_dict(model, adapter_name="x")
    meta = config.to_dict()
    meta = {f"transformer.{k}": (sorted(v) if isinstance(v, set) else v) for k, v in meta.items()}  # as Diffusers
    return {f"transformer.{k}": v.detach().clone().contiguous() for k, v in sd.items()}, meta


def _split(sd):
    """transformer.blocks.N.<diffusers module>.<kind> -> (N, module, kind)."""
    for key, t in sd.items():
        body = key[len("transformer."):]
        n, rest = body.split(".", 2)[1], body.split(".", 2)[2]
        for mod in TARGETS:
            if rest.startswith(mod + "."):
                yield int(n), mod, rest[len(mod) + 1:], t


def _official(sd, down_up: bool):
    """Official names; lora_down/lora_up + alpha (alpha/rank = SCALE) or lora_A/lora_B with the scale folded
    into B; lora_B.bias -> diff_b (Diffusers reads diff_b unscaled, so the scale is folded in)."""
    out = {}
    for n, mod, kind, t in _split(sd):
        base = f"diffusion_model.blocks.{n}.{OFFICIAL[mod]}"
        if kind == "lora_A.weight":
            out[f"{base}.{'lora_down' if down_up else 'lora_A'}.weight"] = t
            if down_up:
                out[f"{base}.alpha"] = torch.tensor(ALPHA)
        elif kind == "lora_B.weight":
            out[f"{base}.{'lora_up' if down_up else 'lora_B'}.weight"] = t if down_up else t * SCALE
        elif kind == "lora_B.bias":
            out[f"{base}.diff_b"] = t * SCALE
    return out


def _kohya(sd):
    out = {}
    for n, mod, kind, t in _split(sd):
        base = f"lora_unet_blocks_{n}_{OFFICIAL[mod].replace('.', '_')}"
        if kind == "lora_A.weight":
            out[f"{base}.lora_down.weight"] = t
            out[f"{base}.alpha"] = torch.tensor(ALPHA)
        elif kind == "lora_B.weight":
            out[f"{base}.lora_up.weight"] = t
    return out


@pytest.fixture(scope="module")
def lora_files(ref_pipe, tmp_path_factory):
    import json

    d = tmp_path_factory.mktemp("loras")
    sd_bias, meta = _peft_lora(ref_pipe, seed=1, bias=True)
    sd_plain, meta_plain = _peft_lora(ref_pipe, seed=2, bias=False)
    files = {}
    for name, sd, m in (("diffusers", sd_bias, meta), ("diffusers2", sd_plain, meta_plain)):
        files[name] = d / f"{name}.safetensors"
        save_safetensors(files[name], sd, metadata={"format": "pt", "lora_adapter_metadata": json.dumps(m)})
    for name, sd in (("official", _official(sd_bias, down_up=True)), ("official_ab", _official(sd_bias, False)),
                     ("kohya", _kohya(sd_plain))):
        files[name] = d / f"{name}.safetensors"
        save_safetensors(files[name], sd)
    return files


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, 2, 8, 8, generator=g)
    text = torch.randn(1, 7, 32, generator=g)
    return x, torch.tensor([700.0]), text


def _ref_out(ref_pipe, loras):
    """Diffusers' DiT output with ``loras`` [(file, strength)] loaded through WanPipeline.load_lora_weights."""
    x, t, text = _inputs()
    names = []
    try:
        for i, (path, _) in enumerate(loras):
            ref_pipe.load_lora_weights(str(path), adapter_name=f"a{i}")
            names.append(f"a{i}")
        if names:
            ref_pipe.set_adapters(names, [s for _, s in loras])
        with torch.no_grad():
            return ref_pipe.transformer(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    finally:
        if names:
            ref_pipe.unload_lora_weights()  # LoRA layers out: the base model again


def _our_out(dit):
    x, t, text = _inputs()
    with torch.no_grad():
        return dit(x, t, text)


def _check(dit, ref_pipe, loras, label):
    apply_loras(dit, [])
    before = _our_out(dit)  # the base model
    reports = apply_loras(dit, loras)
    ours = _our_out(dit)
    ref = _ref_out(ref_pipe, loras)
    diff = (ours - ref).abs().max().item()
    MAX_DIFFS[label] = diff
    print(f"\n{label}: max |ours - diffusers| = {diff:.2e}, LoRA effect {(ref - before).abs().max().item():.2e}")
    assert (ref - before).abs().max().item() > 1e-2, "the LoRA should change the output"
    assert diff < ATOL, f"{label}: {diff}"
    return reports


@pytest.mark.parametrize("fmt", ["diffusers", "official", "official_ab", "kohya"])
@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_matches_diffusers(dit, ref_pipe, lora_files, fmt, strength):
    reports = _check(dit, ref_pipe, [(lora_files[fmt], strength)], f"{fmt}@{strength}")
    (report,) = reports
    assert report.ok and report.format == ("diffusers" if fmt.startswith("diffusers") else fmt.split("_")[0])
    assert all(r.status == "applied" for r in report.rows)
    q = next(r for r in report.rows if r.kind == "A" and ".self_attn.to_qkv.weight" in (r.target or ""))
    assert q.target.startswith("blocks.") and q.target.endswith("[0:32]") and q.rank == RANK
    assert q.scale == pytest.approx(1.0 if fmt == "official_ab" else SCALE)  # official_ab: scale folded into B
    assert q.rule and "param_names_mapping" in q.rule


def test_two_loras_at_once(dit, ref_pipe, lora_files):
    loras = [(lora_files["official"], 1.0), (lora_files["kohya"], 0.5)]
    reports = _check(dit, ref_pipe, loras, "official@1.0 + kohya@0.5")
    assert [r.strength for r in reports] == [1.0, 0.5]


def test_unload_restores_bit_identical(dit, lora_files):
    apply_loras(dit, [])
    original = {k: v.clone() for k, v in dit.state_dict().items()}
    apply_loras(dit, [(lora_files["diffusers"], 1.0), (lora_files["kohya"], 0.7)])
    changed = [k for k, v in dit.state_dict().items() if not torch.equal(v, original[k])]
    assert any("to_qkv" in k for k in changed) and any("bias" in k for k in changed)
    apply_loras(dit, [(lora_files["official"], 0.3)])  # switch: restores first, then merges
    apply_loras(dit, [])
    for k, v in dit.state_dict().items():
        assert torch.equal(v, original[k]), k
    assert not lora_manager(dit)._originals


def test_full_rank_diff_patches(dit, ref_pipe, tmp_path):
    """diff / diff_b on norms, modulation and biases (Diffusers drops norm diffs: the reference is Diffusers'
    DiT with the same deltas added to its own parameters by hand)."""
    g = torch.Generator().manual_seed(5)
    ref = copy.deepcopy(ref_pipe.transformer)
    rp = dict(ref.named_parameters())
    patches = {  # official key -> Diffusers parameter
        "diffusion_model.blocks.0.norm3.diff": "blocks.0.norm2.weight",
        "diffusion_model.blocks.0.norm3.diff_b": "blocks.0.norm2.bias",
        "diffusion_model.blocks.1.self_attn.norm_q.diff": "blocks.1.attn1.norm_q.weight",
        "diffusion_model.blocks.1.self_attn.k.diff_b": "blocks.1.attn1.to_k.bias",
        "diffusion_model.blocks.0.cross_attn.o.diff": "blocks.0.attn2.to_out.0.weight",
        "diffusion_model.blocks.1.modulation.diff": "blocks.1.scale_shift_table",
        "diffusion_model.head.head.diff_b": "proj_out.bias",
        "diffusion_model.time_projection.1.diff_b": "condition_embedder.time_proj.bias",
    }
    sd = {}
    with torch.no_grad():
        for key, name in patches.items():
            sd[key] = torch.randn(rp[name].shape, generator=g) * 0.2
            rp[name].add_(0.5 * sd[key])
    path = tmp_path / "diff.safetensors"
    save_safetensors(path, sd)
    (report,) = apply_loras(dit, [(path, 0.5)])
    assert report.ok and len(report.applied) == len(patches)
    x, t, text = _inputs()
    with torch.no_grad():
        want = ref(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    diff = (_our_out(dit) - want).abs().max().item()
    MAX_DIFFS["diff/diff_b@0.5"] = diff
    print(f"\ndiff/diff_b: max |ours - hand-patched diffusers| = {diff:.2e}")
    assert diff < ATOL
    apply_loras(dit, [])


# ----------------------------------------------------------------------------- strictness and bad input


def _shapes(dit):
    return {n: (tuple(p.shape), p.dtype) for n, p in dit.named_parameters()}


def test_strict_unmatched_key_lists_it_with_suggestion(dit, lora_files, tmp_path):
    from safetensors.torch import load_file

    sd = load_file(str(lora_files["diffusers2"]))
    sd["transformer.blocks.0.attn1.to_qq.lora_A.weight"] = torch.zeros(RANK, 32)
    sd["transformer.blocks.0.attn1.to_qq.lora_B.weight"] = torch.zeros(32, RANK)
    sd["transformer.blocks.1.attn2.to_k.lora_B.weight"] = torch.zeros(48, RANK)  # wrong out size
    path = tmp_path / "bad.safetensors"
    save_safetensors(path, sd)
    before = {k: v.clone() for k, v in dit.state_dict().items()}
    with pytest.raises(LoraError) as exc:
        apply_loras(dit, [(path, 1.0)])
    msg = str(exc.value)
    assert "to_qq" in msg and "did you mean" in msg and "to_qkv" in msg
    assert "blocks.1.cross_attn.to_k.weight" in msg and "[32," in msg
    assert exc.value.report is not None and exc.value.report.counts["unmatched"] == 2
    for k, v in dit.state_dict().items():
        assert torch.equal(v, before[k]), k  # nothing touched
    (report,) = apply_loras(dit, [(path, 1.0)], strict=False)
    assert report.counts["unmatched"] == 2 and report.counts["shape_mismatch"] == 2
    assert report.counts["applied"] == len(sd) - 4 and not report.ok
    apply_loras(dit, [])


def test_bad_input_errors_before_touching(dit, tmp_path, lora_files):
    shapes = _shapes(dit)
    cfg = dit.arch_config
    with pytest.raises(FileNotFoundError, match="LoRA file not found"):
        plan_lora(tmp_path / "nope.safetensors", 1.0, shapes, cfg)
    full = tmp_path / "full.safetensors"
    save_safetensors(full, {"blocks.0.attn1.to_q.weight": torch.zeros(32, 32), "patch_embedding.bias": torch.zeros(32)})
    with pytest.raises(LoraError, match="not a LoRA"):
        plan_lora(full, 1.0, shapes, cfg)
    big = tmp_path / "big.safetensors"  # a 14B-like LoRA: hidden 5120, 40 blocks
    save_safetensors(big, {f"diffusion_model.blocks.{i}.self_attn.q.lora_down.weight": torch.zeros(2, 5120)
                           for i in (0, 39)} | {f"diffusion_model.blocks.{i}.self_attn.q.lora_up.weight":
                                               torch.zeros(5120, 2) for i in (0, 39)})
    with pytest.raises(LoraError, match=r"hidden size 5120, 40 blocks \(like Wan 14B\).*hidden size 32, 2 blocks"):
        plan_lora(big, 1.0, shapes, cfg)
    flux = tmp_path / "flux.safetensors"
    save_safetensors(flux, {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(2, 8),
                            "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(8, 2)})
    with pytest.raises(LoraError, match="Flux"):
        plan_lora(flux, 1.0, shapes, cfg)
    from safetensors.torch import load_file

    sd = load_file(str(lora_files["kohya"]))
    sd[next(iter(sd))][0, 0] = float("nan")
    nan = tmp_path / "nan.safetensors"
    save_safetensors(nan, sd)
    before = {k: v.clone() for k, v in dit.state_dict().items()}
    with pytest.raises(LoraError, match="non-finite"):
        apply_loras(dit, [(lora_files["diffusers"], 1.0), (nan, 1.0)])  # the good one is not merged either
    for k, v in dit.state_dict().items():
        assert torch.equal(v, before[k]), k
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 5)
    with pytest.raises(LoraError, match="cannot read"):
        plan_lora(garbage, 1.0, shapes, cfg)


def test_report_json(dit, lora_files):
    (report,) = apply_loras(dit, [(lora_files["kohya"], 1.0)])
    data = report.to_json()
    assert data["format"] == "kohya" and data["ok"]
    row = next(r for r in data["rows"] if r["key"] == "lora_unet_blocks_0_self_attn_k.lora_down.weight")
    assert row["target"] == "blocks.0.self_attn.to_qkv.weight[32:64]" and row["status"] == "applied"
    assert row["rank"] == RANK and row["alpha"] == ALPHA and "kohya#0" in row["rule"]
    alpha = next(r for r in data["rows"] if r["key"] == "lora_unet_blocks_0_self_attn_k.alpha")
    assert alpha["status"] == "applied"
    apply_loras(dit, [])


def test_conv_patch_embedding_lora(dit, tmp_path):
    """A LoRA on the Conv3d patchifier only (no block keys): delta = (B.flatten(1) @ A.flatten(1)) reshaped."""
    apply_loras(dit, [])
    g = torch.Generator().manual_seed(9)
    A, B = torch.randn(3, 16, 1, 2, 2, generator=g), torch.randn(32, 3, 1, 1, 1, generator=g)
    path = tmp_path / "conv.safetensors"
    save_safetensors(path, {"diffusion_model.patch_embedding.lora_down.weight": A,
                            "diffusion_model.patch_embedding.lora_up.weight": B,
                            "diffusion_model.patch_embedding.alpha": torch.tensor(6.0)})
    w0 = dit.patch_embedding.weight.detach().clone()
    (report,) = apply_loras(dit, [(path, 0.5)])
    want = w0 + 0.5 * (6.0 / 3) * (B.flatten(1) @ A.flatten(1)).reshape(w0.shape)
    assert report.ok and report.rows[0].target == "patch_embedding.weight"
    assert (dit.patch_embedding.weight - want).abs().max().item() < 1e-5
    apply_loras(dit, [])
    assert torch.equal(dit.patch_embedding.weight, w0)


@pytest.mark.parametrize("fmt", ["diffusers", "official", "kohya"])
def test_header_plan_equals_tensor_plan(dit, lora_files, fmt, monkeypatch):
    # The studio's inspector plans a LoRA from its safetensors header (torch-free): the same rows, targets,
    # rules, ranks, alphas and statuses as planning the real tensors -- and no tensor data read but alphas.
    from fastvideo.lora import plan_entries, read_lora_header
    from fastvideo.mapping import safetensors_header

    shapes = {n: (tuple(p.shape), p.dtype) for n, p in dit.named_parameters()}
    real = plan_lora(lora_files[fmt], 0.5, shapes, dit.arch_config, strict=False).report
    reads = []
    real_read = safetensors_header.read_small_values
    monkeypatch.setattr("fastvideo.lora.plan.read_small_values", lambda e: reads.append(e) or real_read(e))
    head = plan_entries(read_lora_header(lora_files[fmt]), 0.5, shapes, dit.arch_config, strict=False).report
    assert head.format == real.format == ("official" if fmt == "official" else fmt)
    assert [r.to_json() for r in head.rows] == [r.to_json() for r in real.rows]
    assert len(reads) == sum(r.kind == "alpha" for r in real.rows)
