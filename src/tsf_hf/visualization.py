"""Attention maps of a video: space-time attention rollout and the temporal attention of the divided scheme, drawn
over the frames (upscaled, labelled, with a colour scale and the model's prediction) as a PNG or an animated GIF."""

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .atomic_files import write_atomically
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
    if not -len(attentions) <= layer < len(attentions):
        raise ValueError(f"layer must be in [{-len(attentions)}, {len(attentions)}), got {layer}")
    if "time" not in attentions[layer]:
        raise ValueError(f"temporal attention needs a scheme with a 'time' step, got steps {list(attentions[layer])}")
    query_frame = frames // 2 if query_frame is None else query_frame
    if not 0 <= query_frame < frames:
        raise ValueError(f"query_frame must be in [0, {frames}), got {query_frame}")
    weights = attentions[layer]["time"].float().mean(1).view(-1, rows, cols, frames, frames)
    return weights[:, :, :, query_frame].permute(0, 3, 1, 2)


DEFAULT_PERCENTILES = (2.0, 98.0)
"""Percentiles of the attention values drawn as the two ends of the colour scale (values beyond them are clipped)."""

LAYOUTS = ("overlay", "side_by_side")
"""How each frame is drawn: the attention over the frame, or the frame and that overlay side by side."""

# The heat scale's colours at 0, 1/4, 1/2, 3/4 and 1 (matplotlib's "inferno" at those points), interpolated between.
_HEAT_STOPS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)
_BACKGROUND = (255, 255, 255)
_INK = (25, 25, 25)


