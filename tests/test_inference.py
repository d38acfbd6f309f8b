"""Long-video classification: the same numbers as the processor's multi-clip views, with bounded decoding."""

from typing import Any

import numpy as np
import pytest
import torch
from conftest import decode_all

from tsf_hf import TsfConfig, TsfForVideoClassification, TsfImageProcessor, TsfVideoProcessor
from tsf_hf.inference import classify_long_video
from tsf_hf.video_processing_tsf import PyAVReader


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = TsfConfig(
        image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2},
    )
    return TsfForVideoClassification(config).eval()


@pytest.fixture(scope="module")
def long_video(video_factory):
    return video_factory(num_frames=600, gop_size=30)


def processor(**kwargs: Any) -> TsfVideoProcessor:
    return TsfVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4, **kwargs)


@pytest.mark.parametrize("strategy", ["uniform", "dense"])
def test_matches_the_processor_views(model, long_video, strategy):
    video_processor = processor(sampling_strategy=strategy, sampling_rate=2, num_spatial_crops=3)
    prediction = classify_long_video(
        model, video_processor, str(long_video), num_clips=7, clips_per_batch=3, progress=False
    )
    inputs = video_processor(str(long_video), num_temporal_clips=7, return_tensors="pt", return_metadata=True)
    assert inputs["pixel_values"].shape == (1, 21, 4, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values=inputs["pixel_values"]).logits[0]
    torch.testing.assert_close(prediction.logits, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(prediction.clip_indices, inputs["video_metadata"][0].frames_indices)
    assert prediction.clip_logits.shape == (7, 3) and prediction.num_source_frames == 600 and prediction.fps == 30
    # evenly spaced clips cover the video
    starts = prediction.clip_indices[:, 0]
    assert starts[0] < 100 and starts[-1] > 450 and np.ptp(np.diff(starts)) <= 2
    assert [entry["label"] for entry in prediction.top_k(model.config.id2label, k=2)] == [
        model.config.id2label[int(i)] for i in expected.topk(2).indices
    ]


def test_memory_is_bounded_by_one_batch(model, long_video, monkeypatch, capsys):
    calls = []
    get_frame_list = PyAVReader.get_frame_list

    def counting_get_frame_list(self, indices):
        decoded_before = self.num_decoded_frames
        frames = get_frame_list(self, indices)
        calls.append((len(frames), self.num_decoded_frames - decoded_before))
        return frames

    monkeypatch.setattr(PyAVReader, "get_frame_list", counting_get_frame_list)
    video_processor = processor(sampling_strategy="dense", sampling_rate=2, video_backend="pyav")
    prediction = classify_long_video(model, video_processor, str(long_video), num_clips=6, clips_per_batch=2)
    assert prediction.logits.shape == (3,)
    # three batches of 2 clips x 4 frames: never the whole video in memory, nor decoded
    assert [held for held, _ in calls] == [8, 8, 8]
    decoded = [count for _, count in calls]
    assert max(decoded) <= 2 * (30 + 8) and sum(decoded) < 600 / 2
    assert "clips" in capsys.readouterr().err  # tqdm progress bar


def test_short_video_and_frames(model, video_factory):
    video_processor = processor(sampling_strategy="dense")
    short_video = str(video_factory(num_frames=5))
    prediction = classify_long_video(model, video_processor, short_video, num_clips=10, progress=False)
    assert prediction.clip_logits.shape == (10, 3) and prediction.clip_indices.max() <= 4
    frames = np.zeros((50, 40, 40, 3), dtype=np.uint8)
    assert classify_long_video(model, video_processor, frames, num_clips=3, progress=False).logits.shape == (3,)
    # an image processor (which keeps all frames by default) still samples clips here
    image_processor = TsfImageProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    prediction = classify_long_video(model, image_processor, frames, num_clips=3, progress=False)
    assert prediction.clip_indices.shape == (3, 4)
    with pytest.raises(ValueError, match="clips_per_batch must be >= 1"):
        classify_long_video(model, video_processor, frames, clips_per_batch=0)


def test_array_frames_take_the_fps_and_value_checks_of_the_processor(model, video_factory):
    frames = decode_all(video_factory(num_frames=90, fps=15))
    video_processor = processor(sampling_strategy="dense", sampling_rate=2, video_backend="pyav")
    prediction = classify_long_video(
        model, video_processor, frames, num_clips=3, progress=False, video_metadata={"fps": 15}
    )
    inputs = video_processor(frames, num_temporal_clips=3, video_metadata={"fps": 15}, return_metadata=True)
    assert prediction.fps == 15
    np.testing.assert_array_equal(prediction.clip_indices, inputs["video_metadata"][0].frames_indices)
    assert prediction.clip_indices[0, -1] - prediction.clip_indices[0, 0] == 3  # span 4 * 2 * 15 / 30 frames
    with pytest.raises(ValueError, match="the frames are floats in \\[0, 1\\]"):
        classify_long_video(model, video_processor, frames.astype(np.float32) / 255, num_clips=3, progress=False)
    unit = classify_long_video(
        model, video_processor, frames.astype(np.float32) / 255, num_clips=3, progress=False,
        video_metadata={"fps": 15}, do_rescale=False,
    )
    torch.testing.assert_close(unit.logits, prediction.logits, atol=1e-5, rtol=0)
    channels_first = classify_long_video(
        model, video_processor, np.ascontiguousarray(frames.transpose(0, 3, 1, 2)), num_clips=3, progress=False,
        video_metadata={"fps": 15}, input_data_format="channels_first",
    )
    torch.testing.assert_close(channels_first.logits, prediction.logits, atol=0, rtol=0)
