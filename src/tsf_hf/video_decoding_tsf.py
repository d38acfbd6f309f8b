"""Decoding for the TimeSformer video processor: random access to the frames of one video, whatever its kind.

A video is a path or URL, a file object, `bytes`, a `datasets` row `{"path", "bytes"}`, or frames (numpy, torch, a
list of PIL images or arrays). `open_video` picks a reader: `FramesReader` for frames, `PyAVReader` (seeking from the
keyframe before each wanted frame) or `TorchCodecReader` for files and for the `VideoDecoder` objects of `datasets`'
default `Video()` feature. Every error names the input (its path, or its position in the batch).

Frames come out as players show them: PyAV's frames are turned by the display matrix of the stream (portrait phone
videos), torchcodec (>= 0.11) turns them itself. URLs are read by PyAV with a timeout. A Matroska/WebM file whose data
ends before the duration its header declares, like an mp4 with fewer frames than its header lists, is refused as
truncated.
"""

import bisect
import io
import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import av
import numpy as np
import torch
from PIL import Image
from transformers.utils import is_torchcodec_usable, logging


logger = logging.get_logger(__name__)

VIDEO_BACKENDS = ("auto", "pyav", "torchcodec")
URL_SCHEMES = ("http://", "https://")


class VideoReader:
    """Random access to the frames of one video.

    Attributes:
        name (`str`): how errors name the input (its path, or its position in the batch).
        num_frames (`int`): number of frames.
        fps (`float` or `None`): frame rate, `None` when unknown (frames given as arrays without metadata).
        num_decoded_frames (`int`): frames decoded so far (arrays count the frames they hand out).
        frame_times (`np.ndarray` or `None`): presentation time of each frame in seconds from the first, in frame
            order, where the file gives timestamps (variable frame rates are sampled by them).
        source_dtype (`torch.dtype`): dtype of the frames as given (decoders give uint8; `get_frames` gives uint8 or
            float32 frames holding 0-255 values, uint16 frames mapped there).
    """

    name: str
    num_frames: int
    fps: float | None
    num_decoded_frames: int = 0
    backend: str = "frames"
    frame_times: np.ndarray | None = None
    source_dtype: torch.dtype = torch.uint8

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` (any order, repeats allowed) as a `(len(indices), 3, H, W)` tensor."""
        raise NotImplementedError

    def get_frame_list(self, indices: Sequence[int]) -> list[torch.Tensor]:
        """The frames of `get_frames` as a list of `(3, H, W)` tensors, not stacked (a decoder hands out each frame's
        own array, which stacking would copy)."""
        return list(self.get_frames(indices))

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
    `convert_rgb` is true; otherwise only 3-channel frames are accepted. uint16 frames (16-bit PNGs, PyAV's `rgb48`) are
    mapped to 0-255 (`x / 257`); other integer dtypes are kept as float32 values; uint8 and float frames stay as given.
    """

    def __init__(self, frames: Any, name: str, convert_rgb: bool = True, channels_last: bool | None = None):
        self.name = name
        self.fps = None
        self._frames = _frames_to_tensor(frames, name, channels_last)  # (T, C, H, W)
        self.source_dtype = self._frames.dtype
        if self.source_dtype == torch.uint16:
            self._frames = self._frames.float() / 257  # 65535 -> 255
        elif self.source_dtype != torch.uint8 and not self.source_dtype.is_floating_point:
            self._frames = self._frames.float()  # other integers: the values as they are, as floats (checked later)
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
        if 0 in self._frames.shape[-2:]:
            height, width = self._frames.shape[-2:]
            raise ValueError(f"{name}: the frames are {height}x{width} pixels (height x width); both must be >= 1")

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self._frames.shape[-2:])

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        self.num_decoded_frames += len(indices)
        return self._frames[torch.as_tensor(np.asarray(indices, dtype=np.int64))]


def _frames_to_tensor(frames: Any, name: str, channels_last: bool | None) -> torch.Tensor:
    """Frames of one video to a `(T, C, H, W)` tensor, checking that all frames have one size."""
    if isinstance(frames, np.ndarray):
        frames = _array_to_tensor(frames, name)
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
        frames, channels_last = torch.stack(tensors), False
    else:
        raise TypeError(f"{name}: expected a video (path, bytes, file, array or list of frames), got {type(frames)}")
    if frames.ndim != 4:
        layout = "(T, H, W, C)" if channels_last else "(T, C, H, W)"
        raise ValueError(f"{name}: expected a 4-D array of frames {layout}, got shape {tuple(frames.shape)}")
    if frames.dtype == torch.bool or frames.is_complex():
        raise TypeError(f"{name}: expected real-valued frames (uint8 0-255 or float), got dtype {frames.dtype}")
    return frames.permute(0, 3, 1, 2) if channels_last else frames


def _array_to_tensor(array: np.ndarray, name: str) -> torch.Tensor:
    """A numpy array of frame values as a tensor (no copy when contiguous and in native byte order, unlike PIL's
    big-endian "I;16B"), refusing non-numeric dtypes."""
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected frames of numbers (uint8 0-255 or float), got numpy dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")))


def _frame_to_tensor(frame: Any, name: str) -> torch.Tensor:
    """One frame (PIL image, `(H, W)` / `(H, W, C)` array or `(C, H, W)` tensor) to a `(C, H, W)` tensor."""
    # not transformers' convert_pil_frames_to_video / convert_to_rgb: they keep palette modes, blend alpha on white
    # and cannot name the frame that differs in size
    if isinstance(frame, Image.Image):
        # 16-bit ("I;16"), 32-bit integer ("I") and float ("F") images keep their values (PIL's RGB conversion clips)
        if frame.mode not in ("RGB", "L", "RGBA") and not frame.mode.startswith(("I", "F")):
            frame = frame.convert("RGB")
        frame = np.array(frame)
    if isinstance(frame, np.ndarray):
        frame = _array_to_tensor(frame, name)
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
    start: a few frames of a long video cost a few groups of pictures, not the whole file. Frames are turned as the
    stream's display matrix says (rotation by quarter turns, mirroring). `timeout` (seconds) bounds every network wait
    of a URL."""

    # not transformers' read_video_pyav: it decodes every frame from the start of the file
    backend = "pyav"

    def __init__(self, source: Any, name: str, timeout: float | None = None):
        self.name = name
        self._timeout = timeout
        try:
            self._container = av.open(source, timeout=timeout)
        except av.FFmpegError as error:
            raise self._error(error, "cannot open as a video file") from error
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
            raise self._error(error, "the video data is corrupted") from error
        except ValueError:
            self._container.close()
            raise
        if self.num_frames == 0:
            self._container.close()
            raise ValueError(f"{name}: the video stream has no frames")
        self._decoder = None
        self._last: tuple[int, av.VideoFrame] | None = None
        self._last_rgb: np.ndarray | None = None
        self._display_size: tuple[int, int] | None = None
        self._valid_from = 0
        self._ended = False

    def _error(self, error: av.FFmpegError, problem: str) -> Exception:
        """The exception for a PyAV error: a `TimeoutError` when the wait for a URL ran out, else a `ValueError` naming
        the `problem`."""
        if isinstance(error, av.ExitError) and self._timeout is not None:
            return TimeoutError(f"{self.name}: no answer within {self._timeout:g} s (url_timeout)")
        return ValueError(f"{self.name}: {problem} ({error})")

    @property
    def frame_size(self) -> tuple[int, int]:
        if self._display_size is None:  # the display matrix is known once a frame is decoded
            self.get_frames([0])
        return self._display_size

    def _index_packets(self) -> None:
        keyframe_pts, all_pts, end_pts, count = [], [], None, 0
        for packet in self._container.demux(self._stream):
            if packet.size == 0:
                continue
            count += 1
            if packet.pts is not None:
                all_pts.append(packet.pts)
                packet_end = packet.pts + (packet.duration or 0)
                end_pts = packet_end if end_pts is None else max(end_pts, packet_end)
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
        if self._seekable:
            seconds = float(self._stream.time_base)
            self.frame_times = (np.asarray(self._sorted_pts, dtype=np.float64) - self._sorted_pts[0]) * seconds
            self._check_declared_duration(end_pts * seconds)

    def _check_declared_duration(self, data_end: float) -> None:
        """Refuses a Matroska/WebM file whose video data ends before the duration its header declares (these headers
        list no frame count) by more than two typical frame intervals."""
        if "matroska" not in self._container.format.name:
            return
        declared = _declared_duration(self._stream, self._container)
        start = (self._container.start_time or 0) / av.time_base
        intervals = np.diff(self.frame_times)
        tolerance = 2 * float(np.median(intervals)) if len(intervals) else 2 / (self.fps or 10)
        if declared is not None and declared - (data_end - start) > tolerance + 1e-3:
            raise ValueError(
                f"{self.name}: the file is truncated: its header declares {declared:.3f} s of video but the video "
                f"data ends at {data_end - start:.3f} s"
            )

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
            raise self._error(error, "the video data is corrupted") from error
        self.num_decoded_frames += 1
        index = self._frame_index(frame.pts) if self._seekable and frame.pts is not None else self._counter
        self._counter += 1
        # the frame stands for every index after the previous frame's (a frame may cover skipped timestamps)
        self._valid_from = self._last[0] + 1 if self._last is not None else index
        self._last = (index, frame)
        self._last_rgb = None
        return True

    def _rgb_of_last(self) -> np.ndarray:
        """The current frame as `(H, W, 3)` uint8 as players show it, converted once (skipped frames never are)."""
        if self._last_rgb is None:
            frame = self._last[1]
            self._last_rgb = _as_displayed(frame.to_ndarray(format="rgb24"), frame, self.name)
            self._display_size = self._last_rgb.shape[:2]
        return self._last_rgb

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        return torch.from_numpy(np.stack(self._rgb_arrays(indices))).permute(0, 3, 1, 2)

    def get_frame_list(self, indices: Sequence[int]) -> list[torch.Tensor]:
        # a turned frame is a view with negative strides, which torch cannot hold
        arrays = [array if min(array.strides) > 0 else array.copy() for array in self._rgb_arrays(indices)]
        return [torch.from_numpy(array).permute(2, 0, 1) for array in arrays]

    def _rgb_arrays(self, indices: Sequence[int]) -> list[np.ndarray]:
        """`(H, W, 3)` uint8 arrays of the frames at `indices` (a frame wanted twice is one array)."""
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
        return [found[int(index)] for index in indices]

    def close(self) -> None:
        self._container.close()


def _declared_duration(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> float | None:
    """The video duration a Matroska/WebM header declares, in seconds: the stream's own (or its `DURATION` tag), else
    the container's when the video is its only stream; `None` when the header declares none."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")
    if tag:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if len(container.streams) == 1 and container.duration:
        return container.duration / av.time_base
    return None


def _as_displayed(rgb: np.ndarray, frame: av.VideoFrame, name: str) -> np.ndarray:
    """`(H, W, 3)` pixels of `frame` turned as its display matrix says (counter-clockwise quarter turns of
    `frame.rotation`; a mirroring matrix reverses the turn and flips vertically)."""
    matrix = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    if matrix is None:
        return rgb
    rotation = frame.rotation
    if rotation % 90:
        raise ValueError(
            f"{name}: the display matrix rotates the frames by {rotation} degrees; only multiples of 90 are supported "
            "(re-encode the video upright)"
        )
    a, b, _, c, d = np.frombuffer(bytes(matrix), dtype=np.int32)[:5].astype(np.int64)
    quarter_turns = round(rotation / 90)
    if a * d - b * c < 0:
        return np.rot90(rgb, -quarter_turns)[::-1]
    return np.rot90(rgb, quarter_turns) if quarter_turns % 4 else rgb


def is_torchcodec_decoder(video: Any) -> bool:
    """Whether `video` is a torchcodec `VideoDecoder` (what `datasets`' default `Video()` feature gives)."""
    kind = type(video)
    return kind.__name__ == "VideoDecoder" and kind.__module__.split(".")[0] == "torchcodec"


class TorchCodecReader(VideoReader):
    """Decodes with torchcodec (needs FFmpeg shared libraries on the system), from a source or from an open torchcodec
    `VideoDecoder`. torchcodec >= 0.11 turns frames by the display matrix itself; older versions do not, and are
    refused. Sampling counts frames (torchcodec gives no timestamps without decoding)."""

    backend = "torchcodec"

    def __init__(self, source: Any, name: str):
        self.name = name
        if is_torchcodec_decoder(source):
            self._decoder = source
        elif is_torchcodec_usable(decode="video"):
            from torchcodec.decoders import VideoDecoder

            try:
                self._decoder = VideoDecoder(source, seek_mode="exact", dimension_order="NCHW")
            except (RuntimeError, ValueError) as error:
                raise ValueError(f"{name}: cannot decode as a video ({error})") from error
        else:
            raise ImportError(f"{name}: the torchcodec backend needs torchcodec and the FFmpeg libraries it loads")
        metadata = self._decoder.metadata
        if not hasattr(metadata, "rotation"):
            raise ImportError(
                f"{name}: this torchcodec does not turn frames by the video's display matrix; install torchcodec "
                ">= 0.11, or decode with PyAV (video_backend='pyav'; for `datasets`, cast the column to "
                "Video(decode=False))"
            )
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
            frames = self._decoder.get_frames_at(indices=[int(index) for index in indices]).data
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{self.name}: the video data is corrupted ({error})") from error
        # a decoder opened elsewhere may give (N, H, W, C)
        return frames if frames.shape[-3] == 3 else frames.permute(0, 3, 1, 2)


def source_fps(reader: VideoReader, metadata: Any = None) -> float | None:
    """The frame rate sampling assumes: the `fps` of `metadata` (a `VideoMetadata` or dict) when it gives one, else the
    reader's (`None` for frames without metadata: sampling then takes `target_fps`)."""
    given = dict(metadata).get("fps") if metadata is not None else None
    if given is None:
        return reader.fps
    if isinstance(given, bool) or not isinstance(given, numbers.Real) or not (math.isfinite(given) and given > 0):
        raise ValueError(f"{reader.name}: video_metadata gives fps={given!r}; a frame rate must be a positive number")
    return float(given)


def describe_video(video: Any, index: int | None) -> str:
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
    url_timeout: float | None = 30.0,
) -> VideoReader:
    """Opens one video for random frame access.

    Args:
        video: a path (`str`/`Path`) or http(s) URL, a binary file object, `bytes`, a `datasets` row
            `{"path", "bytes"}` (bytes win when present), a torchcodec `VideoDecoder` (a row decoded by `datasets`'
            default `Video()` feature), or frames: numpy `(T, H, W, C)`, torch `(T, C, H, W)`, a list of PIL images /
            arrays.
        name: how errors name the input (defaults to its path, or "video").
        backend: `"auto"` (torchcodec when transformers says it is usable, else PyAV), `"pyav"` or `"torchcodec"`.
            URLs are always read by PyAV, which enforces `url_timeout`.
        convert_rgb: convert grayscale / RGBA frames to RGB (frames given as arrays or images).
        channels_last: layout of array frames; defaults to `(T, H, W, C)` for numpy and `(T, C, H, W)` for torch.
        url_timeout: seconds to wait for a URL's server at each step (connecting, each read) before a `TimeoutError`
            naming the URL; `None` waits forever.
    """
    name = name or describe_video(video, None)
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
    if is_torchcodec_decoder(video):
        return TorchCodecReader(video, name)
    if isinstance(video, dict):
        if video.get("bytes") is not None:
            video = video["bytes"]
        elif video.get("path") is not None:
            video = video["path"]
        else:
            raise ValueError(f"{name}: a video dict needs a 'path' or 'bytes' entry, got keys {sorted(video)}")
    is_url = isinstance(video, str) and video.startswith(URL_SCHEMES)
    if isinstance(video, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(video))
    elif isinstance(video, (str, os.PathLike)):
        source = os.fspath(video)
        if not is_url and not os.path.isfile(source):
            raise FileNotFoundError(f"{name}: no such video file")
    elif hasattr(video, "read"):
        source = video
    else:
        return FramesReader(video, name, convert_rgb=convert_rgb, channels_last=channels_last)
    if is_url and backend == "torchcodec":
        raise ValueError(f"{name}: URLs are read with PyAV, which has a timeout; use video_backend 'pyav' or 'auto'")
    if backend == "pyav" or is_url or (backend == "auto" and not is_torchcodec_usable(decode="video")):
        return PyAVReader(source, name, timeout=url_timeout if is_url else None)
    if backend == "torchcodec":
        return TorchCodecReader(source, name)
    position = source.tell() if hasattr(source, "tell") else None
    try:
        return TorchCodecReader(source, name)
    except (ValueError, ImportError):
        # torchcodec's errors are generic (and an old torchcodec leaves frames unrotated): let PyAV open the file again
        # to name the problem (or read it)
        if position is not None:
            source.seek(position)
        return PyAVReader(source, name)


__all__ = [
    "URL_SCHEMES",
    "VIDEO_BACKENDS",
    "FramesReader",
    "PyAVReader",
    "TorchCodecReader",
    "VideoReader",
    "describe_video",
    "is_torchcodec_decoder",
    "open_video",
    "source_fps",
]
