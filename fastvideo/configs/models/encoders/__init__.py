from fastvideo.configs.models.encoders.clip import CLIPVisionArchConfig
from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig

__all__ = ["CLIPVisionArchConfig", "T5EncoderArchConfig"]
