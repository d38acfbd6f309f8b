"""Unusual and bad inputs to the video processor: each gives the right result or an error naming the video (its path
or batch index) and the problem. Rotated videos, URLs that never answer, variable frame rates, truncated Matroska,
frame values and dtypes, extreme aspect ratios, metadata and options, and `datasets`' torchcodec decoders."""

import math
import socket
import threading
import time
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from conftest import decode_all, synthetic_frame
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from transformers.testing_utils import CaptureLogger

import tsf_hf.video_processing_tsf as video_processing
from tsf_hf import TsfImageProcessor, TsfVideoProcessor
from tsf_hf.video_processing_tsf import open_video, short_side_resize, spatial_crop_offsets


SMALL = {"size": {"shortest_edge": 24}, "crop_size": 24, "num_frames": 4}


def write_frames(path, frames: np.ndarray, fps: int = 30, **display) -> str:
    """Writes `(T, H, W, 3)` uint8 frames losslessly (H.264 4:4:4, qp 0; FFV1 for .mkv) with an optional display
    matrix (`rotation`, `hflip`, `vflip` as PyAV's `set_display_rotation` takes them)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        stream.options = {"qp": "0"}
        if display:
            stream.set_display_rotation(
                display.get("rotation", 0), display.get("hflip", False), display.get("vflip", False)
            )
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


# ---------------------------------------------------------------------------------------------------------------
# Rotation (display matrix)

needs_display_matrix_writer = pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"), reason="PyAV < 18 cannot write a display matrix"
)


@needs_display_matrix_writer
@pytest.mark.parametrize("rotation", [0, 90, 180, -90])
@pytest.mark.parametrize("hflip, vflip", [(False, False), (True, False), (False, True), (True, True)])
def test_frames_are_turned_as_players_show_them(tmp_path, rotation, hflip, vflip):
    """PyAV documents the display matrix as a counter-clockwise rotation by `rotation` degrees, then the flips; the
    reader's frames are the stored frames turned that way."""
    frames = np.stack([synthetic_frame(index, 24, 40) for index in range(6)])
    frames[:, :6, :6] = 255  # a corner marks the orientation
    plain = write_frames(tmp_path / "plain.mp4", frames)
    turned = write_frames(tmp_path / "turned.mp4", frames, rotation=rotation, hflip=hflip, vflip=vflip)
    expected = np.rot90(decode_all(plain), rotation // 90, axes=(1, 2))
    expected = expected[:, :, ::-1] if hflip else expected
    expected = expected[:, ::-1] if vflip else expected
    with open_video(turned, backend="pyav") as reader:
        assert reader.frame_size == expected.shape[1:3]
        got = reader.get_frames([5, 0, 3])
    np.testing.assert_array_equal(got.permute(0, 2, 3, 1).numpy(), expected[[5, 0, 3]])
    output = TsfVideoProcessor(**SMALL, do_center_crop=False)(turned, return_metadata=True)
    reference = TsfVideoProcessor(**SMALL, do_center_crop=False)(np.ascontiguousarray(expected))
    assert torch.equal(output["pixel_values"], reference["pixel_values"])
    assert (output["video_metadata"][0].height, output["video_metadata"][0].width) == expected.shape[1:3]


@needs_display_matrix_writer
def test_rotation_other_than_quarter_turns_is_refused(tmp_path):
    frames = np.stack([synthetic_frame(index, 24, 40) for index in range(3)])
    path = tmp_path / "tilted.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 40, 24, "yuv420p"
        cosine, sine = round(math.cos(math.pi / 4) * 65536), round(math.sin(math.pi / 4) * 65536)
        stream.set_display_matrix([cosine, -sine, 0, sine, cosine, 0, 0, 0, 1 << 30])
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(ValueError, match=f"'{path}': the display matrix rotates the frames by -?45 degrees"):
        TsfVideoProcessor(**SMALL)(str(path))


# ---------------------------------------------------------------------------------------------------------------
# URLs


def test_url_that_never_answers_times_out(small_video):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def accept_and_stay_silent() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_stay_silent, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/video.mp4"
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=f"'{url}': no answer within 0.5 s"):
            TsfVideoProcessor(**SMALL, url_timeout=0.5)([str(small_video), url])
        assert time.monotonic() - started < 10
        assert TsfVideoProcessor().url_timeout == 30
        with pytest.raises(ValueError, match="url_timeout must be a positive number"):
            TsfVideoProcessor(url_timeout=0)
        with pytest.raises(ValueError, match=f"'{url}': URLs are read with PyAV"):
            open_video(url, backend="torchcodec")
    finally:
        server.close()
        for connection in accepted:
            connection.close()


