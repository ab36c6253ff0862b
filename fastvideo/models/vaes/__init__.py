from fastvideo.models.vaes.wan import AutoencoderKLWan, WanLatentDistribution

__all__ = ["AutoencoderKLWan", "WanLatentDistribution"]
