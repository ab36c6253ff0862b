import time

import pytest

from fastvideo.mapping.rules import (
    RuleError,
    TargetInfo,
    TensorInfo,
    build_report,
    compile_rules,
    map_name,
    near_misses,
    rules_from_python,
    rules_to_python,
)

RULES = {
    r"^blocks\.(\d+)\.attn1\.to_q\.(.*)$": (r"blocks.\1.self_attn.to_qkv.\2", 0, 3),
    r"^blocks\.(\d+)\.attn1\.to_k\.(.*)$": (r"blocks.\1.self_attn.to_qkv.\2", 1, 3),
    r"^blocks\.(\d+)\.attn1\.to_v\.(.*)$": (r"blocks.\1.self_attn.to_qkv.\2", 2, 3),
    r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.(.*)$": r"blocks.\1.ffn.fc_in.\2",
    r"^blocks\.(\d+)\.(.*)$": r"blocks.\1.\2",  # never reached for the names above: first match wins
}


def info(*shape):
    return TensorInfo(tuple(shape), "F32")


def test_first_match_wins_and_unmatched_pass_through():
    rules = compile_rules(RULES)
    assert map_name("blocks.3.ffn.net.0.proj.weight", rules) == ("blocks.3.ffn.fc_in.weight", rules[3])
    assert map_name("blocks.3.norm.weight", rules)[1].index == 4
    assert map_name("head.weight", rules) == ("head.weight", None)


def test_renamed_and_fused_all_mapped():
    src = {
        "blocks.0.attn1.to_q.weight": info(4, 4), "blocks.0.attn1.to_k.weight": info(4, 4),
        "blocks.0.attn1.to_v.weight": info(4, 4), "blocks.0.ffn.net.0.proj.weight": info(8, 4),
        "head.weight": info(2, 4),
    }
    tgt = {"blocks.0.self_attn.to_qkv.weight": (12, 4), "blocks.0.ffn.fc_in.weight": (8, 4), "head.weight": (2, 4)}
    rep = build_report(src, tgt, RULES, "transformer")
    assert rep.ok
    assert rep.counts == {"mapped": 2, "merged": 3, "missing": 0, "unexpected": 0, "shape_mismatch": 0}
    q = next(r for r in rep.rows if r.source == "blocks.0.attn1.to_q.weight")
    assert (q.rule, q.target, q.status) == (0, "blocks.0.self_attn.to_qkv.weight", "merged")


def test_missing_unexpected_and_shape_mismatch():
    src = {"head.weight": info(3, 4), "extra.bias": info(2), "blocks.0.ffn.net.0.proj.weight": info(8, 4)}
    tgt = {"head.weight": (2, 4), "norm.weight": (4,), "blocks.0.ffn.fc_in.weight": (8, 4)}
    rep = build_report(src, tgt, RULES)
    assert rep.counts == {"mapped": 1, "merged": 0, "missing": 1, "unexpected": 1, "shape_mismatch": 1}
    assert not rep.ok
    text = rep.summary()
    assert "1 missing: norm.weight [4]" in text
    assert "1 unexpected: extra.bias" in text
    assert "head.weight -> head.weight: checkpoint [3, 4], model [2, 4]" in text


def test_incomplete_and_misshapen_merge():
    src = {"blocks.0.attn1.to_q.weight": info(4, 4), "blocks.0.attn1.to_k.weight": info(4, 4)}
    rep = build_report(src, {"blocks.0.self_attn.to_qkv.weight": (12, 4)}, RULES)
    missing = rep.problems("missing")
    assert len(missing) == 1 and "part(s) [2] absent" in missing[0].detail
    src["blocks.0.attn1.to_v.weight"] = info(5, 4)
    rep = build_report(src, {"blocks.0.self_attn.to_qkv.weight": (12, 4)}, RULES)
    assert rep.counts["shape_mismatch"] == 3


def test_duplicate_target_is_reported():
    rules = {r"^old\.(.*)$": r"new.\1"}
    rep = build_report({"old.w": info(2), "new.w": info(2)}, {"new.w": (2,)}, rules)
    assert rep.counts["duplicate_target"] == 2 and rep.counts["unexpected"] == 0 and not rep.ok


def test_tied_alias_counts_as_primary():
    rep = build_report({"encoder.embed_tokens.weight": info(10, 4)},
                       {"shared.weight": TargetInfo((10, 4), ("encoder.embed_tokens.weight",))}, {})
    assert rep.ok


@pytest.mark.parametrize("rules, match", [
    ({"(unclosed": "x"}, "invalid regex"),
    ({"(a)": r"\2"}, "group 2"),
    ({"a": ("b", 3, 3)}, "out of range"),
    ({"a": 5}, "must be a string"),
])
def test_bad_rules_name_the_rule(rules, match):
    with pytest.raises(RuleError, match=match) as exc:
        compile_rules(rules)
    assert exc.value.index == 0


def test_python_literal_round_trip():
    text = rules_to_python(RULES)
    assert rules_from_python(text) == RULES
    with pytest.raises(ValueError):
        rules_from_python("__import__('os')")


def test_near_misses_rank_the_renamed_key_first():
    cands = ["blocks.0.attn1.norm_q.weight", "blocks.0.ffn.net.2.bias", "head.weight"]
    assert near_misses("blocks.0.self_attn.norm_q.weight", cands)[0][0] == "blocks.0.attn1.norm_q.weight"


def test_1300_keys_fast():
    src, tgt = {}, {}
    for b in range(40):
        for name in ("attn1.to_q", "attn1.to_k", "attn1.to_v", "ffn.net.0.proj", "norm2", "attn2.to_q", "attn2.to_k",
                     "attn2.to_v", "attn2.to_out.0", "ffn.net.2", "attn1.to_out.0", "attn1.norm_q", "attn1.norm_k"):
            for p in ("weight", "bias"):
                src[f"blocks.{b}.{name}.{p}"] = info(5120, 5120)
        for p in ("weight", "bias"):
            tgt[f"blocks.{b}.self_attn.to_qkv.{p}"] = (15360, 5120)
    assert len(src) >= 1000
    t = time.perf_counter()
    rep = build_report(src, tgt, RULES)
    assert time.perf_counter() - t < 1.0
    assert rep.counts["merged"] == 240
