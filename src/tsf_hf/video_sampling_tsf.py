"""Frame sampling for the TimeSformer video processor: which source frames make each clip (see
`video_processing_tsf` for the strategies)."""

import math

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
    frame_times: np.ndarray | None = None,
) -> np.ndarray:
    """Frame indices of `num_clips` clips of `num_frames` frames, shape `(num_clips, num_frames)`, all within
    `[0, num_source_frames - 1]` (see the module docstring for each strategy). `train=True` draws one random clip
    (random dense start, random frame per segment) with `generator`. `frame_times` (seconds of each frame from the
    first, as decoders read them) lets dense clips of a variable-frame-rate video span their time: positions are then
    times, and each index is the frame shown at its time."""
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"sampling_strategy must be one of {SAMPLING_STRATEGIES}, got {strategy!r}")
    if clip_alignment not in CLIP_ALIGNMENTS:
        raise ValueError(f"clip_alignment must be one of {CLIP_ALIGNMENTS}, got {clip_alignment!r}")
    if num_source_frames < 1 or num_frames < 1 or num_clips < 1 or sampling_rate < 1:
        raise ValueError(
            f"need at least one source frame, frame, clip and a sampling rate >= 1, got num_source_frames="
            f"{num_source_frames}, num_frames={num_frames}, num_clips={num_clips}, sampling_rate={sampling_rate}"
        )
    for label, rate in (("source_fps", source_fps), ("target_fps", target_fps)):
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"{label} must be a positive frame rate, got {rate!r}")
    if frame_times is not None and len(frame_times) != num_source_frames:
        raise ValueError(f"got {len(frame_times)} frame_times for {num_source_frames} frames")
    if train:
        num_clips = 1
    if strategy == "dense":
        fps = source_fps or target_fps
        starts_in = _frame_starts(frame_times, fps)
        length = num_source_frames if starts_in is None else starts_in[-1] + 1
        span = num_frames * sampling_rate * fps / target_fps
        delta = max(length - span, 0.0)
        if train:
            starts = [float(torch.rand((), generator=generator)) * delta]
        elif clip_alignment == "center":
            starts = [delta * (2 * clip + 1) / (2 * num_clips) for clip in range(num_clips)]
        else:
            starts = [delta * clip / num_clips for clip in range(num_clips)]
        positions = np.stack([np.linspace(start, start + span - 1, num_frames) for start in starts])
        if starts_in is not None:  # the frame shown at each position: the last one starting at or before it
            positions = np.searchsorted(starts_in, positions, side="right") - 1
        return np.clip(positions, 0, num_source_frames - 1).astype(np.int64)
    return _split_clip_indices(num_source_frames, num_frames, strategy, num_clips, train, generator)


def _frame_starts(frame_times: np.ndarray | None, fps: float) -> np.ndarray | None:
    """When each frame starts, counted in frames at `fps`; `None` where frames may simply be counted (no times given,
    or every frame within half a frame of its rank: a constant frame rate)."""
    if frame_times is None:
        return None
    starts = np.asarray(frame_times, dtype=np.float64) * fps
    return None if np.abs(starts - np.arange(len(starts))).max() < 0.5 else starts


def _split_clip_indices(
    num_source_frames: int,
    num_frames: int,
    strategy: str,
    num_clips: int,
    train: bool,
    generator: torch.Generator | None,
) -> np.ndarray:
    """Uniform and segment sampling: the video split into `num_clips` equal consecutive parts, each sampled alike."""
    clips = []
    for clip in range(num_clips):
        first = clip * num_source_frames // num_clips
        length = max((clip + 1) * num_source_frames // num_clips - first, 1)
        if strategy == "uniform" and not train:
            offsets = np.arange(num_frames) * length // num_frames
        elif strategy == "uniform":
            # training jitter: a random frame within each of the T equal parts
            offsets = np.array(
                [
                    int(k * length / num_frames + float(torch.rand((), generator=generator)) * (length / num_frames))
                    for k in range(num_frames)
                ]
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
