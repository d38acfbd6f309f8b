"""TimeSformer video processor: decoding, frame sampling, resizing, cropping, normalisation and multi-view testing.

Shipped as remote code next to the model, with its siblings (imported only as `from .sibling import ...`, as
transformers copies them flat): `video_decoding_tsf` (readers), `video_sampling_tsf` (which frames make a clip) and
`video_transforms_tsf` (resize and crop geometry). Their public names are importable from here too.

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
    starts for several; `"start"` uses the original evaluation code's `delta * i / n` (frame 0 for one clip). In a
    file whose frame timestamps stray from its stated rate (variable frame rate), positions are times: each index
    is the frame shown at its time;
  - `"segment"` (Something-Something v2): `T` equal segments of `total - 1` frames, rounded; the middle frame of each
    segment at test, a random frame of each segment in training.
  For `"uniform"` and `"segment"`, several temporal clips split the video into equal consecutive parts, each
  sampled by the strategy. Short videos never fail: indices are clamped, frames repeat.
"""

import difflib
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from huggingface_hub.dataclasses import validate_typed_dict
from huggingface_hub.errors import StrictDataclassFieldValidationError
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.utils import logging
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

from .video_decoding_tsf import (
    VIDEO_BACKENDS,
    FramesReader,
    PyAVReader,
    TorchCodecReader,
    VideoReader,
    describe_video,
    open_video,
    source_fps,
)
from .video_sampling_tsf import CLIP_ALIGNMENTS, SAMPLING_STRATEGIES, sample_clip_indices
from .video_transforms_tsf import (
    INTERPOLATION_MODES,
    resized_crops,
    resized_views,
    short_side_resize,
    short_side_resized_size,
    spatial_crop_offsets,
)


logger = logging.get_logger(__name__)


TSF_MEAN = [0.45, 0.45, 0.45]
TSF_STD = [0.225, 0.225, 0.225]
CHANNEL_ORDERS = ("rgb", "bgr")


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
    url_timeout (`float`): seconds to wait for the server of a URL at each step before a `TimeoutError` (30).
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
    url_timeout: float | int | None


_CALL_ONLY_KWARGS = ("train", "generator", "return_tensors")
_UNSUPPORTED_KWARGS = ("fps", "do_pad", "pad_size", "data_format", "default_to_square")
_SAVED_BOOKKEEPING_KEYS = ("auto_map", "video_processor_type", "image_processor_type", "processor_class")
_SIZE_KEYS = ("shortest_edge", "longest_edge", "height", "width")
CROP_REGION_FACTOR = 8
"""Crops are computed from the source pixels they need (`resized_crops`) instead of resizing the whole frame when the
resized frame would be more than this many times the crops' area (extreme aspect ratios only: a 16:9 video at the
largest training short side is 3.6 times one crop)."""


def check_frame_values(frames: torch.Tensor, reader: VideoReader, settings: dict[str, Any]) -> None:
    """Refuses frame values the settings would silently turn into garbage, naming the video: NaN or infinite values;
    with `do_rescale`, values outside 0-255 (e.g. frames already normalised to [-1, 1]) and float frames already in
    [0, 1] (rescaled twice, every value would end near -2). uint8 frames, and uint16 frames (mapped to 0-255 when
    read), need no check; all-zero frames pass, as rescaling cannot change them."""
    # not transformers' is_scaled_video: it would also refuse all-zero frames, which rescaling leaves alone
    if reader.source_dtype in (torch.uint8, torch.uint16):
        return
    if frames.is_floating_point() and not bool(torch.isfinite(frames).all()):
        raise ValueError(f"{reader.name}: the frames hold NaN or infinite values")
    if not settings["do_rescale"]:
        return
    low, high, top = float(frames.min()), float(frames.max()), 1 / settings["rescale_factor"]
    if reader.source_dtype.is_floating_point and low >= 0 and 0 < high <= 1:
        raise ValueError(
            f"{reader.name}: the frames are floats in [0, 1] (max {high:.4g}), so they look already rescaled, but "
            f"do_rescale=True would divide them by {top:g} again; pass do_rescale=False for frames in [0, 1], or give "
            "0-255 values (as uint8 to be unambiguous)"
        )
    if low < 0 or high > top:
        raise ValueError(
            f"{reader.name}: the frames hold values in [{low:.4g}, {high:.4g}] but do_rescale=True expects 0-{top:g} "
            "(it divides by that); frames already normalised (e.g. to [-1, 1]) need do_rescale=False and do_normalize "
            "set to match"
        )


