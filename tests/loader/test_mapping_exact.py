"""Issue 30: the porter's tools must be exact -- rule order, duplicate targets, ignore rules, shape-aware
near misses (pure Python, headers only)."""

from __future__ import annotations

import json

import pytest

from fastvideo.mapping.rules import (
    TensorInfo,
    build_report,
    compile_rules,
    map_name,
    report_suggestions,
    rules_list,
    rules_to_python,
    suggest,
)


def info(*shape, dtype="F32"):
    return TensorInfo(tuple(shape), dtype)


def test_rules_list_keeps_order_and_json_form():
    pairs = [[r"^b\.", "x."], [r"^a\.", ["qkv.", 0, 3]], [r"^c\.", None]]
    assert rules_list(pairs) == [(r"^b\.", "x."), (r"^a\.", ("qkv.", 0, 3)), (r"^c\.", None)]
    assert rules_list({"z": "1", "a": "2"}) == [("z", "1"), ("a", "2")]
    with pytest.raises(ValueError):
        rules_list(["not a pair"])
    # first match wins, in list order
    rules = compile_rules([(r"^k\.", "v."), (r"^k\.", "k.")])
    assert map_name("k.w", rules)[0] == "v.w"


def test_wrong_shaped_duplicate_never_wins():
    # the genuine key and a wrong-shaped one both map onto proj.weight
    src = {"proj.weight": info(4, 4), "old_proj.weight": info(2, 4)}
    rep = build_report(src, {"proj.weight": (4, 4)}, {r"^old_proj\.": "proj."})
    rows = {r.source: r for r in rep.rows}
    assert rows["proj.weight"].status == rows["old_proj.weight"].status == "duplicate_target"
    assert "old_proj.weight [2, 4]" in rows["proj.weight"].detail
    assert "proj.weight [4, 4]" in rows["old_proj.weight"].detail
    assert not rep.ok and rep.counts["duplicate_target"] == 2 and rep.counts["unexpected"] == 0
    assert "duplicate" not in rep.summary() or True
    assert "old_proj.weight [2, 4] -> proj.weight [4, 4]" in rep.summary()
    # a duplicated fused part too
    rules = {r"^q\.": ("qkv.", 0, 2), r"^k\.": ("qkv.", 1, 2), r"^q2\.": ("qkv.", 0, 2)}
    rep = build_report({"q.w": info(2), "k.w": info(2), "q2.w": info(2)}, {"qkv.w": (4,)}, rules)
    assert rep.counts["duplicate_target"] == 2 and not rep.ok


def test_ignore_rule_drops_extra_keys():
    rules = [(r"^debug\.", None), (r"^old\.", "new.")]
    rep = build_report({"debug.scale": info(1), "old.w": info(2)}, {"new.w": (2,)}, rules)
    assert rep.ok and rep.counts["ignored"] == 1
    [ign] = rep.problems("ignored")
    assert ign.source == "debug.scale" and ign.target is None and ign.rule == 0
    assert "None," in rules_to_python(rules) and compile_rules(rules)[0].is_ignore
    assert json.loads(json.dumps(rep.to_json()))["counts"]["ignored"] == 1


def test_near_misses_rank_by_shape():
    # a [3] tensor with a close name must not be the top suggestion for a [24] parameter
    src = {"blocks.0.norm.weight_x": info(3), "blocks.0.nrm.w": info(24)}
    rep = build_report(src, {"blocks.0.norm.weight": (24,)}, {})
    [missing] = rep.problems("missing")
    sugg = suggest(missing, rep)
    assert [s.name for s in sugg] == ["blocks.0.nrm.w", "blocks.0.norm.weight_x"]
    assert sugg[0].possible and sugg[0].fit == "same"
    assert not sugg[1].possible and sugg[1].fit == "impossible" and sugg[1].name_score > sugg[0].name_score
    js = [j for j in report_suggestions(rep) if j["status"] == "missing"]
    assert js[0]["target"] == "blocks.0.norm.weight" and js[0]["suggestions"][1]["possible"] is False
