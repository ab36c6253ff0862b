"""Where the time goes: kernel table of one compiled 1.3B DiT forward (480p, 81 frames) and
VAE decode variants (memory formats).  Run on a GPU: python benchmarks/profile_dit.py"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from fastvideo.perf.bench import build_dits, dit_inputs
from fastvideo.perf.timing import time_cuda
from fastvideo.pipelines.compile import compile_dit_blocks


def kernel_table(fn, n=30):
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=n, max_name_column_width=90))


def main():
    torch.backends.cudnn.benchmark = True
    parts = sys.argv[1:] or ["dit", "vae"]
    if "dit" in parts:
        cfg, model, _ = build_dits("wan2.1-t2v-1.3b", torch.device("cuda"), torch.bfloat16, False)
        x, t, c = dit_inputs(cfg, 81, 480, 832, 1, "cuda", torch.bfloat16)
        compile_dit_blocks(model)
        with torch.inference_mode():
            print("compiled forward", time_cuda(lambda: model(x, t, c), warmup=3, iters=3))
            kernel_table(lambda: model(x, t, c))
        del model
        torch.cuda.empty_cache()
    if "vae" in parts:
        from fastvideo.configs.models.vaes.wan import WanVAEConfig
        from fastvideo.models.vaes.wan import AutoencoderKLWan

        with torch.device("cuda"):
            vae = AutoencoderKLWan(WanVAEConfig()).eval().to(torch.bfloat16)
        z = torch.randn(1, 16, 21, 60, 104, device="cuda", dtype=torch.bfloat16)
        with torch.inference_mode():
            print("vae decode NCDHW", time_cuda(lambda: vae.decode(z), warmup=1, iters=3))
            kernel_table(lambda: vae.decode(z), 20)
            vae.to(memory_format=torch.channels_last_3d)
            print("vae decode channels_last_3d", time_cuda(lambda: vae.decode(z), warmup=1, iters=3))
            kernel_table(lambda: vae.decode(z), 20)


if __name__ == "__main__":
    main()