def _stacked(frames: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Frames as one `(T, C, H, W)` tensor."""
    return frames if isinstance(frames, torch.Tensor) else torch.stack(list(frames))


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
    url_timeout = 30.0

    def __init__(self, **kwargs: Unpack[TsfVideoProcessorKwargs]):
        """Checks the options (names, types, values) as given, so a bad one fails here, not at the first call."""
        self._check_option_names(kwargs)
        super().__init__(**kwargs)
        self.resolve_settings(**{key: kwargs[key] for key in _UNSUPPORTED_KWARGS if key in kwargs})

    def _check_option_names(self, kwargs: dict[str, Any]) -> None:
        """Refuses options that look like a mistake (a field of `size`, a near miss of an option) and warns about
        other unknown ones, which are kept as attributes and ignored (as transformers does)."""
        name, options = type(self).__name__, list(self.valid_kwargs.__annotations__)
        unknown = sorted(set(kwargs) - set(options) - set(_SAVED_BOOKKEEPING_KEYS))
        for key in unknown:
            if key in _SIZE_KEYS:
                raise TypeError(f"{name}: `{key}` is not an option; pass size={{'{key}': ...}} or crop_size=...")
            close = difflib.get_close_matches(key, options, n=1)
            if close:
                raise TypeError(f"{name}: unknown option `{key}`; did you mean `{close[0]}`?")
        if unknown:
            logger.warning_once(f"{name}: ignoring unknown options {unknown}")
        self._check_types({key: value for key, value in kwargs.items() if key in options and value is not None})

    def _check_types(self, options: dict[str, Any]) -> None:
        """Checks option types against `valid_kwargs`, as a `TypeError`."""
        try:
            validate_typed_dict(self.valid_kwargs, options)
        except StrictDataclassFieldValidationError as error:
            raise TypeError(f"{type(self).__name__}: {error}") from error

    def resolve_settings(self, **kwargs: Any) -> dict[str, Any]:
        """The processor's settings with call kwargs (and `train`, `generator`) applied, validated: what
        `transform_clip` and the sampling take."""
        for key in _UNSUPPORTED_KWARGS:
            if kwargs.get(key) is not None:
                raise ValueError(f"{type(self).__name__} does not support `{key}`, got {kwargs[key]!r}")
        unknown = sorted(set(kwargs) - set(self.valid_kwargs.__annotations__) - set(_CALL_ONLY_KWARGS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {unknown}")
        self._check_types({key: value for key, value in kwargs.items() if key not in _CALL_ONLY_KWARGS})
        settings = {key: getattr(self, key, None) for key in self.valid_kwargs.__annotations__}
        settings.update({key: value for key, value in kwargs.items() if value is not None})
        sizes = {key: settings.pop(key) for key in ("size", "crop_size", "image_mean", "image_std")}
        settings.update(self._standardize_kwargs(**sizes))
        settings["train"] = bool(kwargs.get("train", False))
        settings["generator"] = kwargs.get("generator")
        self._check_settings(settings)
        return settings

    def _check_settings(self, settings: dict[str, Any]) -> None:
        """Raises a `ValueError` naming the first setting out of its range."""
        size, crop = settings["size"], settings["crop_size"]

        def require(condition: bool, message: str) -> None:
            if not condition:
                raise ValueError(f"{type(self).__name__}: {message}")

        def positive(value: Any) -> bool:
            return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < math.inf

        choices = {
            "sampling_strategy": SAMPLING_STRATEGIES,
            "clip_alignment": CLIP_ALIGNMENTS,
            "channel_order": CHANNEL_ORDERS,
            "video_backend": VIDEO_BACKENDS,
            "num_spatial_crops": (1, 3),
            "resample": tuple(INTERPOLATION_MODES),
        }
        for key, allowed in choices.items():
            require(settings[key] in allowed, f"{key} must be one of {allowed}, got {settings[key]!r}")
        for key in ("num_frames", "num_temporal_clips", "sampling_rate"):
            require(settings[key] >= 1, f"{key} must be >= 1, got {settings[key]!r}")
        require(
            positive(settings["target_fps"]), f"target_fps must be a positive number, got {settings['target_fps']!r}"
        )
        timeout = settings["url_timeout"]
        require(timeout is None or positive(timeout), f"url_timeout must be a positive number or None, got {timeout!r}")
        require(
            not settings["do_resize"] or (size.shortest_edge or 0) >= 1,
            f"size must be {{'shortest_edge': int >= 1}}, got {dict(size)}",
        )
        require(
            not settings["do_center_crop"] or min(crop.height or 0, crop.width or 0) >= 1,
            f"crop_size must have a height and width >= 1, got {dict(crop)}",
        )
        require(settings["do_center_crop"] or settings["num_spatial_crops"] == 1, "3 spatial crops need do_center_crop")
        factor = settings["rescale_factor"]
        require(not settings["do_rescale"] or positive(factor), f"rescale_factor must be positive, got {factor!r}")
        if settings["do_normalize"]:
            self._check_statistics(settings["image_mean"], settings["image_std"])
        short_sides = tuple(settings["train_short_side_range"])
        require(
            len(short_sides) == 2 and 1 <= short_sides[0] <= short_sides[1],
            f"train_short_side_range must be an ordered (low, high) of sizes >= 1, got {short_sides}",
        )
        require(
            not settings["train"] or not settings["do_center_crop"] or max(crop.height, crop.width) <= short_sides[0],
            f"train_short_side_range {short_sides} must not go below the crop size {crop.height}x{crop.width}",
        )

    def _check_statistics(self, mean: Any, std: Any) -> None:
        """`image_mean` / `image_std`: one finite number or one per channel (3), standard deviations above 0."""
        for key, values in (("image_mean", mean), ("image_std", std)):
            values = [values] if isinstance(values, numbers.Real) else list(values)
            if len(values) not in (1, 3) or not all(isinstance(value, numbers.Real) for value in values):
                raise ValueError(
                    f"{type(self).__name__}: {key} must be one number or 3 (one per RGB channel), got {values!r}"
                )
            if not all(math.isfinite(value) and (key == "image_mean" or value > 0) for value in values):
                kind = "finite numbers" if key == "image_mean" else "finite numbers above 0 (it divides)"
                raise ValueError(f"{type(self).__name__}: {key} must hold {kind}, got {values!r}")

    def transform_clip(
        self, frames: torch.Tensor | Sequence[torch.Tensor], settings: dict[str, Any] | None = None
    ) -> torch.Tensor:
        """Spatial views of one clip: `(T, C, H, W)` frames (0-255; or a sequence of `(C, H, W)` frames) to
        `(S, T, C, h, w)` normalised views, S = `num_spatial_crops` (1 in training: a random short side, random crop
        and optional flip). The value transforms (float, channel order, rescaling) apply only to the pixels the views
        need."""
        settings = settings if settings is not None else self.resolve_settings()
        generator, train = settings["generator"], settings["train"]
        short_side = None
        if settings["do_resize"]:
            short_side = settings["size"].shortest_edge
            if train:
                low, high = settings["train_short_side_range"]
                short_side = int(torch.randint(low, high + 1, (), generator=generator))
            if min(frames[0].shape[-2:]) == short_side:
                short_side = None
        mode = INTERPOLATION_MODES[settings["resample"]]
        if settings["do_center_crop"]:
            views = self._crop_views(frames, short_side, mode, settings)
        elif short_side is None:
            views = self._scaled_values(_stacked(frames), settings)[None]
        else:
            size = short_side_resized_size(*frames[0].shape[-2:], short_side)
            views = resized_views(frames, size, [(0, 0)], size, mode, self._value_writer(settings))
        if train and settings["train_flip"] and bool(torch.rand((), generator=generator) < 0.5):
            views = views.flip(-1)
        if settings["do_normalize"]:
            mean, std = self._channel_statistics(settings, views)
            views = views.sub_(mean).div_(std)  # in place: the views are this call's own tensor
        return views

    def _scaled_values(self, frames: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
        """The float32 values of `frames` (or of any part of them) before resizing: in the settings' channel order,
        rescaled."""
        values = torch.empty_like(frames, dtype=torch.float32)
        self._value_writer(settings)(frames, values)
        return values

    @staticmethod
    def _value_writer(settings: dict[str, Any]) -> Callable[[torch.Tensor, torch.Tensor], None]:
        """`write(part, out)`: writes the values `_scaled_values` gives for `part` into the float32 tensor `out`."""
        bgr, rescale, factor = settings["channel_order"] == "bgr", settings["do_rescale"], settings["rescale_factor"]

        def write(part: torch.Tensor, out: torch.Tensor) -> None:
            out.copy_(part.flip(-3) if bgr else part)
            if rescale:
                out.mul_(factor)

        return write

    def _crop_views(
        self, frames: torch.Tensor | Sequence[torch.Tensor], short_side: int | None, mode: str, settings: dict[str, Any]
    ) -> torch.Tensor:
        """The crops `(S, T, C, h, w)` of the frames' values resized to `short_side` (`None`: not resized): the
        protocol's crops, or one random crop in training. Frames whose resized size dwarfs the crops
        (`CROP_REGION_FACTOR`) are never resized whole."""
        crop_height, crop_width = settings["crop_size"].height, settings["crop_size"].width
        height, width = frames[0].shape[-2:]
        if short_side is not None:
            height, width = short_side_resized_size(height, width, short_side)
        if settings["train"]:
            if crop_height > height or crop_width > width:
                raise ValueError(f"crop {crop_height}x{crop_width} is larger than the frame {height}x{width}")
            top = int(torch.randint(0, height - crop_height + 1, (), generator=settings["generator"]))
            left = int(torch.randint(0, width - crop_width + 1, (), generator=settings["generator"]))
            offsets = [(top, left)]
        else:
            offsets = spatial_crop_offsets(height, width, crop_height, crop_width, settings["num_spatial_crops"])
        crop_size = (crop_height, crop_width)
        if short_side is None:
            frames = _stacked(frames)
            return torch.stack(
                [
                    self._scaled_values(frames[..., top : top + crop_height, left : left + crop_width], settings)
                    for top, left in offsets
                ]
            )
        if height * width > CROP_REGION_FACTOR * len(offsets) * crop_height * crop_width:
            values = self._scaled_values(_stacked(frames), settings)
            return resized_crops(values, (height, width), offsets, crop_size, mode)
        return resized_views(frames, (height, width), offsets, crop_size, mode, self._value_writer(settings))

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

    def clip_indices(
        self,
        num_source_frames: int,
        fps: float | None,
        settings: dict[str, Any],
        frame_times: np.ndarray | None = None,
    ) -> np.ndarray:
        """Frame indices `(clips, T)` the settings sample from a video of `num_source_frames` frames at `fps`
        (all frames, as one clip, when `do_sample_frames` is off); `frame_times` (seconds, `VideoReader.frame_times`)
        makes dense clips of a variable-frame-rate video span their intended time."""
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
            frame_times=frame_times,
        )

    def open_reader(self, video: Any, settings: dict[str, Any], name: str | None = None) -> VideoReader:
        """Opens one video with the settings' backend, RGB conversion, array layout (`input_data_format`) and URL
        timeout."""
        channels_last = None
        if settings["input_data_format"] is not None:
            data_format = settings["input_data_format"]
            channels_last = str(getattr(data_format, "value", data_format)) == "channels_last"
        return open_video(
            video, name, settings["video_backend"], settings["do_convert_rgb"], channels_last, settings["url_timeout"]
        )

    def read_views(self, reader: VideoReader, indices: np.ndarray, settings: dict[str, Any]) -> torch.Tensor:
        """Reads the frames at `indices` `(clips, T)` and returns their `(clips * S, T, C, h, w)` views, clip-major,
        after checking their values (`check_frame_values`). Decoded frames are never stacked into one tensor: the
        views need one frame at a time."""
        flat = indices.reshape(-1)
        if reader.source_dtype == torch.uint8:  # nothing to check
            frames = reader.get_frame_list(flat)
        else:
            frames = reader.get_frames(flat)
            check_frame_values(frames, reader, settings)
        if settings["device"] is not None:
            frames = [frame.to(settings["device"]) for frame in frames]
        length = indices.shape[-1]
        views = [self.transform_clip(frames[start : start + length], settings) for start in range(0, len(flat), length)]
        return views[0] if len(views) == 1 else torch.cat(views)

    def _split_videos(self, videos: Any) -> list:
        """The videos of a call: one video, or a batch (list / 5-D array)."""
        # not transformers' make_batched_videos: it refuses Path, bytes, rows, file objects and (H, W) frames
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
            videos: one video or a list of videos; a video is a path or URL, file object, `bytes`, a `datasets` row
                (`{"path", "bytes"}`, or the torchcodec `VideoDecoder` of the default `Video()` feature), numpy
                `(T, H, W, C)`, torch `(T, C, H, W)` or a list of frames. Frame values are 0-255 (uint8, float or
                other integers) or full-range uint16; floats already in [0, 1] need `do_rescale=False` (else a
                `ValueError`, as for values outside 0-255, NaN or infinity: `check_frame_values`).
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
            name = describe_video(video, index)
            self._check_input(video, name)
            with self.open_reader(video, settings, name) as reader:
                given = metadata[index] if metadata is not None else None
                fps = source_fps(reader, given)
                # a frame rate given for the video means evenly spaced frames; else the file's timestamps count
                given_fps = given is not None and dict(given).get("fps") is not None
                indices = self.clip_indices(reader.num_frames, fps, settings, None if given_fps else reader.frame_times)
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
        # one video needs no copy
        pixel_values = outputs[0][None].contiguous() if len(outputs) == 1 else torch.stack(outputs)
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


__all__ = [
    "CHANNEL_ORDERS",
    "CLIP_ALIGNMENTS",
    "INTERPOLATION_MODES",
    "SAMPLING_STRATEGIES",
    "TSF_MEAN",
    "TSF_STD",
    "VIDEO_BACKENDS",
    "FramesReader",
    "PyAVReader",
    "TorchCodecReader",
    "TsfProcessingMixin",
    "TsfVideoProcessor",
    "TsfVideoProcessorKwargs",
    "VideoReader",
    "check_frame_values",
    "describe_video",
    "open_video",
    "sample_clip_indices",
    "short_side_resize",
    "source_fps",
    "spatial_crop_offsets",
]