# ---------------------------------------------------------------------------------------------------------------
# Variable frame rate, truncated Matroska


def test_variable_frame_rate_is_sampled_by_timestamps(tmp_path):
    """A Matroska file whose stream says 1000 fps (its time base) but holds 20 frames 10 ms apart, then 20 frames
    50 ms apart: a dense clip of 4 frames 2 apart at 30 fps spans 8/30 s of time, centred in the video's 1.151 s."""
    path = tmp_path / "vfr.mkv"
    times_ms = [10 * index for index in range(20)] + [200 + 50 * index for index in range(20)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, time_ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(index, 48, 64), format="rgb24")
            frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    processor = TsfVideoProcessor(**SMALL, sampling_strategy="dense", sampling_rate=2)
    output = processor(str(path), return_metadata=True)
    metadata = output["video_metadata"][0]
    assert metadata.fps == 1000 and metadata.total_num_frames == 40
    # span 4 * 2 * 1000 / 30 = 266.7 ms from 442.2 ms (centred): times 442.2, 530.7, 619.3, 707.8 ms show the frames
    # that started at 400, 500, 600 and 700 ms (counting frames at the stated 1000 fps would give [0, 39, 39, 39])
    np.testing.assert_array_equal(metadata.frames_indices, [[24, 26, 28, 30]])
    expected = processor(decode_all(path)[[24, 26, 28, 30]], do_sample_frames=False)["pixel_values"]
    assert torch.equal(output["pixel_values"], expected)
    # a frame rate given for the video means evenly spaced frames: counted, as for arrays
    counted = processor(str(path), video_metadata={"fps": 30}, return_metadata=True)
    np.testing.assert_array_equal(counted["video_metadata"][0].frames_indices, [[16, 18, 20, 23]])


@pytest.mark.parametrize("extension, codec", [("webm", "libvpx"), ("mkv", "libx264")])
def test_truncated_matroska_is_named(tmp_path, extension, codec):
    full = tmp_path / f"full.{extension}"
    noise = np.random.default_rng(0).integers(0, 256, (30, 48, 64, 3), dtype=np.uint8)  # the data outweighs headers
    with av.open(str(full), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in noise:  # 1.0 s
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with open_video(full, backend="pyav") as reader:
        assert reader.num_frames == 30
    cut = tmp_path / f"cut.{extension}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    message = (
        f"'{cut}': the file is truncated: its header declares 1.000 s of video but the video data ends at 0.[0-9]+ s"
    )
    with pytest.raises(ValueError, match=message):
        TsfVideoProcessor(**SMALL)([str(full), str(cut)])


# ---------------------------------------------------------------------------------------------------------------
# Frame values and dtypes


def test_frame_values_outside_the_rescaled_range_are_refused():
    frames = np.stack([synthetic_frame(index, 48, 64) for index in range(4)])
    processor = TsfVideoProcessor(**SMALL)
    signed = frames.astype(np.float32) / 127.5 - 1  # [-1, 1]
    with pytest.raises(ValueError, match=r"video 1: the frames hold values in \[-1, 1\] but do_rescale=True expects"):
        processor([frames, signed])
    assert processor(signed, do_rescale=False, image_mean=0.0, image_std=1.0)["pixel_values"].min() == -1
    with pytest.raises(ValueError, match=r"video 0: the frames hold values in .* expects 0-255"):
        processor(frames.astype(np.int64) * 4)
    assert torch.equal(processor(frames.astype(np.int64))["pixel_values"], processor(frames)["pixel_values"])
    for bad in (np.nan, np.inf):
        broken = frames.astype(np.float32)
        broken[2, 5, 5, 1] = bad
        with pytest.raises(ValueError, match="video 1: the frames hold NaN or infinite values"):
            processor([frames, broken])
        with pytest.raises(ValueError, match="NaN or infinite"):
            processor(broken, do_rescale=False)


