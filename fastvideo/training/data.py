"""Procedural captioned clips: coloured shapes moving on plain backgrounds.

Every clip shows one shape (circle, square or triangle) of one of
:data:`COLOURS` on a plain background of another colour (or grey), moving in a
straight line left, right, up or down, or standing still.  Rendering is
vectorised in torch (anti-aliased signed distances), so a batch of clips is made
directly on the GPU during training.

Everything is deterministic from a seed: :func:`sample_labels` draws labels with a
``random.Random(seed)``, :func:`render_clips` is a pure function of the labels, and
:func:`caption` picks the phrasing from the label's own ``phrase`` index.

Train / held-out split: training captions use :data:`TRAIN_TEMPLATES` and seeds
from the ``train`` stream; :func:`heldout_prompts` uses :data:`HELDOUT_TEMPLATES`
(phrasings never seen in training) and a separate seed stream.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass

import torch

# Well-separated palette (RGB 0..255). The judge classifies colours against it.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 220, 30),
    "purple": (140, 50, 190),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {**COLOURS, "grey": (128, 128, 128)}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down", "still")

MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "right": ("moves to the right", "moves right", "slides to the right", "travels right"),
    "left": ("moves to the left", "moves left", "slides to the left", "travels left"),
    "up": ("moves up", "moves upward", "slides up", "travels up"),
    "down": ("moves down", "moves downward", "slides down", "travels down"),
    "still": ("stays still", "stands still", "does not move", "rests in place"),
}
TRAIN_TEMPLATES = (
    "a {colour} {shape} {motion} on a {bg} background",
    "a {colour} {shape} {motion} on {bg}",
    "{colour} {shape} {motion}, {bg} background",
    "on a {bg} background, a {colour} {shape} {motion}",
    "a {colour} {shape} that {motion} over a plain {bg} background",
    "the {colour} {shape} {motion} against a {bg} backdrop",
)
HELDOUT_TEMPLATES = (
    "a video of a {colour} {shape} that {motion} on a {bg} background",
    "in front of a {bg} background the {colour} {shape} {motion}",
    "simple animation: a {colour} {shape} {motion} over {bg}",
)
HELDOUT_SEED_OFFSET = 1_000_003  # held-out clips use seeds from a disjoint stream


@dataclass(frozen=True)
class ClipLabel:
    shape: str
    colour: str
    bg: str
    direction: str
    size: float  # half-size in pixels at 128x128
    start: tuple[float, float]  # centre (x, y) at frame 0, in pixels at 128x128
    distance: float  # pixels travelled over the clip (0 for still)
    template: int = 0
    phrase: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def velocity(direction: str) -> tuple[float, float]:
    return {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0),
            "still": (0.0, 0.0)}[direction]


def random_label(rng: random.Random, templates: int = len(TRAIN_TEMPLATES), colour: str | None = None,
                 direction: str | None = None, shape: str | None = None) -> ClipLabel:
    """One label; positions keep the whole shape inside a 128x128 frame for the whole clip."""
    shape = shape or rng.choice(SHAPES)
    colour = colour or rng.choice(list(COLOURS))
    bg = rng.choice([b for b in BACKGROUNDS if b != colour])
    direction = direction or rng.choice(DIRECTIONS)
    size = rng.uniform(12.0, 18.0)
    distance = 0.0 if direction == "still" else rng.uniform(44.0, 64.0)
    vx, vy = velocity(direction)
    margin = size + 3.0
    lo_x, hi_x = margin - min(vx, 0) * distance, 128 - margin - max(vx, 0) * distance
    lo_y, hi_y = margin - min(vy, 0) * distance, 128 - margin - max(vy, 0) * distance
    start = (rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y))
    return ClipLabel(shape, colour, bg, direction, size, start, distance, rng.randrange(templates),
                     rng.randrange(len(MOTION_PHRASES[direction])))


def sample_labels(n: int, seed: int) -> list[ClipLabel]:
    """``n`` training labels, deterministic for ``seed``."""
    rng = random.Random(seed)
    return [random_label(rng) for _ in range(n)]


def caption(label: ClipLabel, templates: tuple[str, ...] = TRAIN_TEMPLATES) -> str:
    motion = MOTION_PHRASES[label.direction][label.phrase % len(MOTION_PHRASES[label.direction])]
    text = templates[label.template % len(templates)]
    return _articles(text.format(colour=label.colour, shape=label.shape, motion=motion, bg=label.bg))


def _articles(text: str) -> str:
    """``a orange`` -> ``an orange``."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def caption_corpus() -> list[str]:
    """Every caption the templates can make (train and held-out): the tokenizer's corpus."""
    lines = []
    for templates in (TRAIN_TEMPLATES, HELDOUT_TEMPLATES):
        for text in templates:
            for colour in COLOURS:
                for shape in SHAPES:
                    for _direction, phrases in MOTION_PHRASES.items():
                        for motion in phrases:
                            bg = "grey" if colour != "grey" else "red"
                            lines.append(_articles(text.format(colour=colour, shape=shape, motion=motion,
                                                               bg=bg)))
    for bg in BACKGROUNDS:
        lines.append(f"a plain {bg} background")
    return lines


