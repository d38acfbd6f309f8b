"""Classifying videos of any length: evenly spaced clips, decoded and classified a batch at a time, logits averaged."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .video_processing_tsf import TsfProcessingMixin, source_fps


@dataclass
class LongVideoPrediction:
    """Result of `classify_long_video`.

    Attributes:
        logits (`torch.Tensor` of shape `(num_labels,)`): mean of the logits of every clip and spatial crop.
        clip_logits (`torch.Tensor` of shape `(num_clips, num_labels)`): per clip, averaged over its crops.
        clip_indices (`np.ndarray` of shape `(num_clips, num_frames)`): the source frames of each clip.
        num_source_frames (`int`): frames in the video.
        fps (`float` or `None`): the frame rate sampling used (the video's, or the one `video_metadata` gave).
    """

    logits: torch.Tensor
    clip_logits: torch.Tensor
    clip_indices: np.ndarray
    num_source_frames: int
    fps: float | None

    def top_k(self, id2label: dict[int, str], k: int = 5) -> list[dict[str, Any]]:
        """The `k` best labels with softmax scores, like the pipeline's output."""
        scores, ids = self.logits.softmax(-1).topk(min(k, self.logits.numel()))
        return [{"label": id2label[int(i)], "score": float(s)} for s, i in zip(scores, ids)]


@torch.no_grad()
def classify_long_video(
    model: torch.nn.Module,
    video_processor: TsfProcessingMixin,
    video: Any,
    num_clips: int = 48,
    clips_per_batch: int = 4,
    progress: bool = True,
    **processor_kwargs: Any,
) -> LongVideoPrediction:
    """Classifies a video of any length by covering it with `num_clips` evenly spaced clips and averaging logits.

    Clip positions follow the processor's `sampling_strategy` with `num_temporal_clips=num_clips` ("dense": clips
    of `num_frames x sampling_rate` frames at evenly spaced starts; "uniform"/"segment": the video split into
    `num_clips` equal parts, each sampled alike), so the result equals the processor's multi-clip output averaged
    by the model. Only the frames of one batch of `clips_per_batch` clips are decoded and held at a time, so memory
    does not grow with the video's length.

    Args:
        model: a `TsfForVideoClassification` (anything returning `.logits` for `(B, T, C, H, W)` input).
        video_processor: a `TsfVideoProcessor` or `TsfImageProcessor` (its settings: frames, sampling, crops,
            normalisation; frames are always sampled).
        video: a path, file object, bytes, `{"path", "bytes"}` row or frames (see `TsfVideoProcessor`).
        num_clips: clips covering the video.
        clips_per_batch: clips per forward pass (each holds `num_frames x num_spatial_crops` views).
        progress: show a tqdm progress bar over clips.
        processor_kwargs: overrides of the processor's settings (e.g. `num_frames`, `sampling_strategy`, or
            `video_metadata={"fps": ...}` for frames given as arrays).
    """
    if clips_per_batch < 1:
        raise ValueError(f"clips_per_batch must be >= 1, got {clips_per_batch}")
    settings = video_processor.resolve_settings(
        **{**processor_kwargs, "num_temporal_clips": num_clips, "do_sample_frames": True}
    )
    parameter = next(model.parameters())
    with video_processor.open_reader(video, settings) as reader:
        fps = source_fps(reader, settings["video_metadata"])
        indices = video_processor.clip_indices(reader.num_frames, fps, settings)
        clip_logits = []
        with tqdm(total=len(indices), desc="clips", unit="clip", disable=not progress) as bar:
            for first in range(0, len(indices), clips_per_batch):
                batch_indices = indices[first : first + clips_per_batch]
                views = video_processor.read_views(reader, batch_indices, settings)
                logits = model(pixel_values=views.to(device=parameter.device, dtype=parameter.dtype)).logits
                clip_logits.append(logits.float().view(len(batch_indices), -1, logits.shape[-1]).mean(1).cpu())
                del views
                bar.update(len(batch_indices))
    clip_logits = torch.cat(clip_logits)
    return LongVideoPrediction(
        logits=clip_logits.mean(0),
        clip_logits=clip_logits,
        clip_indices=indices,
        num_source_frames=reader.num_frames,
        fps=fps,
    )


__all__ = ["LongVideoPrediction", "classify_long_video"]
