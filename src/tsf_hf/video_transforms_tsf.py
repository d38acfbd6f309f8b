"""Spatial geometry of the TimeSformer video processor: the original's short-side resize and crop positions, the crops
of resized frames converted only where the crops read them, and the crops of a resized frame computed without
resizing all of it (for extreme aspect ratios)."""

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from transformers.image_utils import PILImageResampling


INTERPOLATION_MODES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}
"""The `resample` values the processor takes, and the `torch.nn.functional.interpolate` mode of each."""


CUBIC_COEFFICIENT = -0.75
"""The `a` of the cubic convolution kernel `torch.nn.functional.interpolate` uses for `bicubic`."""


def short_side_resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) of a `height x width` frame resized so its short side is `short_side`: the long side is
    `floor(long / short * short_side)`, the aspect ratio computed first, then the product, in floating point (as the
    original): 140x575 at 224 gives 919 columns, where the exact 575 * 224 / 140 would give 920."""
    if min(height, width) == short_side:
        return height, width
    if width <= height:
        return math.floor(height / width * short_side), short_side
    return short_side, math.floor(width / height * short_side)


def short_side_resize(frames: torch.Tensor, short_side: int, mode: str = "bilinear") -> torch.Tensor:
    """Resizes `(T, C, H, W)` float frames to `short_side_resized_size`. Interpolation on float values,
    `align_corners=False`, no antialiasing; frames already at size are returned as they are."""
    height, width = frames.shape[-2:]
    if min(height, width) == short_side:
        return frames
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(frames, size=short_side_resized_size(height, width, short_side), mode=mode, **kwargs)


def resized_views(
    frames: torch.Tensor | Sequence[torch.Tensor],
    resized_size: tuple[int, int],
    offsets: list[tuple[int, int]],
    crop_size: tuple[int, int],
    mode: str,
    write_values: Callable[[torch.Tensor, torch.Tensor], None],
) -> torch.Tensor:
    """The `crop_size` crops at `offsets` (top, left) of `(T, C, H, W)` frames (or a sequence of `(C, H, W)` frames)
    resized to `resized_size`, as `(len(offsets), T, C, h, w)` float32, exactly as `F.interpolate`
    (`align_corners=False`) of the whole frames' values then cropping gives them. `write_values(part, out)` writes the
    float32 values of a part of the frames (an elementwise transform: dtype, channel order, rescaling) into `out`.

    Only the window of source pixels the crops read is converted, one frame at a time, into a frame-sized buffer that
    is zero outside the window and that `F.interpolate` then resizes whole: the crops read exactly the pixels, with
    exactly the weights, they would read in the fully converted frames (the zeros only reach output pixels outside
    the crops), so the result is the same bit for bit, while memory traffic follows the window and one frame, not the
    whole clip (converting eight 720p frames to float at once costs more than resizing them)."""
    # F.interpolate cannot resize a part of a frame with the whole frame's weights, so the whole buffer is resized
    channels, height, width = frames[0].shape
    crop_height, crop_width = crop_size
    tops, lefts = [top for top, _ in offsets], [left for _, left in offsets]
    rows = _source_span(height, resized_size[0], min(tops), max(tops) + crop_height, mode)
    columns = _source_span(width, resized_size[1], min(lefts), max(lefts) + crop_width, mode)
    buffer = torch.empty_like(frames[0][None], dtype=torch.float32)  # the frames' memory format, as `.float()`
    for outside in (buffer[..., : rows.start, :], buffer[..., rows.stop :, :]):
        outside.zero_()
    for outside in (buffer[..., rows, : columns.start], buffer[..., rows, columns.stop :]):
        outside.zero_()
    window = buffer[..., rows, columns]
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    views = torch.empty(
        (len(offsets), len(frames), channels, crop_height, crop_width), dtype=torch.float32, device=buffer.device
    )
    for index, frame in enumerate(frames):
        write_values(frame[None, :, rows, columns], window)
        resized = F.interpolate(buffer, size=resized_size, mode=mode, **kwargs)[0]
        for view, (top, left) in enumerate(offsets):
            views[view, index] = resized[:, top : top + crop_height, left : left + crop_width]
    return views


def _source_span(input_size: int, output_size: int, start: int, stop: int, mode: str) -> slice:
    """The source indices `F.interpolate` reads, resizing `input_size` to `output_size`, for outputs `start` to
    `stop - 1`, widened by one on each side (the kernel's float rounding may differ from `_interpolation_taps`')."""
    indices, _ = _interpolation_taps(input_size, output_size, start, stop - start, mode)
    return slice(max(int(indices.min()) - 1, 0), min(int(indices.max()) + 2, input_size))


def resized_crops(
    frames: torch.Tensor,
    resized_size: tuple[int, int],
    offsets: list[tuple[int, int]],
    crop_size: tuple[int, int],
    mode: str = "bilinear",
) -> torch.Tensor:
    """The `crop_size` crops at `offsets` (top, left) of `(T, C, H, W)` float frames resized to `resized_size`, as
    `(len(offsets), T, C, h, w)`, computing only the pixels of the crops: memory and time follow the crops, not the
    resized frame (an 8-frame 16x4000 video resizes to 224x56000 for one 224x224 crop). Equal to
    `F.interpolate(frames, resized_size, mode=mode, align_corners=False)` then cropping, up to float rounding (the
    same source pixels and weights, summed one axis at a time)."""
    # F.interpolate cannot start its output grid at an offset, so the crop region is interpolated here
    height, width = frames.shape[-2:]
    crop_height, crop_width = crop_size
    views = []
    for top, left in offsets:
        rows, row_weights = _interpolation_taps(height, resized_size[0], top, crop_height, mode)
        columns, column_weights = _interpolation_taps(width, resized_size[1], left, crop_width, mode)
        first_row, first_column = int(rows.min()), int(columns.min())
        region = frames[..., first_row : int(rows.max()) + 1, first_column : int(columns.max()) + 1]
        region = (region[..., columns - first_column] * column_weights).sum(-1)  # (T, C, rows, crop_width)
        region = (region.transpose(-1, -2)[..., rows - first_row] * row_weights).sum(-1)  # (T, C, w, h)
        views.append(region.transpose(-1, -2))
    return torch.stack(views)


def _interpolation_taps(
    input_size: int, output_size: int, first: int, count: int, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices and weights, each `(count, taps)`, of output pixels `first .. first + count - 1` along one axis,
    computed in float32 as `torch.nn.functional.interpolate` does (`align_corners=False`, no antialiasing)."""
    scale = torch.tensor(input_size, dtype=torch.float32) / output_size
    outputs = torch.arange(first, first + count, dtype=torch.float32)
    if mode == "nearest":
        indices = (outputs * scale).floor().long().clamp(max=input_size - 1)
        return indices[:, None], torch.ones(count, 1)
    source = scale * (outputs + 0.5) - 0.5
    if mode == "bilinear":
        source = source.clamp(min=0)
    base = source.floor().long().clamp(max=input_size - 1)
    fraction = (source - base).clamp(0, 1)
    if mode == "bilinear":
        indices = torch.stack([base, (base + 1).clamp(max=input_size - 1)], -1)
        return indices, torch.stack([1 - fraction, fraction], -1)
    a = CUBIC_COEFFICIENT
    near, far = torch.stack([fraction, 1 - fraction], -1), torch.stack([fraction + 1, 2 - fraction], -1)
    near_weights = ((a + 2) * near - (a + 3)) * near * near + 1
    far_weights = ((a * far - 5 * a) * far + 8 * a) * far - 4 * a
    weights = torch.stack([far_weights[:, 0], near_weights[:, 0], near_weights[:, 1], far_weights[:, 1]], -1)
    indices = (base[:, None] + torch.arange(-1, 3)).clamp(0, input_size - 1)
    return indices, weights


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


__all__ = [
    "INTERPOLATION_MODES",
    "resized_crops",
    "resized_views",
    "short_side_resize",
    "short_side_resized_size",
    "spatial_crop_offsets",
]
