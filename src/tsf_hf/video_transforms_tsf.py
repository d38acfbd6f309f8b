"""Spatial geometry of the TimeSformer video processor: the original's short-side resize and crop positions."""

import math

import torch
import torch.nn.functional as F
from transformers.image_utils import PILImageResampling


INTERPOLATION_MODES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}
"""The `resample` values the processor takes, and the `torch.nn.functional.interpolate` mode of each."""


def short_side_resize(frames: torch.Tensor, short_side: int, mode: str = "bilinear") -> torch.Tensor:
    """Resizes `(T, C, H, W)` float frames so the short side is `short_side` and the long side
    `floor(long / short * short_side)`. Interpolation on float values, `align_corners=False`, no antialiasing;
    frames already at size are returned as they are."""
    height, width = frames.shape[-2:]
    if min(height, width) == short_side:
        return frames
    # the aspect ratio first, then the product, in floating point (as the original): 140x575 at 224 gives 919 columns,
    # where the exact 575 * 224 / 140 would give 920
    if width <= height:
        size = (math.floor(height / width * short_side), short_side)
    else:
        size = (short_side, math.floor(width / height * short_side))
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(frames, size=size, mode=mode, **kwargs)


def spatial_crop_offsets(
    height: int, width: int, crop_height: int, crop_width: int, num_crops: int
) -> list[tuple[int, int]]:
    """Top-left corners of `num_crops` (1 or 3) crops: the centre (offsets rounded up), or start, centre and end
    along the long side (centred across the short side)."""
    if crop_height > height or crop_width > width:
        raise ValueError(f"crop {crop_height}x{crop_width} is larger than the resized frame {height}x{width}")
    top, left = math.ceil((height - crop_height) / 2), math.ceil((width - crop_width) / 2)
    if num_crops == 1:
        return [(top, left)]
    if height > width:
        return [(0, left), (top, left), (height - crop_height, left)]
    return [(top, 0), (top, left), (top, width - crop_width)]


__all__ = ["INTERPOLATION_MODES", "short_side_resize", "spatial_crop_offsets"]
