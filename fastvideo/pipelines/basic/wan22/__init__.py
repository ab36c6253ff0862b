"""Wan2.2 pipelines: TI2V-5B (text or image to video, one model) and the two-expert A14B T2V / I2V.

They are the Wan2.1 stage lists (``basic/wan``) with two differences stated here:

* the experts switch at the folder's ``boundary_ratio`` (``model_index.json``; A14B: 0.875 T2V, 0.9 I2V),
  overridable per request (``SamplingParam.boundary_ratio``);
* TI2V conditions on the image by replacing the first latent frame (``condition_mode = "replace"``: those
  tokens get timestep 0) instead of adding channels; A14B I2V adds channels as Wan2.1 does, without CLIP.
"""

from fastvideo.pipelines.basic.wan.pipelines import WanI2VPipeline, WanT2VPipeline


class Wan22T2VPipeline(WanT2VPipeline):
    def boundary_ratio(self) -> float | None:
        ratio = self.loaded.info.model_index.get("boundary_ratio")
        return float(ratio) if isinstance(ratio, (int, float)) else None


class Wan22I2VPipeline(WanI2VPipeline):
    boundary_ratio = Wan22T2VPipeline.boundary_ratio

    @property
    def condition_mode(self) -> str:  # type: ignore[override]
        return "replace" if self.loaded.info.model_index.get("expand_timesteps") else "concat"


PIPELINES_BY_TASK = {"t2v": Wan22T2VPipeline, "i2v": Wan22I2VPipeline}

__all__ = ["PIPELINES_BY_TASK", "Wan22I2VPipeline", "Wan22T2VPipeline"]
