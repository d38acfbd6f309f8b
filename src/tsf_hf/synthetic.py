"""A small built-in video dataset whose labels can only be told from the order of the frames.

Each video shows a noise-textured square moving in a straight line over a noisy background of contrasting
brightness, in one of four directions (`right`, `left`, `down`, `up`). A `left` video is drawn exactly as a
`right` video played backwards (and `up` as `down` backwards), so the frames of a video, taken as an unordered
set or looked at one at a time without knowing when they were shown, carry no information about the direction: a
model blind to frame order cannot beat 50% accuracy, and only a model that uses the order can reach 100%.

The videos are written as H.264 mp4 files (PyAV) in the `videofolder` layout that `datasets.load_dataset`
reads: `<root>/<split>/<label>/<index>.mp4`.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

GENERATOR_VERSION = 2
"""Bumped whenever the generator's output changes, so that cached copies are not reused."""

DIRECTIONS = ("right", "left", "down", "up")
"""Class names; `left` is `right` reversed in time and `up` is `down` reversed."""

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class MovingSquareConfig:
    """Parameters of the moving-square dataset.

    Args:
        num_train (`int`): training videos (spread evenly over the four directions).
        num_validation (`int`): validation videos.
        num_test (`int`): held-out test videos.
        num_frames (`int`): frames per video.
        size (`int`): frame height and width in pixels.
        square_size (`tuple[int, int]`): smallest and largest side of the square, in pixels.
        speed (`tuple[float, float]`): slowest and fastest motion, in pixels per frame.
        fps (`int`): frame rate written into the mp4 files.
        crf (`int`): libx264 constant rate factor; 0 (lossless) makes the decoded frames exactly reproducible (x264's
            lossy decisions are not always the same from run to run) and keeps the colours of 32x32 frames.
        seed (`int`): seed of the whole dataset; the same seed gives the same videos.
    """

    num_train: int = 4000
    num_validation: int = 1000
    num_test: int = 200
    num_frames: int = 8
    size: int = 32
    square_size: tuple[int, int] = (7, 10)
    speed: tuple[float, float] = (2.0, 3.0)
    fps: int = 8
    crf: int = 0
    seed: int = 0

    def __post_init__(self):
        for name in ("num_train", "num_validation", "num_test"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (motion needs two frames), got {self.num_frames}")
        low_side, high_side = self.square_size
        if not 1 <= low_side <= high_side:
            raise ValueError(f"square_size must be (low, high) with 1 <= low <= high, got {self.square_size}")
        low_speed, high_speed = self.speed
        if not 0 < low_speed <= high_speed:
            raise ValueError(f"speed must be (low, high) with 0 < low <= high, got {self.speed}")
        travel = int(np.ceil(high_speed * (self.num_frames - 1)))
        if high_side + travel > self.size:
            raise ValueError(
                f"size must hold the longest path (square {high_side} + travel {travel} px), got {self.size}"
            )
        if self.size % 2:
            raise ValueError(f"size must be even (H.264 with 4:4:4 chroma still needs even sizes), got {self.size}")

    def split_sizes(self) -> dict[str, int]:
        """Number of videos of each split."""
        return {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}

    def fingerprint(self) -> str:
        """Short hash of the generator version and every parameter; names the cache folder."""
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _contrasting_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background and a square colour: one dark (every channel in [20, 90]) and one bright ([160, 240]), the
    square bright or dark with equal chance. A fixed contrast sign per channel pair lets a small model find the
    square in a few hundred steps; colours merely far apart in RGB made it take far longer."""
    dark, bright = rng.uniform(20, 90, size=3), rng.uniform(160, 240, size=3)
    return (dark, bright) if rng.random() < 0.5 else (bright, dark)


def render_moving_square(direction: str, rng: np.random.Generator, config: MovingSquareConfig) -> np.ndarray:
    """Renders one video of the given direction as uint8 frames of shape `(num_frames, size, size, 3)`.

    The path is drawn for a rightward (or downward) motion and reversed in time for `left` (or `up`), so the two
    directions of an axis have exactly the same distribution of frames up to their order.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    size, num_frames = config.size, config.num_frames
    side = int(rng.integers(config.square_size[0], config.square_size[1] + 1))
    speed = float(rng.uniform(*config.speed))
    travel = speed * (num_frames - 1)
    start = rng.uniform(0, size - side - travel)
    along = np.round(start + speed * np.arange(num_frames)).astype(int)
    across = int(rng.integers(0, size - side + 1))

    background_colour, square_colour = _contrasting_colours(rng)
    background = background_colour + rng.normal(0, 12, size=(size, size, 3))
    texture = square_colour + rng.normal(0, 20, size=(side, side, 3))
    frames = np.empty((num_frames, size, size, 3), dtype=np.float64)
    for index, position in enumerate(along):
        frame = background + rng.normal(0, 6, size=(size, size, 3))
        if direction in ("right", "left"):
            frame[across : across + side, position : position + side] = texture
        else:
            frame[position : position + side, across : across + side] = texture
        frames[index] = frame
    if direction in ("left", "up"):
        frames = frames[::-1]
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, crf: int = 0) -> None:
    """Writes uint8 frames `(T, H, W, 3)` to an H.264 mp4 with 4:4:4 chroma (so small frames keep their colours);
    with `crf=0` (lossless) the decoded frames differ from `frames` only by the RGB/YUV rounding."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        # one thread: x264's frame and lookahead threads make the bytes depend on timing
        stream.options = {"crf": str(crf), "x264-params": "threads=1:lookahead-threads=1"}
        stream.thread_type, stream.thread_count = "NONE", 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decodes every frame of a video file into uint8 `(T, H, W, 3)` RGB."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def default_cache_dir() -> Path:
    """`$TSF_HF_CACHE`, else `$XDG_CACHE_HOME/tsf_hf`, else `~/.cache/tsf_hf`."""
    if "TSF_HF_CACHE" in os.environ:
        return Path(os.environ["TSF_HF_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tsf_hf"


def generate_moving_square_dataset(
    root: str | os.PathLike | None = None, config: MovingSquareConfig | None = None, progress: bool = False
) -> Path:
    """Writes the moving-square dataset in `videofolder` layout and returns its folder.

    The folder is `<root>/moving_square-<fingerprint>` (`root` defaults to `default_cache_dir()/datasets`), keyed
    by the generator version and every parameter; a complete copy already there is reused as it is. Videos are
    written to a temporary folder first and moved into place when complete, so an interrupted run leaves nothing
    that looks finished. Video `i` of a split depends only on the seed, the split and `i`.
    """
    config = config or MovingSquareConfig()
    root = Path(root) if root is not None else default_cache_dir() / "datasets"
    target = root / f"moving_square-{config.fingerprint()}"
    if (target / "dataset_info.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".moving_square-", dir=root))
    try:
        total = sum(config.split_sizes().values())
        bar = _progress_bar(total, "Generating moving-square videos") if progress else None
        for split_index, (split, count) in enumerate(config.split_sizes().items()):
            for index in range(count):
                direction = DIRECTIONS[index % len(DIRECTIONS)]
                rng = np.random.default_rng([config.seed, split_index, index])
                folder = staging / split / direction
                folder.mkdir(parents=True, exist_ok=True)
                frames = render_moving_square(direction, rng, config)
                write_video(folder / f"{index:05d}.mp4", frames, fps=config.fps, crf=config.crf)
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        info = {"generator_version": GENERATOR_VERSION, "labels": list(DIRECTIONS), **asdict(config)}
        (staging / "dataset_info.json").write_text(json.dumps(info, indent=2))
        try:
            staging.rename(target)
        except OSError:  # another process finished the same dataset first
            if not (target / "dataset_info.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _progress_bar(total: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="video")


__all__ = [
    "DIRECTIONS",
    "GENERATOR_VERSION",
    "MovingSquareConfig",
    "default_cache_dir",
    "generate_moving_square_dataset",
    "read_video",
    "render_moving_square",
    "write_video",
]
