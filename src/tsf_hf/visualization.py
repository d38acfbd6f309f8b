"""Attention maps of a video: space-time attention rollout and the temporal attention of the divided scheme, drawn
over the frames as an animated GIF or a PNG strip."""

import os
from typing import Any

import numpy as np
import torch
from PIL import Image

from .configuration_tsf import TsfConfig
from .grouping_tsf import STEP_GROUPINGS, TokenGrouper
from .video_processing_tsf import TsfProcessingMixin


def _step_matrix(weights: torch.Tensor, step: str, grid: tuple[int, int, int]) -> torch.Tensor:
    """One step's attention `(batch * groups, heads, tokens, tokens)` as a `(batch, 1 + P, 1 + P)` matrix over all
    tokens (cls, then P patch tokens patch-major / frame-minor), heads averaged, rows summing to 1. The cls row of a
    step that copies cls into every group is the mean over groups (as the model averages the cls updates); a step
    that leaves cls out keeps it in place."""
    grouper = TokenGrouper(STEP_GROUPINGS[step], *grid)
    num_patches = grid[0] * grid[1] * grid[2]
    dummy = num_patches + 1  # where padded tokens go; dropped below
    members = grouper.group(torch.arange(1, num_patches + 1, dtype=torch.float64).view(1, -1, 1))[..., 0].long()
    members = members.masked_fill(members == 0, dummy)
    if grouper.attends_cls:
        members = torch.cat([torch.zeros_like(members[:, :1]), members], dim=1)
    num_groups, num_tokens = members.shape
    weights = weights.float().mean(1).reshape(-1, num_groups, num_tokens, num_tokens)
    batch_size, size = weights.shape[0], num_patches + 2
    flat_index = (members[:, :, None] * size + members[:, None, :]).reshape(1, -1).expand(batch_size, -1)
    matrix = torch.zeros(batch_size, size * size).scatter_add_(1, flat_index, weights.reshape(batch_size, -1))
    matrix = matrix.view(batch_size, size, size)[:, :dummy, :dummy]
    if grouper.attends_cls:
        matrix[:, 0] /= num_groups
    else:
        matrix[:, 0, 0] = 1.0
    return matrix / matrix.sum(-1, keepdim=True)


def attention_rollout(
    attentions: tuple[dict[str, torch.Tensor], ...], config: TsfConfig, grid: tuple[int, int, int]
) -> torch.Tensor:
    """Attention rollout: how much the final cls token draws on each input token, through every attention step of
    every layer, each step counted as `(attention + identity) / 2` for its residual.

    Args:
        attentions: the model's `output_attentions` (one dict `{step: (batch * groups, heads, tokens, tokens)}` per
            layer).
        config: the model's config (the scheme decides the token layout).
        grid: `(frames, rows, cols)` of the input's patch grid.

    Returns:
        `(batch, 1 + frames * rows * cols)`: a distribution over cls then the patch tokens (patch-major,
        frame-minor). For schemes whose frames are independent sequences (`space_only`), per-frame rollouts averaged
        over frames, with the frames' cls tokens as entry 0.
    """
    frames, rows, cols = grid
    sequence_grid = config.scheme.sequence_grid(*grid)
    rollout = None
    for layer in reversed(attentions):
        for step in reversed(list(layer)):
            matrix = _step_matrix(layer[step], step, sequence_grid)
            matrix = 0.5 * matrix + 0.5 * torch.eye(matrix.shape[-1])
            rollout = matrix[:, 0] if rollout is None else torch.einsum("bi,bij->bj", rollout, matrix)
    sequences = config.scheme.sequences_per_clip(frames)
    if sequences > 1:  # one rollout per frame's sequence: average them, cls tokens together, patches in clip order
        per_frame = rollout.view(-1, sequences, 1 + rows * cols) / sequences
        cls = per_frame[..., 0].sum(1, keepdim=True)
        patches = per_frame[..., 1:].permute(0, 2, 1).reshape(per_frame.shape[0], -1)  # patch-major, frame-minor
        rollout = torch.cat([cls, patches], dim=1)
    return rollout


