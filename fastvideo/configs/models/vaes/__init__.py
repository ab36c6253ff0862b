from fastvideo.configs.models.vaes.wan import WanVAEConfig, official_wan_vae_mapping

__all__ = ["WanVAEConfig", "official_wan_vae_mapping"]
