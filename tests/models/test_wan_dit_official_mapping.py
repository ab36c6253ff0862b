"""Official Wan2.1 (and ComfyUI-prefixed) DiT names -> Diffusers names -> our names."""

from __future__ import annotations

import pytest

from fastvideo.configs.models.dits import WanVideoConfig
from fastvideo.mapping.rules import TensorInfo, build_report, compile_rules, map_name
from fastvideo.models.dits import WanTransformer3DModel
from fastvideo.models.loader.weights import empty_init, target_infos

OFFICIAL_TO_DIFFUSERS = {
    "patch_embedding.weight": "patch_embedding.weight",
    "time_embedding.0.weight": "condition_embedder.time_embedder.linear_1.weight",
    "time_embedding.2.bias": "condition_embedder.time_embedder.linear_2.bias",
    "text_embedding.0.weight": "condition_embedder.text_embedder.linear_1.weight",
    "text_embedding.2.weight": "condition_embedder.text_embedder.linear_2.weight",
    "time_projection.1.weight": "condition_embedder.time_proj.weight",
    "blocks.0.self_attn.q.weight": "blocks.0.attn1.to_q.weight",
    "blocks.0.self_attn.o.bias": "blocks.0.attn1.to_out.0.bias",
    "blocks.0.self_attn.norm_k.weight": "blocks.0.attn1.norm_k.weight",
    "blocks.12.cross_attn.v.weight": "blocks.12.attn2.to_v.weight",
    "blocks.0.cross_attn.k_img.weight": "blocks.0.attn2.add_k_proj.weight",
    "blocks.0.cross_attn.v_img.bias": "blocks.0.attn2.add_v_proj.bias",
    "blocks.0.cross_attn.norm_k_img.weight": "blocks.0.attn2.norm_added_k.weight",
    "blocks.0.norm3.weight": "blocks.0.norm2.weight",  # the affine cross-attention norm
    "blocks.3.norm3.bias": "blocks.3.norm2.bias",
    "blocks.0.modulation": "blocks.0.scale_shift_table",
    "blocks.29.ffn.0.weight": "blocks.29.ffn.net.0.proj.weight",
    "blocks.29.ffn.2.bias": "blocks.29.ffn.net.2.bias",
    "head.head.weight": "proj_out.weight",
    "head.modulation": "scale_shift_table",
    "img_emb.proj.0.weight": "condition_embedder.image_embedder.norm1.weight",
    "img_emb.proj.1.weight": "condition_embedder.image_embedder.ff.net.0.proj.weight",
    "img_emb.proj.3.bias": "condition_embedder.image_embedder.ff.net.2.bias",
    "img_emb.proj.4.weight": "condition_embedder.image_embedder.norm2.weight",
    "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed",
}


@pytest.mark.parametrize("prefix", ["", "model.diffusion_model."])
def test_known_official_names(prefix):
    rules = compile_rules(WanVideoConfig.official_param_names_mapping)
    for official, diffusers in OFFICIAL_TO_DIFFUSERS.items():
        assert map_name(prefix + official, rules)[0] == diffusers, official


def official_names(num_layers: int, i2v: bool) -> list[str]:
    """Every parameter name of an official WanModel (written from its module layout)."""
    wb = ("weight", "bias")
    names = [f"patch_embedding.{p}" for p in wb]
    names += [f"{m}.{i}.{p}" for m in ("text_embedding", "time_embedding") for i in (0, 2) for p in wb]
    names += [f"time_projection.1.{p}" for p in wb]
    for n in range(num_layers):
        b = f"blocks.{n}."
        names.append(b + "modulation")
        for attn in ("self_attn", "cross_attn"):
            names += [f"{b}{attn}.{x}.{p}" for x in "qkvo" for p in wb]
            names += [f"{b}{attn}.norm_{x}.weight" for x in "qk"]
        if i2v:
            names += [f"{b}cross_attn.{x}_img.{p}" for x in "kv" for p in wb]
            names.append(b + "cross_attn.norm_k_img.weight")
        names += [f"{b}norm3.{p}" for p in wb]
        names += [f"{b}ffn.{i}.{p}" for i in (0, 2) for p in wb]
    names += [f"head.head.{p}" for p in wb] + ["head.modulation"]
    if i2v:
        names += [f"img_emb.proj.{i}.{p}" for i in (0, 1, 3, 4) for p in wb]
    return names


@pytest.mark.parametrize("i2v", [False, True])
@pytest.mark.parametrize("prefix", ["", "model.diffusion_model."])
def test_official_to_ours_covers_every_parameter(i2v, prefix):
    diffusers = pytest.importorskip("diffusers")
    kwargs = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                  text_dim=16, freq_dim=16, ffn_dim=24, num_layers=2)
    if i2v:
        kwargs.update(in_channels=36, image_dim=12, added_kv_proj_dim=16)
    ref = diffusers.WanTransformer3DModel(**kwargs)
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}

    # official -> Diffusers hits exactly the Diffusers checkpoint keys, one to one.
    to_diffusers = compile_rules(WanVideoConfig.official_param_names_mapping)
    official = [prefix + n for n in official_names(2, i2v)]
    as_diffusers = [map_name(n, to_diffusers)[0] for n in official]
    assert len(set(as_diffusers)) == len(official)
    assert set(as_diffusers) == set(ref_shapes)

    # ... -> ours: every model parameter is covered, with the right shape.
    cfg = WanVideoConfig(**kwargs)
    with empty_init():
        model = WanTransformer3DModel(cfg)
    source = {n: TensorInfo(ref_shapes[n], "BF16") for n in as_diffusers}
    report = build_report(source, target_infos(model), cfg.param_names_mapping, "transformer")
    assert report.ok, report.summary()
    assert report.counts["merged"] == 6 * cfg.num_layers
    assert report.counts["mapped"] + report.counts["merged"] == len(official)


@pytest.mark.parametrize("prefix", ["", "model.diffusion_model."])
def test_agrees_with_diffusers_single_file_converter(prefix):
    """Cross-check against Diffusers' own official->Diffusers converter (test-only use)."""
    torch = pytest.importorskip("torch")
    single_file = pytest.importorskip("diffusers.loaders.single_file_utils")
    official = [prefix + n for n in official_names(2, i2v=True)]
    checkpoint = {n: torch.full((1,), float(i)) for i, n in enumerate(official)}
    converted = single_file.convert_wan_transformer_to_diffusers(dict(checkpoint))
    theirs = {int(t.item()): name for name, t in converted.items()}
    rules = compile_rules(WanVideoConfig.official_param_names_mapping)
    ours = {i: map_name(n, rules)[0] for i, n in enumerate(official)}
    assert ours == theirs
