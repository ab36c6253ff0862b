"""fastvideo parity on a tiny LTX-2 folder: every component passes in fp32 against Diffusers, and a swapped pair
of same-shaped weights fails naming the module whose weights it misplaces."""

from __future__ import annotations

import pytest
from ltx2_helpers import diffusers_or_skip

import fastvideo.configs.families.ltx2  # noqa: F401
from fastvideo.parity import run_parity
from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2

COMPONENTS = ("transformer", "vae", "audio_vae", "vocoder", "connectors", "text_encoder", "scheduler")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_ltx2(tmp_path_factory.mktemp("p") / "m", seed=2))


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_component_passes(tiny, component):
    diffusers_or_skip()
    result = run_parity(tiny, component)
    assert result["passed"], result["outputs"]
    assert result["outputs"] and all(o["max_abs"] <= 1e-4 for o in result["outputs"])


def test_swapped_rule_fails_and_names_the_module(tiny):
    diffusers_or_skip()
    from fastvideo.configs.models.dits.ltx2 import LTX2VideoConfig

    b = r"^transformer_blocks\.(\d+)\."
    rules = [(b + r"attn2\.to_k\.", r"transformer_blocks.\1.attn2.to_v."),
             (b + r"attn2\.to_v\.", r"transformer_blocks.\1.attn2.to_k."),
             *LTX2VideoConfig().param_names_mapping.items()]
    result = run_parity(tiny, "transformer", rules=rules)
    assert not result["passed"]
    assert result["first_divergent"]["ours"] == "transformer_blocks.0.attn2.to_k"


def test_unknown_component_is_named(tiny):
    with pytest.raises(ValueError, match="audio_vae, vocoder"):
        run_parity(tiny, "image_encoder")
