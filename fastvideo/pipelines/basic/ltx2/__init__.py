"""LTX-2 pipelines: text-to-video and image-to-video, both with a generated audio track."""

from fastvideo.pipelines.basic.ltx2.pipelines import LTX2I2VPipeline, LTX2T2VPipeline

PIPELINES_BY_TASK = {"t2v": LTX2T2VPipeline, "i2v": LTX2I2VPipeline}

__all__ = ["PIPELINES_BY_TASK", "LTX2I2VPipeline", "LTX2T2VPipeline"]
