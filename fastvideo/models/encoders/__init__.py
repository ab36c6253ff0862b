"""Text and image encoders (thin subclasses of the transformers models) and their input procedures."""

from fastvideo.models.encoders.clip import CLIPVisionEncoder, encode_image
from fastvideo.models.encoders.t5 import UMT5TextEncoder, encode_prompts
from fastvideo.models.encoders.text_utils import prompt_clean

__all__ = ["CLIPVisionEncoder", "UMT5TextEncoder", "encode_image", "encode_prompts", "prompt_clean"]
