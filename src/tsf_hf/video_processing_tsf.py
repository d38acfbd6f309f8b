"""TimeSformer video processor: decoding, frame sampling, resizing, cropping, normalisation and multi-view testing.

Everything from a video file (or frames) to `pixel_values` lives in this one file, because it is shipped as remote
code next to the model and may import nothing else of the package.

The original evaluation protocol:
- values /255, then `(x - 0.45) / 0.225` on every channel;
- short side resized to the crop size (bilinear on float values, no antialiasing, long side floored), then square
  crops: 1 crop = the centre, 3 crops = start, centre and end along the long side (centre offsets rounded up);
- frame sampling (`sampling_strategy`), with rates defined at `target_fps` (30) and honouring the video's own fps:
  - `"uniform"`: frame `k * total // T` for k in 0..T-1, over the whole video (pipeline default);
  - `"dense"` (Kinetics): a clip spans `T * sampling_rate` frames at 30 fps (`T * sampling_rate * fps / 30` source
    frames), T indices by `linspace` over the span, truncated and clamped to the video. Test clip starts
    (`clip_alignment`): `"center"` (default) puts clip i of n at `delta * (2i + 1) / (2n)` with
    `delta = max(total - span, 0)`, i.e. the middle of the video for one clip (as the paper says) and evenly spaced
    starts for several; `"start"` uses the original evaluation code's `delta * i / n` (frame 0 for one clip);
  - `"segment"` (Something-Something v2): `T` equal segments of `total - 1` frames, rounded; the middle frame of each
    segment at test, a random frame of each segment in training.
  For `"uniform"` and `"segment"`, several temporal clips split the video into equal consecutive parts, each
  sampled by the strategy. Short videos never fail: indices are clamped, frames repeat.
"""

import bisect
import io
import math
import os
from collections.abc import Sequence
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import validate_typed_dict
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.utils import is_torchcodec_usable, logging
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata


logger = logging.get_logger(__name__)

TSF_MEAN = [0.45, 0.45, 0.45]
TSF_STD = [0.225, 0.225, 0.225]
SAMPLING_STRATEGIES = ("uniform", "dense", "segment")
CLIP_ALIGNMENTS = ("center", "start")
CHANNEL_ORDERS = ("rgb", "bgr")
VIDEO_BACKENDS = ("auto", "pyav", "torchcodec")
_INTERPOLATION_MODES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}


# ----------------------------------------------------------------------------------------------------------------
# Decoding