def test_uint16_frames_are_read_as_full_range_16_bit():
    frames = np.stack([synthetic_frame(index, 48, 64) for index in range(4)])
    sixteen = frames.astype(np.uint16) * 257  # 255 -> 65535
    processor = TsfVideoProcessor(**SMALL)
    reference = processor(frames)["pixel_values"]
    assert torch.equal(processor(sixteen)["pixel_values"], reference)
    assert torch.equal(processor(torch.from_numpy(sixteen).permute(0, 3, 1, 2))["pixel_values"], reference)
    assert torch.equal(processor(sixteen.astype(">u2"))["pixel_values"], reference)  # big-endian, as PIL's I;16B
    gray = [Image.fromarray(frame[..., 0].astype(np.uint16) * 257) for frame in frames]  # PIL mode I;16
    assert gray[0].mode.startswith("I;16")
    expected = processor(np.repeat(frames[..., :1], 3, -1))["pixel_values"]
    assert torch.equal(TsfImageProcessor(**SMALL)(gray)["pixel_values"], expected)


def test_non_numeric_and_empty_frames_are_refused():
    processor = TsfVideoProcessor(**SMALL)
    with pytest.raises(TypeError, match=r"video 0: expected frames of numbers .* got numpy dtype object"):
        processor(np.empty((4, 8, 8, 3), dtype=object))
    with pytest.raises(TypeError, match="video 1, frame 0: expected frames of numbers"):
        processor([np.zeros((4, 8, 8, 3), np.uint8), [np.array([["a"]])]])
    with pytest.raises(ValueError, match="video 0: the frames are 0x64 pixels"):
        processor(np.zeros((4, 0, 64, 3), np.uint8))


# ---------------------------------------------------------------------------------------------------------------
# Extreme aspect ratios


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor a torch operation returns."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for tensor in output if isinstance(output, (tuple, list)) else [output]:
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return output


def full_resize_views(frames: np.ndarray, short_side: int, crop: int, num_crops: int, mode: str) -> torch.Tensor:
    """The protocol computed by resizing whole frames, then cropping: `(num_crops, T, C, crop, crop)`."""
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float() * (1 / 255)
    resized = short_side_resize(clip, short_side, mode)
    offsets = spatial_crop_offsets(*resized.shape[-2:], crop, crop, num_crops)
    views = torch.stack([resized[..., top : top + crop, left : left + crop] for top, left in offsets])
    return (views - 0.45) / 0.225


@pytest.mark.parametrize("num_crops", [1, 3])
def test_normal_videos_are_resized_whole_bit_for_bit(num_crops):
    frames = np.random.default_rng(0).integers(0, 256, (4, 90, 160, 3), dtype=np.uint8)  # 16:9
    for resample, mode in ((0, "nearest"), (2, "bilinear"), (3, "bicubic")):
        processor = TsfVideoProcessor(num_frames=4, size={"shortest_edge": 64}, crop_size=56, resample=resample)
        views = processor(frames, num_spatial_crops=num_crops)["pixel_values"][0]
        expected = full_resize_views(frames, 64, 56, num_crops, mode)
        assert torch.equal(views, expected[0] if num_crops == 1 else expected), mode


@pytest.mark.parametrize("height, width", [(16, 400), (400, 16)])
def test_extreme_aspect_ratios_compute_only_the_crops(height, width):
    frames = np.random.default_rng(1).integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    for resample, mode, tolerance in ((0, "nearest", 0), (2, "bilinear", 1e-5), (3, "bicubic", 2e-5)):
        for num_crops in (1, 3):
            processor = TsfVideoProcessor(num_frames=4, resample=resample, num_spatial_crops=num_crops)
            views = processor(frames)["pixel_values"][0]
            expected = full_resize_views(frames, 224, 224, num_crops, mode)
            torch.testing.assert_close(views, expected[0] if num_crops == 1 else expected, atol=tolerance, rtol=0)


def test_extreme_aspect_ratio_memory_follows_the_output():
    """An 8-frame 16x4000 video would resize to 224x56000 (301M values, 1.2 GiB) for one 224x224 crop."""
    frames = np.random.default_rng(2).integers(0, 256, (8, 16, 4000, 3), dtype=np.uint8)
    processor = TsfVideoProcessor(num_frames=8)
    with LargestTensor() as recorder:
        pixel_values = processor(frames)["pixel_values"]
    assert pixel_values.shape == (1, 8, 3, 224, 224)
    assert recorder.largest <= 4 * 8 * 3 * 224 * 224  # a few times the output (the interpolation taps)


# ---------------------------------------------------------------------------------------------------------------
# Metadata and options


