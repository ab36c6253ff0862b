"""Wan2.1 pipelines: text-to-video, image-to-video, video-to-video."""

from fastvideo.pipelines.basic.wan.pipelines import WanI2VPipeline, WanT2VPipeline, WanV2VPipeline

PIPELINES_BY_TASK = {"t2v": WanT2VPipeline, "i2v": WanI2VPipeline, "v2v": WanV2VPipeline}

__all__ = ["PIPELINES_BY_TASK", "WanI2VPipeline", "WanT2VPipeline", "WanV2VPipeline"]