class VideoReader:
    """Random access to the frames of one video.

    Attributes:
        name (`str`): how errors name the input (its path, or its position in the batch).
        num_frames (`int`): number of frames.
        fps (`float` or `None`): frame rate, `None` when unknown (frames given as arrays without metadata).
        num_decoded_frames (`int`): frames decoded so far (arrays count the frames they hand out).
    """

    name: str
    num_frames: int
    fps: float | None
    num_decoded_frames: int = 0
    backend: str = "frames"

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` (any order, repeats allowed) as a `(len(indices), 3, H, W)` tensor."""
        raise NotImplementedError

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases the underlying file, if any."""

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class FramesReader(VideoReader):
    """A video given as frames: numpy `(T, H, W, C)`, torch `(T, C, H, W)`, or a list of PIL images / arrays.

    One-channel (grayscale) frames are repeated to RGB and the alpha channel of RGBA frames is dropped when
    `convert_rgb` is true; otherwise only 3-channel frames are accepted.
    """

    def __init__(self, frames: Any, name: str, convert_rgb: bool = True, channels_last: bool | None = None):
        self.name = name
        self.fps = None
        self._frames = _frames_to_tensor(frames, name, channels_last)  # (T, C, H, W)
        channels = self._frames.shape[1]
        if channels != 3:
            if not convert_rgb or channels not in (1, 4):
                accepted = "3 channels (RGB)" + (" or 1 / 4 (grayscale / RGBA)" if convert_rgb else "")
                raise ValueError(
                    f"{name}: expected frames with {accepted}, got {channels} channels "
                    f"(shape {tuple(self._frames.shape)} as (T, C, H, W)); numpy frames are read as (T, H, W, C) "
                    "and torch frames as (T, C, H, W) unless input_data_format says otherwise"
                )
            self._frames = self._frames.expand(-1, 3, -1, -1) if channels == 1 else self._frames[:, :3]
        self.num_frames = self._frames.shape[0]
        if self.num_frames == 0:
            raise ValueError(f"{name}: the video has no frames")

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self._frames.shape[-2:])

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        self.num_decoded_frames += len(indices)
        return self._frames[torch.as_tensor(np.asarray(indices, dtype=np.int64))]


def _frames_to_tensor(frames: Any, name: str, channels_last: bool | None) -> torch.Tensor:
    """Frames of one video to a `(T, C, H, W)` tensor, checking that all frames have one size."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
        channels_last = True if channels_last is None else channels_last
    elif isinstance(frames, torch.Tensor):
        channels_last = False if channels_last is None else channels_last
    elif isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError(f"{name}: the video has no frames")
        tensors = []
        for index, frame in enumerate(frames):
            tensors.append(_frame_to_tensor(frame, f"{name}, frame {index}"))
            if tensors[-1].shape != tensors[0].shape:
                raise ValueError(
                    f"{name}: frames differ in size or channels: frame 0 is {tuple(tensors[0].shape)} and frame "
                    f"{index} is {tuple(tensors[-1].shape)} (C, H, W); all frames of a video must have one size"
                )
        return torch.stack(tensors)
    else:
        raise TypeError(f"{name}: expected a video (path, bytes, file, array or list of frames), got {type(frames)}")
    if frames.ndim != 4:
        layout = "(T, H, W, C)" if channels_last else "(T, C, H, W)"
        raise ValueError(f"{name}: expected a 4-D array of frames {layout}, got shape {tuple(frames.shape)}")
    if frames.dtype == torch.bool or frames.is_complex():
        raise TypeError(f"{name}: expected real-valued frames (uint8 0-255 or float), got dtype {frames.dtype}")
    return frames.permute(0, 3, 1, 2) if channels_last else frames


def _frame_to_tensor(frame: Any, name: str) -> torch.Tensor:
    """One frame (PIL image, `(H, W)` / `(H, W, C)` array or `(C, H, W)` tensor) to a `(C, H, W)` tensor."""
    if isinstance(frame, Image.Image):
        if frame.mode not in ("RGB", "L", "RGBA"):
            frame = frame.convert("RGB")
        frame = np.array(frame)
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(np.ascontiguousarray(frame))
        if frame.ndim == 2:
            frame = frame[..., None]
        if frame.ndim != 3:
            raise ValueError(f"{name}: expected an (H, W) or (H, W, C) frame, got shape {tuple(frame.shape)}")
        return frame.permute(2, 0, 1)
    if isinstance(frame, torch.Tensor):
        if frame.ndim == 2:
            frame = frame[None]
        if frame.ndim != 3:
            raise ValueError(f"{name}: expected an (H, W) or (C, H, W) frame tensor, got shape {tuple(frame.shape)}")
        return frame
    raise TypeError(f"{name}: expected a PIL image, numpy array or torch tensor, got {type(frame)}")


class PyAVReader(VideoReader):
    """Decodes with PyAV. On opening, the packets are read once without decoding to count frames and to index the
    keyframes, so that `get_frames` decodes from the last keyframe before each wanted frame instead of from the
    start: a few frames of a long video cost a few groups of pictures, not the whole file."""

    backend = "pyav"

    def __init__(self, source: Any, name: str):
        self.name = name
        try:
            self._container = av.open(source)
        except av.FFmpegError as error:
            raise ValueError(f"{name}: cannot open as a video file ({error})") from error
        if not self._container.streams.video:
            kinds = sorted({stream.type for stream in self._container.streams}) or ["none"]
            self._container.close()
            raise ValueError(f"{name}: the file has no video stream (streams: {', '.join(kinds)})")
        self._stream = self._container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else None
        try:
            self._index_packets()
        except av.FFmpegError as error:
            self._container.close()
            raise ValueError(f"{name}: the video data is corrupted ({error})") from error
        except ValueError:
            self._container.close()
            raise
        if self.num_frames == 0:
            self._container.close()
            raise ValueError(f"{name}: the video stream has no frames")
        self._decoder = None
        self._last: tuple[int, av.VideoFrame] | None = None
        self._last_rgb: np.ndarray | None = None
        self._valid_from = 0
        self._ended = False

    @property
    def frame_size(self) -> tuple[int, int]:
        return (self._stream.height, self._stream.width)

    def _index_packets(self) -> None:
        keyframe_pts, all_pts, count = [], [], 0
        for packet in self._container.demux(self._stream):
            if packet.size == 0:
                continue
            count += 1
            if packet.pts is not None:
                all_pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframe_pts.append(packet.pts)
        if count < (self._stream.frames or 0):
            raise ValueError(
                f"{self.name}: the file is truncated: its header lists {self._stream.frames} video frames but only "
                f"{count} are present"
            )
        self.num_frames = count
        # A frame's index is the rank of its timestamp among all packets' (exact for variable frame rates too).
        # Streams without timestamps or keyframe flags decode sequentially from the start.
        self._seekable = bool(keyframe_pts) and len(all_pts) == count
        self._sorted_pts = sorted(all_pts)
        self._keyframes = sorted(self._frame_index(pts) for pts in keyframe_pts) if self._seekable else [0]
        self._keyframe_pts = dict(zip(self._keyframes, sorted(keyframe_pts)))

    def _frame_index(self, pts: int) -> int:
        return bisect.bisect_left(self._sorted_pts, pts)

    def _keyframe_before(self, index: int) -> int:
        position = int(np.searchsorted(self._keyframes, index, side="right")) - 1
        return self._keyframes[max(position, 0)]

    def _restart(self, target: int) -> None:
        if self._seekable:
            pts = self._keyframe_pts[self._keyframe_before(target)]
            self._container.seek(pts, stream=self._stream, backward=True)
        else:
            self._container.seek(0)
        self._decoder = self._container.decode(self._stream)
        self._counter = 0
        self._last = None
        self._ended = False

    def _advance(self) -> bool:
        """Decodes the next frame into `self._last`; False at the end of the stream."""
        try:
            frame = next(self._decoder)
        except StopIteration:
            self._ended = True
            return False
        except av.FFmpegError as error:
            raise ValueError(f"{self.name}: the video data is corrupted ({error})") from error
        self.num_decoded_frames += 1
        index = self._frame_index(frame.pts) if self._seekable and frame.pts is not None else self._counter
        self._counter += 1
        # the frame stands for every index after the previous frame's (a frame may cover skipped timestamps)
        self._valid_from = self._last[0] + 1 if self._last is not None else index
        self._last = (index, frame)
        self._last_rgb = None
        return True

    def _rgb_of_last(self) -> np.ndarray:
        """The current frame as `(H, W, 3)` uint8, converted once (skipped frames are never converted)."""
        if self._last_rgb is None:
            self._last_rgb = self._last[1].to_ndarray(format="rgb24")
        return self._last_rgb

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        found: dict[int, np.ndarray] = {}
        for target in sorted({int(index) for index in indices}):
            last = self._last
            if last is not None and (self._valid_from <= target <= last[0] or (self._ended and target > last[0])):
                found[target] = self._rgb_of_last()
                continue
            if (
                last is None
                or target < last[0]
                or self._ended
                or (self._seekable and self._keyframe_before(target) > last[0])
            ):
                self._restart(target)
            while (self._last is None or self._last[0] < target) and self._advance():
                pass
            if self._last is None:
                raise ValueError(f"{self.name}: no video frame could be decoded (wanted frame {target})")
            if self._last[0] < target:
                logger.warning_once(
                    f"{self.name}: the stream ended at frame {self._last[0]} before frame {target}; the last frame "
                    "stands in for the missing ones"
                )
            found[target] = self._rgb_of_last()
        return torch.from_numpy(np.stack([found[int(index)] for index in indices])).permute(0, 3, 1, 2)

    def close(self) -> None:
        self._container.close()


class TorchCodecReader(VideoReader):
    """Decodes with torchcodec (needs FFmpeg shared libraries on the system)."""

    backend = "torchcodec"

    def __init__(self, source: Any, name: str):
        if is_torchcodec_usable(decode="video"):
            from torchcodec.decoders import VideoDecoder
        else:
            raise ImportError(f"{name}: the torchcodec backend needs torchcodec and the FFmpeg libraries it loads")
        self.name = name
        try:
            self._decoder = VideoDecoder(source, seek_mode="exact", dimension_order="NCHW")
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{name}: cannot decode as a video ({error})") from error
        metadata = self._decoder.metadata
        self.num_frames = int(metadata.num_frames or 0)
        self.fps = float(metadata.average_fps) if metadata.average_fps else None
        self._size = (metadata.height, metadata.width)
        if self.num_frames == 0:
            raise ValueError(f"{name}: the video stream has no frames")
        listed, present = metadata.num_frames_from_header, metadata.num_frames_from_content
        if listed and present is not None and present < listed:
            raise ValueError(
                f"{name}: the file is truncated: its header lists {listed} video frames but only {present} are present"
            )

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        self.num_decoded_frames += len(set(indices))
        try:
            return self._decoder.get_frames_at(indices=[int(index) for index in indices]).data
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{self.name}: the video data is corrupted ({error})") from error


def source_fps(reader: VideoReader, metadata: Any = None) -> float | None:
    """The frame rate sampling assumes: the `fps` of `metadata` (a `VideoMetadata` or dict) when it gives one, else the
    reader's (`None` for frames without metadata: sampling then takes `target_fps`)."""
    given = dict(metadata).get("fps") if metadata is not None else None
    return given or reader.fps


def _describe(video: Any, index: int | None) -> str:
    """How errors name an input: its path if it has one, else its position."""
    path = video.get("path") if isinstance(video, dict) else video
    if isinstance(path, (str, os.PathLike)):
        return f"'{os.fspath(path)}'"
    return "video" if index is None else f"video {index}"


def open_video(
    video: Any,
    name: str | None = None,
    backend: str = "auto",
    convert_rgb: bool = True,
    channels_last: bool | None = None,
) -> VideoReader:
    """Opens one video for random frame access.

    Args:
        video: a path (`str`/`Path`) or http(s) URL, a binary file object, `bytes`, a `datasets` row
            `{"path", "bytes"}` (bytes win when present), or frames: numpy `(T, H, W, C)`, torch `(T, C, H, W)`, a
            list of PIL images / arrays.
        name: how errors name the input (defaults to its path, or "video").
        backend: `"auto"` (torchcodec when transformers says it is usable, else PyAV), `"pyav"` or `"torchcodec"`.
        convert_rgb: convert grayscale / RGBA frames to RGB (frames given as arrays or images).
        channels_last: layout of array frames; defaults to `(T, H, W, C)` for numpy and `(T, C, H, W)` for torch.
    """
    name = name or _describe(video, None)
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
    if isinstance(video, dict):
        if video.get("bytes") is not None:
            video = video["bytes"]
        elif video.get("path") is not None:
            video = video["path"]
        else:
            raise ValueError(f"{name}: a video dict needs a 'path' or 'bytes' entry, got keys {sorted(video)}")
    if isinstance(video, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(video))
    elif isinstance(video, (str, os.PathLike)):
        source = os.fspath(video)
        if not source.startswith(("http://", "https://")) and not os.path.isfile(source):
            raise FileNotFoundError(f"{name}: no such video file")
    elif hasattr(video, "read"):
        source = video
    else:
        return FramesReader(video, name, convert_rgb=convert_rgb, channels_last=channels_last)
    if backend == "pyav" or (backend == "auto" and not is_torchcodec_usable(decode="video")):
        return PyAVReader(source, name)
    if backend == "torchcodec":
        return TorchCodecReader(source, name)
    position = source.tell() if hasattr(source, "tell") else None
    try:
        return TorchCodecReader(source, name)
    except ValueError:
        # torchcodec's errors are generic: let PyAV open the file again to name the problem (or read it)
        if position is not None:
            source.seek(position)
        return PyAVReader(source, name)


# ----------------------------------------------------------------------------------------------------------------
# Frame sampling


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


# ----------------------------------------------------------------------------------------------------------------
# Spatial transforms


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
        size = (int(math.floor(height / width * short_side)), short_side)
    else:
        size = (short_side, int(math.floor(width / height * short_side)))
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


# ----------------------------------------------------------------------------------------------------------------
# Processors


class TsfVideoProcessorKwargs(VideosKwargs, total=False):
    """The video kwargs of transformers plus TimeSformer's sampling, view and training options.

    sampling_strategy (`str`): `"uniform"`, `"dense"` or `"segment"` (module docstring).
    sampling_rate (`int`): stride between sampled frames of a dense clip, counted at `target_fps`.
    target_fps (`float`): frame rate the sampling rate is defined at (30).
    num_temporal_clips (`int`): clips per video at test time.
    num_spatial_crops (`int`): 1 (centre) or 3 (start, centre, end) crops per clip at test time.
    clip_alignment (`str`): dense test clip starts, `"center"` or `"start"` (module docstring).
    channel_order (`str`): `"rgb"` or `"bgr"` (the original Something-Something v2 models saw BGR frames).
    train_short_side_range (`(int, int)`): training short side, drawn uniformly from this inclusive range.
    train_flip (`bool`): random horizontal flip in training (off for direction-sensitive labels).
    video_backend (`str`): `"auto"`, `"pyav"` or `"torchcodec"`.
    """

    sampling_strategy: str | None
    sampling_rate: int | None
    target_fps: float | int | None
    num_temporal_clips: int | None
    num_spatial_crops: int | None
    clip_alignment: str | None
    channel_order: str | None
    train_short_side_range: tuple[int, int] | list[int] | None
    train_flip: bool | None
    video_backend: str | None


_CALL_ONLY_KWARGS = ("train", "generator", "return_tensors")
_UNSUPPORTED_KWARGS = ("fps", "do_pad", "pad_size", "data_format", "default_to_square")


class TsfProcessingMixin:
    """Settings and the preprocessing shared by `TsfVideoProcessor` and `TsfImageProcessor` (so they give the same
    numbers)."""

    valid_kwargs = TsfVideoProcessorKwargs
    model_input_names = ["pixel_values"]
    do_resize = True
    size = {"shortest_edge": 224}
    resample = PILImageResampling.BILINEAR
    do_center_crop = True
    crop_size = {"height": 224, "width": 224}
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = TSF_MEAN
    image_std = TSF_STD
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 8
    sampling_strategy = "uniform"
    sampling_rate = 32
    target_fps = 30.0
    num_temporal_clips = 1
    num_spatial_crops = 1
    clip_alignment = "center"
    channel_order = "rgb"
    train_short_side_range = [256, 320]
    train_flip = True
    video_backend = "auto"

    def resolve_settings(self, **kwargs: Any) -> dict[str, Any]:
        """The processor's settings with call kwargs (and `train`, `generator`) applied, validated: what
        `transform_clip` and the sampling take."""
        for key in _UNSUPPORTED_KWARGS:
            if kwargs.get(key) is not None:
                raise ValueError(f"{type(self).__name__} does not support `{key}`, got {kwargs[key]!r}")
        unknown = sorted(set(kwargs) - set(self.valid_kwargs.__annotations__) - set(_CALL_ONLY_KWARGS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {unknown}")
        validate_typed_dict(self.valid_kwargs, {k: v for k, v in kwargs.items() if k not in _CALL_ONLY_KWARGS})
        settings = {key: getattr(self, key, None) for key in self.valid_kwargs.__annotations__}
        settings.update({key: value for key, value in kwargs.items() if value is not None})
        sizes = {key: settings.pop(key) for key in ("size", "crop_size", "image_mean", "image_std")}
        settings.update(self._standardize_kwargs(**sizes))
        size, crop = settings["size"], settings["crop_size"]

        def require(condition: bool, message: str) -> None:
            if not condition:
                raise ValueError(f"{type(self).__name__}: {message}")

        choices = {
            "sampling_strategy": SAMPLING_STRATEGIES,
            "clip_alignment": CLIP_ALIGNMENTS,
            "channel_order": CHANNEL_ORDERS,
            "video_backend": VIDEO_BACKENDS,
            "num_spatial_crops": (1, 3),
            "resample": tuple(_INTERPOLATION_MODES),
        }
        for key, allowed in choices.items():
            require(settings[key] in allowed, f"{key} must be one of {allowed}, got {settings[key]!r}")
        for key in ("num_frames", "num_temporal_clips", "sampling_rate"):
            require(settings[key] >= 1, f"{key} must be >= 1, got {settings[key]!r}")
        require(
            not settings["do_resize"] or size.shortest_edge is not None,
            f"size must be {{'shortest_edge': int}}, got {dict(size)}",
        )
        require(settings["do_center_crop"] or settings["num_spatial_crops"] == 1, "3 spatial crops need do_center_crop")
        low, high = settings["train_short_side_range"]
        require(
            not kwargs.get("train") or not settings["do_center_crop"] or max(crop.height, crop.width) <= low <= high,
            f"train_short_side_range {tuple(settings['train_short_side_range'])} must be ordered and not below the "
            f"crop size {crop.height}x{crop.width}",
        )
        settings["train"] = bool(kwargs.get("train", False))
        settings["generator"] = kwargs.get("generator")
        return settings

    def transform_clip(self, frames: torch.Tensor, settings: dict[str, Any] | None = None) -> torch.Tensor:
        """Spatial views of one clip: `(T, C, H, W)` frames (0-255) to `(S, T, C, h, w)` normalised views,
        S = `num_spatial_crops` (1 in training: a random short side, random crop and optional flip)."""
        settings = settings if settings is not None else self.resolve_settings()
        generator, train = settings["generator"], settings["train"]
        frames = frames.float()
        if settings["channel_order"] == "bgr":
            frames = frames.flip(1)
        if settings["do_rescale"]:
            frames = frames * settings["rescale_factor"]
        if settings["do_resize"]:
            short_side = settings["size"].shortest_edge
            if train:
                low, high = settings["train_short_side_range"]
                short_side = int(torch.randint(low, high + 1, (), generator=generator))
            frames = short_side_resize(frames, short_side, _INTERPOLATION_MODES[settings["resample"]])
        if settings["do_center_crop"]:
            crop_height, crop_width = settings["crop_size"].height, settings["crop_size"].width
            height, width = frames.shape[-2:]
            if train:
                if crop_height > height or crop_width > width:
                    raise ValueError(f"crop {crop_height}x{crop_width} is larger than the frame {height}x{width}")
                top = int(torch.randint(0, height - crop_height + 1, (), generator=generator))
                left = int(torch.randint(0, width - crop_width + 1, (), generator=generator))
                offsets = [(top, left)]
            else:
                offsets = spatial_crop_offsets(height, width, crop_height, crop_width, settings["num_spatial_crops"])
            views = torch.stack([frames[..., t : t + crop_height, l : l + crop_width] for t, l in offsets])
        else:
            views = frames[None]
        if train and settings["train_flip"] and bool(torch.rand((), generator=generator) < 0.5):
            views = views.flip(-1)
        if settings["do_normalize"]:
            mean, std = self._channel_statistics(settings, views)
            views = (views - mean) / std
        return views

    def frames_of_views(self, views: torch.Tensor, settings: dict[str, Any] | None = None) -> torch.Tensor:
        """Undoes the value transforms of `transform_clip` (normalisation, rescaling, channel order) for display:
        `(..., C, h, w)` views to `(..., h, w, C)` uint8 RGB frames."""
        settings = settings if settings is not None else self.resolve_settings()
        frames = views.float()
        if settings["do_normalize"]:
            mean, std = self._channel_statistics(settings, frames)
            frames = frames * std + mean
        if settings["do_rescale"]:
            frames = frames / settings["rescale_factor"]
        if settings["channel_order"] == "bgr":
            frames = frames.flip(-3)
        return frames.clamp(0, 255).round().to(torch.uint8).movedim(-3, -1)

    @staticmethod
    def _channel_statistics(settings: dict[str, Any], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`image_mean` and `image_std` as `(C, 1, 1)` tensors of `like`'s dtype and device."""
        return tuple(
            torch.tensor(settings[key], dtype=like.dtype, device=like.device).view(-1, 1, 1)
            for key in ("image_mean", "image_std")
        )

    def clip_indices(self, num_source_frames: int, fps: float | None, settings: dict[str, Any]) -> np.ndarray:
        """Frame indices `(clips, T)` the settings sample from a video of `num_source_frames` frames at `fps`
        (all frames, as one clip, when `do_sample_frames` is off)."""
        if not settings["do_sample_frames"]:
            return np.arange(num_source_frames)[None]
        return sample_clip_indices(
            num_source_frames,
            settings["num_frames"],
            strategy=settings["sampling_strategy"],
            num_clips=settings["num_temporal_clips"],
            source_fps=fps,
            target_fps=settings["target_fps"],
            sampling_rate=settings["sampling_rate"],
            clip_alignment=settings["clip_alignment"],
            train=settings["train"],
            generator=settings["generator"],
        )

    def open_reader(self, video: Any, settings: dict[str, Any], name: str | None = None) -> VideoReader:
        """Opens one video with the settings' backend, RGB conversion and array layout (`input_data_format`)."""
        channels_last = None
        if settings["input_data_format"] is not None:
            data_format = settings["input_data_format"]
            channels_last = str(getattr(data_format, "value", data_format)) == "channels_last"
        return open_video(video, name, settings["video_backend"], settings["do_convert_rgb"], channels_last)

    def read_views(self, reader: VideoReader, indices: np.ndarray, settings: dict[str, Any]) -> torch.Tensor:
        """Reads the frames at `indices` `(clips, T)` and returns their `(clips * S, T, C, h, w)` views, clip-major.

        Raises a `ValueError` naming the video when `do_rescale` is on and the frames are floats already in [0, 1]:
        dividing them by 255 again would silently give a black clip (every value near -2 after normalisation).
        All-zero frames pass, as rescaling cannot change them.
        """
        frames = reader.get_frames(indices.reshape(-1))
        if settings["do_rescale"] and frames.is_floating_point():
            low, high = float(frames.min()), float(frames.max())
            if low >= 0 and 0 < high <= 1:
                raise ValueError(
                    f"{reader.name}: the frames are floats in [0, 1] (max {high:.4g}), so they look already rescaled, "
                    f"but do_rescale=True would divide them by {1 / settings['rescale_factor']:g} again; pass "
                    "do_rescale=False for frames in [0, 1], or give 0-255 values (as uint8 to be unambiguous)"
                )
        frames = frames.reshape(indices.shape + frames.shape[1:])
        if settings["device"] is not None:
            frames = frames.to(settings["device"])
        return torch.cat([self.transform_clip(clip, settings) for clip in frames])

    def _split_videos(self, videos: Any) -> list:
        """The videos of a call: one video, or a batch (list / 5-D array)."""
        if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
            return list(videos)
        if isinstance(videos, (list, tuple)):
            if not videos:
                raise ValueError("expected a video or a batch of videos, got an empty list")
            first = videos[0]
            is_frame = isinstance(first, Image.Image) or (
                isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim in (2, 3)
            )
            return [videos] if is_frame else list(videos)
        return [videos]

    def preprocess(self, videos: Any, **kwargs: Unpack[TsfVideoProcessorKwargs]) -> BatchFeature:
        """Videos to `pixel_values` `(B, T, C, H, W)`, or `(B, V, T, C, H, W)` with V = clips x crops > 1 views.

        Args:
            videos: one video or a list of videos; a video is a path, file object, `bytes`, a `datasets` row
                `{"path", "bytes"}`, numpy `(T, H, W, C)`, torch `(T, C, H, W)` or a list of frames. Frame values are
                0-255 (uint8 or float); floats already in [0, 1] need `do_rescale=False` (else a `ValueError`).
            train (`bool`, call only): training augmentation (one random view per video).
            generator (`torch.Generator`, call only): randomness for `train`.
            video_metadata: `VideoMetadata`/dict (or one per video) giving `fps` of array inputs (default 30).
            return_metadata: also return `video_metadata` with the sampled `frames_indices` (clips, T).
            Any setting of the processor (`num_frames`, `sampling_strategy`, ...) can be overridden per call.
        """
        return_tensors = kwargs.get("return_tensors")
        settings = self.resolve_settings(**kwargs)
        batch = self._split_videos(videos)
        metadata = settings["video_metadata"]
        if metadata is not None and not isinstance(metadata, (list, tuple)):
            metadata = [metadata] * len(batch)
        if metadata is not None and len(metadata) != len(batch):
            raise ValueError(f"got {len(metadata)} video_metadata entries for {len(batch)} videos")
        outputs, all_metadata = [], []
        for index, video in enumerate(batch):
            name = _describe(video, index)
            self._check_input(video, name)
            with self.open_reader(video, settings, name) as reader:
                fps = source_fps(reader, metadata[index] if metadata is not None else None)
                indices = self.clip_indices(reader.num_frames, fps, settings)
                views = self.read_views(reader, indices, settings)
                height, width = reader.frame_size
                all_metadata.append(
                    VideoMetadata(
                        total_num_frames=reader.num_frames,
                        fps=fps,
                        height=height,
                        width=width,
                        frames_indices=indices,
                        video_backend=reader.backend,
                    )
                )
            if outputs and views.shape != outputs[0].shape:
                raise ValueError(
                    f"{name}: processed to shape {tuple(views.shape)} but video 0 gave {tuple(outputs[0].shape)}; "
                    "with do_center_crop=False all videos of a batch must have one aspect ratio"
                )
            outputs.append(views)
        pixel_values = torch.stack(outputs)
        if pixel_values.shape[1] == 1:
            pixel_values = pixel_values[:, 0]
        data = {"pixel_values": pixel_values}
        if settings["return_metadata"]:
            data["video_metadata"] = all_metadata
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _check_input(self, video: Any, name: str) -> None:
        """Hook for processors that accept only some kinds of input."""


class TsfVideoProcessor(TsfProcessingMixin, BaseVideoProcessor):
    r"""
    Video processor for TimeSformer: decodes videos (torchcodec when usable, else PyAV, seeking to the frames it
    needs), samples frames, resizes, crops and normalises them with the original protocol, and returns
    `pixel_values` of shape `(B, T, C, H, W)`, or `(B, V, T, C, H, W)` when `num_temporal_clips x num_spatial_crops`
    is more than one view (`TsfForVideoClassification` averages the logits over views).

    Defaults: 8 frames sampled uniformly over the video, short side resized to 224 (bilinear), one 224 centre crop,
    mean 0.45 / std 0.225 on every channel. See the module docstring for the sampling strategies, and
    `TsfVideoProcessorKwargs` for every option. Call with `train=True` (and a `torch.Generator`) for training
    augmentation: random clip position, short side drawn from `train_short_side_range`, random crop, optional flip.

    Example:

    ```python
    >>> processor = TsfVideoProcessor(sampling_strategy="dense", sampling_rate=32, num_spatial_crops=3)
    >>> processor("video.mp4", return_tensors="pt")["pixel_values"].shape
    torch.Size([1, 3, 8, 3, 224, 224])
    ```"""

    def __init__(self, **kwargs: Unpack[TsfVideoProcessorKwargs]):
        super().__init__(**kwargs)


__all__ = ["TsfVideoProcessor", "TsfProcessingMixin", "open_video", "sample_clip_indices", "VideoReader"]