def rollout_maps(rollout: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """The patch part of `attention_rollout` as `(batch, frames, rows, cols)`, normalised to sum to 1 per video."""
    frames, rows, cols = grid
    maps = rollout[:, 1:].reshape(-1, rows, cols, frames).permute(0, 3, 1, 2)
    return maps / maps.sum(dim=(1, 2, 3), keepdim=True)


def temporal_attention(
    attentions: tuple[dict[str, torch.Tensor], ...],
    grid: tuple[int, int, int],
    layer: int = -1,
    query_frame: int | None = None,
) -> torch.Tensor:
    """Temporal attention of one layer (schemes with a `time` step: divided, axial): for each patch position, how
    frame `query_frame` (default: the middle frame) spreads its attention over the frames at that position.

    Returns:
        `(batch, frames, rows, cols)`, heads averaged; sums to 1 over frames at every position.
    """
    frames, rows, cols = grid
    if "time" not in attentions[layer]:
        raise ValueError(f"temporal attention needs a scheme with a 'time' step, got steps {list(attentions[layer])}")
    query_frame = frames // 2 if query_frame is None else query_frame
    if not 0 <= query_frame < frames:
        raise ValueError(f"query_frame must be in [0, {frames}), got {query_frame}")
    weights = attentions[layer]["time"].float().mean(1).view(-1, rows, cols, frames, frames)
    return weights[:, :, :, query_frame].permute(0, 3, 1, 2)


def _heat_colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to RGB uint8 on a black-red-yellow-white scale."""
    channels = [np.clip(3 * values - offset, 0, 1) for offset in (0, 1, 2)]
    return (np.stack(channels, axis=-1) * 255).astype(np.uint8)


def overlay_attention(frames: np.ndarray, maps: np.ndarray | torch.Tensor, alpha: float = 0.5) -> list[Image.Image]:
    """Draws attention maps over frames.

    Args:
        frames: `(T, H, W, 3)` uint8 RGB frames.
        maps: `(T, rows, cols)` non-negative maps, scaled together by their maximum and resized (bilinear) to the
            frames.
        alpha: weight of the heat colours.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) != len(frames):
        raise ValueError(f"expected maps (T, rows, cols) for {len(frames)} frames, got shape {maps.shape}")
    maps = maps / max(float(maps.max()), 1e-12)
    height, width = frames.shape[1:3]
    images = []
    for frame, heat in zip(frames, maps):
        heat = np.asarray(Image.fromarray(heat).resize((width, height), Image.Resampling.BILINEAR))
        blended = (1 - alpha) * frame.astype(np.float32) + alpha * _heat_colours(np.clip(heat, 0, 1))
        images.append(Image.fromarray(blended.round().astype(np.uint8)))
    return images


def save_overlay(images: list[Image.Image], path: str | os.PathLike, frame_duration_ms: int = 250) -> None:
    """Saves overlays as an animated GIF (`.gif`: one frame each) or side by side in one image (other suffixes)."""
    path = os.fspath(path)
    if path.lower().endswith(".gif"):
        images[0].save(path, save_all=True, append_images=images[1:], duration=frame_duration_ms, loop=0)
        return
    strip = Image.new("RGB", (sum(image.width for image in images), images[0].height))
    left = 0
    for image in images:
        strip.paste(image, (left, 0))
        left += image.width
    strip.save(path)


@torch.no_grad()
def visualize_attention(
    model: torch.nn.Module,
    video_processor: TsfProcessingMixin,
    video: Any,
    output_path: str | os.PathLike,
    method: str = "rollout",
    layer: int = -1,
    query_frame: int | None = None,
    alpha: float = 0.5,
) -> torch.Tensor:
    """Processes one video (one centre view), runs `model` with `output_attentions`, and saves the attention drawn
    over the model's input frames to `output_path` (`.gif` animated, else a PNG strip).

    Args:
        model: `TsfModel` or `TsfForVideoClassification`.
        method: `"rollout"` (space-time attention rollout of the cls token) or `"temporal"` (the time step of
            `layer`, from `query_frame`; see `temporal_attention`).

    Returns:
        The maps drawn, `(frames, rows, cols)`.
    """
    if method not in ("rollout", "temporal"):
        raise ValueError(f"method must be 'rollout' or 'temporal', got {method!r}")
    one_view = {"num_temporal_clips": 1, "num_spatial_crops": 1}
    settings = video_processor.resolve_settings(**one_view)
    pixel_values = video_processor(video, **one_view, return_tensors="pt")["pixel_values"]
    parameter = next(model.parameters())
    outputs = model(pixel_values=pixel_values.to(parameter.device, parameter.dtype), output_attentions=True)
    patch_size = model.config.patch_size
    grid = (pixel_values.shape[1], pixel_values.shape[3] // patch_size, pixel_values.shape[4] // patch_size)
    if method == "rollout":
        maps = rollout_maps(attention_rollout(outputs.attentions, model.config, grid), grid)[0]
    else:
        maps = temporal_attention(outputs.attentions, grid, layer, query_frame)[0]
    frames = video_processor.frames_of_views(pixel_values[0], settings).numpy()
    save_overlay(overlay_attention(frames, maps.cpu().numpy(), alpha), output_path)
    return maps.cpu()


__all__ = [
    "attention_rollout",
    "overlay_attention",
    "rollout_maps",
    "save_overlay",
    "temporal_attention",
    "visualize_attention",
]