@pytest.mark.parametrize("fps", [0, -30, float("nan"), float("inf")])
def test_bad_frame_rates_are_refused(fps):
    frames = np.stack([synthetic_frame(index, 48, 64) for index in range(8)])
    with pytest.raises(
        ValueError, match=f"video 1: video_metadata gives fps={fps!r}; a frame rate must be a positive number"
    ):
        TsfVideoProcessor(**SMALL)([frames, frames], video_metadata=[{"fps": 30}, {"fps": fps}])


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"target_fps": 0}, ValueError, "target_fps must be a positive number, got 0"),
        ({"size": {"shortest_edge": 0}}, ValueError, "size must be {'shortest_edge': int >= 1}"),
        ({"shortest_edge": 0}, TypeError, "`shortest_edge` is not an option; pass size="),
        ({"crop_size": 0}, ValueError, "crop_size must have a height and width >= 1"),
        ({"image_mean": [0.5, 0.5]}, ValueError, "image_mean must be one number or 3"),
        ({"image_std": [0.2, 0.0, 0.2]}, ValueError, "image_std must hold finite numbers above 0"),
        ({"image_std": 0.0}, ValueError, "image_std must hold finite numbers above 0"),
        ({"image_mean": [0.5, float("nan"), 0.5]}, ValueError, "image_mean must hold finite numbers"),
        ({"rescale_factor": 0.0}, ValueError, "rescale_factor must be positive"),
        ({"train_short_side_range": [320, 256]}, ValueError, "train_short_side_range must be an ordered"),
        ({"num_frame": 4}, TypeError, "unknown option `num_frame`; did you mean `num_frames`"),
        ({"num_frames": "8"}, TypeError, "Field 'num_frames' with value '8'"),
        ({"fps": 2}, ValueError, "does not support `fps`"),
    ],
)
def test_bad_options_fail_at_construction(options, error, message):
    for processor_class in (TsfVideoProcessor, TsfImageProcessor):
        with pytest.raises(error, match=message.replace("{", "\\{").replace("(", "\\(").replace(")", "\\)")):
            processor_class(**options)


def test_bad_options_fail_at_call_and_unknown_saved_keys_are_tolerated(small_video, tmp_path):
    processor = TsfVideoProcessor(**SMALL)
    with pytest.raises(ValueError, match="target_fps must be a positive number"):
        processor(str(small_video), target_fps=0)
    with pytest.raises(ValueError, match="image_std must hold finite numbers above 0"):
        processor(str(small_video), image_std=[0.2, 0.2, 0.0])
    logger = video_processing.logger
    with CaptureLogger(logger) as captured:
        odd = TsfVideoProcessor(**SMALL, some_future_option=1)
    assert "ignoring unknown options ['some_future_option']" in captured.out
    odd.save_pretrained(tmp_path)
    assert TsfVideoProcessor.from_pretrained(tmp_path).num_frames == 4


# ---------------------------------------------------------------------------------------------------------------
# datasets rows decoded by the default Video() feature: torchcodec VideoDecoder objects


class VideoDecoder:
    """Stands in for torchcodec's `VideoDecoder` (torchcodec is optional): the same name, module and the API the
    reader uses, over decoded frames."""

    __module__ = "torchcodec.decoders._video_decoder"

    def __init__(self, frames: np.ndarray, fps: float = 30.0, rotation_aware: bool = True):
        self._frames = torch.from_numpy(frames).permute(0, 3, 1, 2)
        count, height, width = frames.shape[:3]
        fields = dict(num_frames=count, average_fps=fps, height=height, width=width, num_frames_from_header=count)
        fields["num_frames_from_content"] = count
        if rotation_aware:
            fields["rotation"] = None
        self.metadata = SimpleNamespace(**fields)

    def get_frames_at(self, indices: list[int]) -> SimpleNamespace:
        return SimpleNamespace(data=self._frames[indices])


def test_torchcodec_decoders_from_datasets_are_read(small_video):
    frames = decode_all(small_video)
    processor = TsfVideoProcessor(**SMALL, sampling_strategy="dense", sampling_rate=2)
    reference = processor(str(small_video), video_backend="pyav")["pixel_values"]
    assert torch.equal(processor(VideoDecoder(frames))["pixel_values"], reference)
    batch = processor([VideoDecoder(frames), VideoDecoder(frames)], return_metadata=True)
    assert torch.equal(batch["pixel_values"][1:], reference)
    assert batch["video_metadata"][0].video_backend == "torchcodec"
    with pytest.raises(ImportError, match=r"video 1: this torchcodec does not turn frames .* Video\(decode=False\)"):
        processor([VideoDecoder(frames), VideoDecoder(frames, rotation_aware=False)])
