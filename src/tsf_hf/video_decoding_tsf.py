"""Decoding for the TimeSformer video processor: random access to the frames of one video, whatever its kind.

A video is a path or URL, a file object, `bytes`, a `datasets` row `{"path", "bytes"}`, or frames (numpy, torch, a
list of PIL images or arrays). `open_video` picks a reader: `FramesReader` for frames, `PyAVReader` (seeking from the
keyframe before each wanted frame) or `TorchCodecReader` for files. Every error names the input (its path, or its
position in the batch).
"""

import bisect
import io
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
    # not transformers' convert_pil_frames_to_video / convert_to_rgb: they keep palette modes, blend alpha on white
    # and cannot name the frame that differs in size
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

    # not transformers' read_video_pyav: it decodes every frame from the start of the file

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
    name = name or describe_video(video, None)
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


__all__ = [
    "VIDEO_BACKENDS",
    "FramesReader",
    "PyAVReader",
    "TorchCodecReader",
    "VideoReader",
    "describe_video",
    "open_video",
    "source_fps",
]