def heldout_prompts(n: int = 50, seed: int = 0) -> list[tuple[str, ClipLabel, int]]:
    """``n`` held-out ``(prompt, label, generation seed)``: unseen phrasings, disjoint seeds.

    Colours and directions are balanced (cycled), shapes and backgrounds random.
    """
    rng = random.Random(seed + HELDOUT_SEED_OFFSET)
    colours, out = list(COLOURS), []
    for i in range(n):
        label = random_label(rng, templates=len(HELDOUT_TEMPLATES), colour=colours[i % len(colours)],
                             direction=DIRECTIONS[i % len(DIRECTIONS)])
        out.append((caption(label, HELDOUT_TEMPLATES), label, HELDOUT_SEED_OFFSET + seed * 1000 + i))
    return out


def _signed_distance(shape_ids: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    circle = torch.sqrt(dx * dx + dy * dy + 1e-6) - r
    square = torch.maximum(dx.abs(), dy.abs()) - 0.88 * r
    # Triangle pointing up: apex (0, -r), base y = 0.8 r, half-width (dy + r) / 1.8.
    slope = 1.8
    side = (dx.abs() * slope - (dy + r)) / (1 + slope * slope) ** 0.5
    triangle = torch.maximum(dy - 0.8 * r, side)
    out = torch.where(shape_ids == 0, circle, square)
    return torch.where(shape_ids == 2, triangle, out)


def render_clips(labels: list[ClipLabel], num_frames: int = 17, size: int = 128,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """Labels -> clips ``[B, 3, T, size, size]`` in [-1, 1] (float32), anti-aliased."""
    b = len(labels)
    scale = size / 128.0
    f = lambda values: torch.tensor(values, dtype=torch.float32, device=device)  # noqa: E731
    shape_ids = f([SHAPES.index(l.shape) for l in labels]).view(b, 1, 1, 1)
    r = f([l.size for l in labels]).view(b, 1, 1, 1) * scale
    start = f([l.start for l in labels]) * scale  # [B, 2]
    vel = f([velocity(l.direction) for l in labels]) * f([l.distance for l in labels])[:, None] * scale
    t = torch.linspace(0, 1, num_frames, device=device) if num_frames > 1 else torch.zeros(1, device=device)
    centre = start[:, None, :] + t[None, :, None] * vel[:, None, :]  # [B, T, 2]
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5)
    dx = coords.view(1, 1, 1, size) - centre[..., 0].view(b, num_frames, 1, 1)
    dy = coords.view(1, 1, size, 1) - centre[..., 1].view(b, num_frames, 1, 1)
    mask = (0.5 - _signed_distance(shape_ids, dx, dy, r)).clamp(0, 1)  # [B, T, H, W]
    fg = f([COLOURS[l.colour] for l in labels]) / 127.5 - 1  # [B, 3]
    bg = f([BACKGROUNDS[l.bg] for l in labels]) / 127.5 - 1
    m = mask[:, None]
    return bg.view(b, 3, 1, 1, 1) * (1 - m) + fg.view(b, 3, 1, 1, 1) * m


def to_uint8(clip: torch.Tensor) -> torch.Tensor:
    """One clip ``[3, T, H, W]`` in [-1, 1] -> uint8 ``[T, H, W, 3]``."""
    return ((clip.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu()


def make_batch(batch: int, seed: int, num_frames: int = 17, size: int = 128, device="cpu",
               caption_dropout: float = 0.0) -> tuple[torch.Tensor, list[str], list[ClipLabel]]:
    """A training batch for ``seed``: clips, captions (dropped to ``""`` with that probability), labels."""
    rng = random.Random(seed)
    labels = [random_label(rng) for _ in range(batch)]
    caps = ["" if rng.random() < caption_dropout else caption(l) for l in labels]
    return render_clips(labels, num_frames, size, device), caps, labels
