"""A sample grid image of the shapes model: one row per prompt, a few frames per row (PIL).

    python -m fastvideo.training.grid [MODEL] --output docs/images/default-model-grid.png
"""

from __future__ import annotations

import argparse

import numpy as np

DEFAULT_PROMPTS = [
    ("a red circle moves to the right on a blue background", 1),
    ("a yellow square moves up on a purple background", 2),
    ("a white triangle moves to the left on a black background", 3),
    ("a green circle moves down on an orange background", 4),
    ("an orange square stays still on a grey background", 5),
    ("a purple triangle moves right on a yellow background", 6),
]


def render_grid(rows: list[tuple[str, np.ndarray]], frames: tuple[int, ...] = (0, 4, 8, 12, 16), scale: int = 1,
                label_width: int = 330):
    from PIL import Image, ImageDraw

    h, w = rows[0][1].shape[1:3]
    h, w = h * scale, w * scale
    pad = 4
    grid = Image.new("RGB", (label_width + len(frames) * (w + pad) + pad, 20 + len(rows) * (h + pad) + pad),
                     (250, 250, 250))
    draw = ImageDraw.Draw(grid)
    for j, f in enumerate(frames):
        draw.text((label_width + pad + j * (w + pad), 4), f"frame {f}", fill=(60, 60, 60))
    for i, (prompt, clip) in enumerate(rows):
        y = 20 + pad + i * (h + pad)
        words, lines, line = prompt.split(), [], ""
        for word in words:
            if len(line) + len(word) > 44:
                lines.append(line)
                line = ""
            line = f"{line} {word}".strip()
        lines.append(line)
        for k, text in enumerate(lines):
            draw.text((6, y + 6 + 14 * k), text, fill=(20, 20, 20))
        for j, f in enumerate(frames):
            img = Image.fromarray(clip[min(f, len(clip) - 1)])
            if scale != 1:
                img = img.resize((w, h), Image.NEAREST)
            grid.paste(img, (label_width + pad + j * (w + pad), y))
    return grid


def main(argv: list[str] | None = None) -> int:
    from fastvideo import SamplingParam, VideoGenerator
    from fastvideo.builtin import resolve_model_arg

    p = argparse.ArgumentParser(prog="python -m fastvideo.training.grid")
    p.add_argument("model", nargs="?", default=None)
    p.add_argument("--output", default="docs/images/default-model-grid.png")
    args = p.parse_args(argv)
    path = resolve_model_arg(args.model)
    sp = SamplingParam.from_pretrained(path).update(save_video=False, return_frames=True)
    gen = VideoGenerator.from_pretrained(path)
    rows = []
    try:
        for prompt, seed in DEFAULT_PROMPTS:
            rows.append((prompt, np.asarray(gen.generate_video(prompt, sampling_param=sp, seed=seed)["frames"])))
    finally:
        gen.shutdown()
    render_grid(rows).save(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