def heat_colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to RGB uint8 on the heat scale (black, purple, red, orange, pale yellow)."""
    positions = np.clip(np.asarray(values, dtype=np.float32), 0, 1) * (len(_HEAT_STOPS) - 1)
    lower = np.minimum(positions.astype(np.int64), len(_HEAT_STOPS) - 2)
    fraction = (positions - lower)[..., None]
    colours = (1 - fraction) * _HEAT_STOPS[lower] + fraction * _HEAT_STOPS[lower + 1]
    return colours.round().astype(np.uint8)


def contrast_limits(
    maps: np.ndarray | torch.Tensor, percentiles: tuple[float, float] = DEFAULT_PERCENTILES
) -> tuple[float, float]:
    """The attention values drawn as the two ends of the colour scale: the `(low, high)` percentiles of all of
    `maps`, so that a few extreme values (which would set the maximum) do not wash out the rest."""
    if len(percentiles) != 2 or not 0 <= percentiles[0] < percentiles[1] <= 100:
        raise ValueError(f"percentiles must be (low, high) with 0 <= low < high <= 100, got {tuple(percentiles)}")
    low, high = np.percentile(np.asarray(maps, dtype=np.float64), percentiles)
    return float(low), float(high)


def scale_to_limits(maps: np.ndarray | torch.Tensor, limits: tuple[float, float]) -> np.ndarray:
    """`maps` mapped linearly from `limits` to [0, 1] and clipped; all zeros when the limits coincide (a flat map has
    nothing to show)."""
    low, high = limits
    maps = np.asarray(maps, dtype=np.float32)
    if high <= low:
        return np.zeros_like(maps)
    return np.clip((maps - low) / (high - low), 0, 1)


def _blend(frame: np.ndarray, heat: np.ndarray, alpha: float) -> Image.Image:
    """`frame` `(H, W, 3)` uint8 in grey (so that every colour comes from the scale) under `heat` `(rows, cols)` in
    [0, 1], resized to the frame (bilinear) and drawn in the heat colours with weight `alpha`."""
    height, width = frame.shape[:2]
    heat = Image.fromarray(np.asarray(heat, dtype=np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    grey = np.asarray(Image.fromarray(frame).convert("L"), dtype=np.float32)[..., None]
    blended = (1 - alpha) * grey + alpha * heat_colours(np.asarray(heat))
    return Image.fromarray(blended.round().astype(np.uint8))


def _check_maps(frames: np.ndarray, maps: np.ndarray | torch.Tensor, alpha: float) -> np.ndarray:
    """`maps` as float32 after checking frames, maps and `alpha` fit together."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (T, H, W, 3) uint8, got shape {frames.shape} {frames.dtype}")
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) != len(frames):
        raise ValueError(f"expected maps (T, rows, cols) for {len(frames)} frames, got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError(f"attention maps must be finite, got {np.count_nonzero(~np.isfinite(maps))} NaN or inf values")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return maps


def overlay_attention(
    frames: np.ndarray,
    maps: np.ndarray | torch.Tensor,
    alpha: float = 0.6,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> list[Image.Image]:
    """Draws attention maps over frames, at the frames' size.

    Args:
        frames: `(T, H, W, 3)` uint8 RGB frames.
        maps: `(T, rows, cols)` attention maps, scaled together between their `percentiles` (`contrast_limits`) and
            resized (bilinear) to the frames.
        alpha: weight of the heat colours over the frames (shown in grey).
    """
    maps = _check_maps(frames, maps, alpha)
    heat = scale_to_limits(maps, contrast_limits(maps, percentiles))
    return [_blend(frame, frame_heat, alpha) for frame, frame_heat in zip(np.asarray(frames), heat)]


class _Style:
    """Sizes of a figure's parts, from the size of its frames."""

    def __init__(self, frame_height: int):
        self.font_size = min(max(round(frame_height / 16), 12), 28)
        self.font = ImageFont.load_default(size=self.font_size)
        self.title_font = ImageFont.load_default(size=self.font_size + 2)
        self.line = self.font_size + 6
        self.title_line = self.font_size + 8
        self.margin = self.font_size
        self.gap = max(self.font_size // 2, 4)


def _fit(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """`text`, shortened with "..." to fit in `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """`text` broken into lines of at most `width` pixels at spaces (a word too long alone is shortened)."""
    lines = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_fit(word, font, width))
    return lines


def _tick_labels(values: list[float]) -> list[str]:
    """`values` with the fewest significant digits (3 to 6) that tell different values apart."""
    for digits in range(3, 7):
        labels = [f"{value:.{digits}g}" for value in values]
        if len(set(labels)) == len(set(values)):
            break
    return labels


def _legend(width: int, limits: tuple[float, float], label: str, style: _Style) -> Image.Image:
    """The colour scale: `label`, a bar of the heat colours, and the attention values at its ends and middle."""
    bar_width = min(width, 24 * style.font_size)
    label_lines = _wrap(label, style.font, width)
    bar_top = len(label_lines) * style.line
    legend = Image.new("RGB", (width, bar_top + 2 * style.line), _BACKGROUND)
    draw = ImageDraw.Draw(legend)
    for index, line in enumerate(label_lines):
        draw.text((0, index * style.line), line, fill=_INK, font=style.font)
    bar = heat_colours(np.linspace(0, 1, bar_width))
    legend.paste(Image.fromarray(np.repeat(bar[None], style.font_size, axis=0)), (0, bar_top))
    low, high = limits
    ticks = _tick_labels([low, (low + high) / 2, high])
    for text, x, anchor in zip(ticks, (0, bar_width // 2, bar_width), ("la", "ma", "ra")):
        draw.text((x, bar_top + style.font_size + 2), text, fill=_INK, font=style.font, anchor=anchor)
    return legend


def render_attention(
    frames: np.ndarray,
    maps: np.ndarray | torch.Tensor,
    *,
    alpha: float = 0.6,
    layout: str = "overlay",
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    min_frame_size: int = 224,
    frame_labels: Sequence[str] | None = None,
    title: Sequence[str] = (),
    scale_label: str = "attention",
    columns: int | None = None,
    animated: bool = False,
) -> list[Image.Image]:
    """Draws attention maps over frames as a figure: `title` lines, each frame upscaled (nearest, by a whole factor)
    until its short side is at least `min_frame_size` with its label above it (`frame_labels`, default `frame t`),
    and a colour scale naming the attention values at its ends (the maps' `percentiles`, `contrast_limits`).

    Args:
        frames: `(T, H, W, 3)` uint8 RGB frames.
        maps: `(T, rows, cols)` attention maps.
        alpha: weight of the heat colours over the frames (shown in grey).
        layout: `"overlay"` (the attention over each frame) or `"side_by_side"` (each frame, then its overlay).
        columns: frames per row (default: 4 with `"overlay"`, 2 with `"side_by_side"`).
        animated: one figure per frame (the frames of a GIF) instead of one with every frame.

    Returns:
        The figure, or with `animated` one figure per frame, all of one size.
    """
    maps = _check_maps(frames, maps, alpha)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if frame_labels is not None and len(frame_labels) != len(frames):
        raise ValueError(f"expected {len(frames)} frame labels, got {len(frame_labels)}")
    if min_frame_size < 1:
        raise ValueError(f"min_frame_size must be >= 1, got {min_frame_size}")
    limits = contrast_limits(maps, percentiles)
    heat = scale_to_limits(maps, limits)
    height, width = np.asarray(frames).shape[1:3]
    factor = max(1, math.ceil(min_frame_size / min(height, width)))
    height, width = height * factor, width * factor
    style = _Style(height)
    panels = []
    for frame, frame_heat in zip(np.asarray(frames), heat):
        frame = np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.NEAREST))
        overlay = _blend(frame, frame_heat, alpha)
        if layout == "side_by_side":
            pair = Image.new("RGB", (2 * width + style.gap, height), _BACKGROUND)
            pair.paste(Image.fromarray(frame), (0, 0))
            pair.paste(overlay, (width + style.gap, 0))
            overlay = pair
        panels.append(overlay)
    labels = list(frame_labels) if frame_labels is not None else [f"frame {index}" for index in range(len(panels))]
    groups = [[index] for index in range(len(panels))] if animated else [list(range(len(panels)))]
    if columns is None:
        columns = 2 if layout == "side_by_side" else 4
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    return [
        _compose([panels[i] for i in group], [labels[i] for i in group], title, limits, scale_label, columns, style)
        for group in groups
    ]


def _compose(
    panels: list[Image.Image],
    labels: list[str],
    title: Sequence[str],
    limits: tuple[float, float],
    scale_label: str,
    columns: int,
    style: _Style,
) -> Image.Image:
    """One figure: title lines, the panels in a grid of `columns` with a label above each, the colour scale."""
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    panel_width, panel_height = panels[0].size
    cell_height = style.line + panel_height
    grid_width = columns * panel_width + (columns - 1) * style.gap
    width = grid_width + 2 * style.margin
    title_lines = [line for text in title for line in _wrap(text, style.title_font, grid_width)]
    grid_top = style.margin + len(title_lines) * style.title_line + (style.gap if title_lines else 0)
    legend_top = grid_top + rows * cell_height + (rows - 1) * style.gap + style.gap
    legend = _legend(grid_width, limits, scale_label, style)
    figure = Image.new("RGB", (width, legend_top + legend.height + style.margin), _BACKGROUND)
    draw = ImageDraw.Draw(figure)
    for index, line in enumerate(title_lines):
        position = (style.margin, style.margin + index * style.title_line)
        draw.text(position, line, fill=_INK, font=style.title_font)
    for index, (panel, label) in enumerate(zip(panels, labels)):
        left = style.margin + (index % columns) * (panel_width + style.gap)
        top = grid_top + (index // columns) * (cell_height + style.gap)
        draw.text((left, top), _fit(label, style.font, panel_width), fill=_INK, font=style.font)
        figure.paste(panel, (left, top + style.line))
    figure.paste(legend, (style.margin, legend_top))
    return figure


def _image_format(path: str) -> str:
    """The PIL format that writes `path`, from its suffix."""
    suffix = os.path.splitext(path)[1].lower()
    image_format = Image.registered_extensions().get(suffix)
    if image_format is None or image_format not in Image.SAVE:
        raise ValueError(f"output path must end in an image suffix (.png, .gif, .jpg, ...), got '{path}'")
    return image_format


def save_overlay(images: list[Image.Image], path: str | os.PathLike, frame_duration_ms: int = 250) -> None:
    """Saves images as an animated GIF (`.gif`: one frame each) or side by side in one image (other suffixes; one
    image is saved as it is). The file is written under a temporary name and renamed into place."""
    path = os.fspath(path)
    image_format = _image_format(path)
    if image_format == "GIF":
        image, options = (
            images[0],
            {"save_all": True, "append_images": images[1:], "duration": frame_duration_ms, "loop": 0},
        )
    else:
        image = Image.new(
            "RGB", (sum(image.width for image in images), max(image.height for image in images)), _BACKGROUND
        )
        left = 0
        for part in images:
            image.paste(part, (left, 0))
            left += part.width
        options = {}
    write_atomically(path, lambda file: image.save(file, format=image_format, **options))


def _prediction(model: torch.nn.Module, outputs: Any) -> str | None:
    """`Predicted: label (score)` of a model with a classification head (softmax score; sigmoid for multi-label), or
    `Predicted value: v` of a regression head."""
    logits = getattr(outputs, "logits", None)
    if logits is None:
        return None
    logits = logits[0].float()
    problem_type = model.config.problem_type
    if problem_type == "regression" or (problem_type is None and len(logits) == 1):  # as transformers' loss reads it
        return "Predicted value: " + ", ".join(f"{value:.3g}" for value in logits.tolist())
    multi_label = problem_type == "multi_label_classification"
    scores = logits.sigmoid() if multi_label else logits.softmax(-1)
    index = int(scores.argmax())
    return f"Predicted: {model.config.id2label.get(index, str(index))} ({float(scores[index]):.2f})"


def _frame_labels(metadata: Any, num_frames: int) -> list[str]:
    """`frame i, s.ss s` for each input frame: its index in the source video and, when the frame rate is known, its
    time."""
    indices = np.asarray(metadata.frames_indices).reshape(-1)[:num_frames]
    if metadata.fps:
        return [f"frame {index}, {index / metadata.fps:.2f} s" for index in indices]
    return [f"frame {index}" for index in indices]


@torch.no_grad()
def visualize_attention(
    model: torch.nn.Module,
    video_processor: TsfProcessingMixin,
    video: Any,
    output_path: str | os.PathLike,
    method: str = "rollout",
    layer: int = -1,
    query_frame: int | None = None,
    alpha: float = 0.6,
    *,
    layout: str = "overlay",
    min_frame_size: int = 224,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    show_prediction: bool = True,
    columns: int | None = None,
    frame_duration_ms: int = 250,
) -> torch.Tensor:
    """Processes one video (one centre view), runs `model` with `output_attentions`, and saves the attention drawn
    over the model's input frames to `output_path`: a figure with every frame (PNG or any other image suffix) or an
    animated GIF (`.gif`, one figure per frame), drawn by `render_attention` with the method in the title, the
    predicted label and its score (`show_prediction`, models with a classification head), each frame's index in
    the video and time (when the frame rate is known) and the colour scale.

    Args:
        model: `TsfModel` or `TsfForVideoClassification`.
        method: `"rollout"` (space-time attention rollout of the cls token) or `"temporal"` (the time step of
            `layer`, from `query_frame`; see `temporal_attention`).
        alpha, layout, min_frame_size, percentiles, columns: see `render_attention`.

    Returns:
        The maps drawn, `(frames, rows, cols)`.
    """
    if method not in ("rollout", "temporal"):
        raise ValueError(f"method must be 'rollout' or 'temporal', got {method!r}")
    output_path = os.fspath(output_path)
    _image_format(output_path)
    if isinstance(video, (str, os.PathLike)) and os.path.exists(output_path) and os.path.samefile(video, output_path):
        raise ValueError(f"output_path '{output_path}' is the input video; choose another file")
    one_view = {"num_temporal_clips": 1, "num_spatial_crops": 1}
    settings = video_processor.resolve_settings(**one_view)
    inputs = video_processor(video, **one_view, return_tensors="pt", return_metadata=True)
    pixel_values = inputs["pixel_values"]
    parameter = next(model.parameters())
    outputs = model(pixel_values=pixel_values.to(parameter.device, parameter.dtype), output_attentions=True)
    config = model.config
    patch_size = config.patch_size
    grid = (pixel_values.shape[1], pixel_values.shape[3] // patch_size, pixel_values.shape[4] // patch_size)
    labels = _frame_labels(inputs["video_metadata"][0], grid[0])
    if method == "rollout":
        maps = rollout_maps(attention_rollout(outputs.attentions, config, grid), grid)[0]
        title = [f"Attention rollout of the cls token ({config.attention_type}, {config.num_hidden_layers} layers)"]
        scale_label = "share of the cls token's attention"
    else:
        maps = temporal_attention(outputs.attentions, grid, layer, query_frame)[0]
        query = grid[0] // 2 if query_frame is None else query_frame
        labels[query] += " (query)"
        layer_number = range(1, config.num_hidden_layers + 1)[layer]
        title = [f"Temporal attention of layer {layer_number} of {config.num_hidden_layers}, from the query frame"]
        scale_label = "attention weight from the query frame"
    prediction = _prediction(model, outputs) if show_prediction else None
    if prediction is not None:
        title.append(prediction)
    frames = video_processor.frames_of_views(pixel_values[0], settings).numpy()
    figures = render_attention(
        frames,
        maps.float().cpu().numpy(),
        alpha=alpha,
        layout=layout,
        percentiles=percentiles,
        min_frame_size=min_frame_size,
        frame_labels=labels,
        title=title,
        scale_label=scale_label,
        columns=columns,
        animated=_image_format(output_path) == "GIF",
    )
    save_overlay(figures, output_path, frame_duration_ms)
    return maps.cpu()


__all__ = [
    "DEFAULT_PERCENTILES",
    "LAYOUTS",
    "attention_rollout",
    "contrast_limits",
    "heat_colours",
    "overlay_attention",
    "render_attention",
    "rollout_maps",
    "save_overlay",
    "scale_to_limits",
    "temporal_attention",
    "visualize_attention",
]
