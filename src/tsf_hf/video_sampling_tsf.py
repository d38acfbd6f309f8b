"""Frame sampling for the TimeSformer video processor: which source frames make each clip (see
`video_processing_tsf` for the strategies)."""

import numpy as np
import torch


SAMPLING_STRATEGIES = ("uniform", "dense", "segment")
CLIP_ALIGNMENTS = ("center", "start")


def sample_clip_indices(
    num_source_frames: int,
    num_frames: int,
    strategy: str = "uniform",
    num_clips: int = 1,
    source_fps: float | None = None,
    target_fps: float = 30.0,
    sampling_rate: int = 32,
    clip_alignment: str = "center",
    train: bool = False,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Frame indices of `num_clips` clips of `num_frames` frames, shape `(num_clips, num_frames)`, all within
    `[0, num_source_frames - 1]` (see the module docstring for each strategy). `train=True` draws one random clip
    (random dense start, random frame per segment) with `generator`."""
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"sampling_strategy must be one of {SAMPLING_STRATEGIES}, got {strategy!r}")
    if clip_alignment not in CLIP_ALIGNMENTS:
        raise ValueError(f"clip_alignment must be one of {CLIP_ALIGNMENTS}, got {clip_alignment!r}")
    if num_source_frames < 1 or num_frames < 1 or num_clips < 1:
        raise ValueError(
            f"need at least one source frame, frame and clip, got num_source_frames={num_source_frames}, "
            f"num_frames={num_frames}, num_clips={num_clips}"
        )
    if train:
        num_clips = 1

    def uniform_random(high: float) -> float:
        return float(torch.rand((), generator=generator)) * high

    if strategy == "dense":
        fps = source_fps or target_fps
        span = num_frames * sampling_rate * fps / target_fps
        delta = max(num_source_frames - span, 0.0)
        if train:
            starts = [uniform_random(delta)]
        elif clip_alignment == "center":
            starts = [delta * (2 * clip + 1) / (2 * num_clips) for clip in range(num_clips)]
        else:
            starts = [delta * clip / num_clips for clip in range(num_clips)]
        clips = [np.linspace(start, start + span - 1, num_frames) for start in starts]
        return np.clip(np.stack(clips), 0, num_source_frames - 1).astype(np.int64)

    clips = []
    for clip in range(num_clips):
        first = clip * num_source_frames // num_clips
        length = max((clip + 1) * num_source_frames // num_clips - first, 1)
        if strategy == "uniform" and not train:
            offsets = np.arange(num_frames) * length // num_frames
        elif strategy == "uniform":
            # training jitter: a random frame within each of the T equal parts
            offsets = np.array(
                [int(k * length / num_frames + uniform_random(length / num_frames)) for k in range(num_frames)]
            )
        else:
            segment = (length - 1) / num_frames
            bounds = [int(np.round(segment * k)) for k in range(num_frames + 1)]
            if train:
                offsets = np.array(
                    [
                        int(torch.randint(bounds[k], bounds[k + 1] + 1, (), generator=generator))
                        for k in range(num_frames)
                    ]
                )
            else:
                offsets = np.array([(bounds[k] + bounds[k + 1]) // 2 for k in range(num_frames)])
        clips.append(np.clip(first + offsets, 0, num_source_frames - 1))
    return np.stack(clips).astype(np.int64)


__all__ = ["CLIP_ALIGNMENTS", "SAMPLING_STRATEGIES", "sample_clip_indices"]
