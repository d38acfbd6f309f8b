"""The fine-tuning examples (Trainer and Accelerate) and the shipped top-k accuracy metric.

The scripts run in subprocesses on a small generated moving-square dataset; runs are short (a few steps of the
~180k-parameter preset). The full-accuracy run is `slow`.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import VIDEO_PROCESSOR_FILES, tiny_vit
from hub_mock import MockHub
from safetensors.numpy import load_file

from tsf_hf.metrics import TOPK_ACCURACY_PATH, load_topk_accuracy
from tsf_hf.metrics.topk_accuracy.topk_accuracy import topk_accuracy
from tsf_hf.synthetic import DIRECTIONS, MovingSquareConfig, generate_moving_square_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAINER = EXAMPLES / "run_video_classification.py"
NO_TRAINER = EXAMPLES / "run_video_classification_no_trainer.py"
SMALL_DATA = ["--builtin_num_train", "32", "--builtin_num_validation", "9", "--builtin_num_test", "4"]
PUSHED_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "configuration_tsf.py",
    "modeling_tsf.py",
    "video_preprocessor_config.json",
} | VIDEO_PROCESSOR_FILES

sys.path.insert(0, str(EXAMPLES))
import video_classification_common as common  # noqa: E402


def offline_env(**extra) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", **extra)
    env.pop("HF_ENDPOINT", None)
    return env


def run(args: list, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], env=env or offline_env(), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{args[:3]} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """A cache folder holding the small built-in dataset the runs share."""
    folder = tmp_path_factory.mktemp("cache")
    generate_moving_square_dataset(folder / "tsf_hf", MovingSquareConfig(num_train=32, num_validation=9, num_test=4))
    return folder


def weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(first: Path, second: Path, tolerance: float = 1e-6) -> None:
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[key] - b[key]).max()) for key in a)
    assert worst <= tolerance, f"weights differ by up to {worst}"


def assert_pipeline_loads(folder: Path, video: Path) -> None:
    from transformers import pipeline

    predictions = pipeline("video-classification", model=str(folder), device="cpu")(str(video), top_k=4)
    assert {p["label"] for p in predictions} == set(DIRECTIONS)
    assert abs(sum(p["score"] for p in predictions) - 1.0) < 1e-4


# ---------------------------------------------------------------------------------------------------------------------
# Metric


def test_topk_accuracy_values_and_ties():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [1.0, 1.0, 1.0]])
    references = np.array([2, 0, 0, 1])
    result = topk_accuracy(scores, references, top_k=(1, 2, 5))
    # ties are broken as argmax does (lowest index first): row 3 is a top-1 miss for class 1, a top-2 hit
    assert result == {"top1_accuracy": 0.25, "top2_accuracy": 0.75, "top5_accuracy": 1.0}
    with pytest.raises(ValueError, match=r"\(N, num_classes\)"):
        topk_accuracy(scores[0], references)
    with pytest.raises(ValueError, match="class ids in"):
        topk_accuracy(scores, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="top_k values must be >= 1"):
        topk_accuracy(scores, references, top_k=(0,))


def test_metric_loads_offline_with_evaluate(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(TOPK_ACCURACY_PATH)
    rng = np.random.default_rng(0)
    scores, references = rng.normal(size=(50, 7)), rng.integers(0, 7, size=50)
    metric.add_batch(predictions=scores[:20], references=references[:20])
    metric.add_batch(predictions=scores[20:], references=references[20:])
    result = metric.compute(top_k=[1, 5])
    expected_top1 = float((scores.argmax(1) == references).mean())
    expected_top5 = float(np.mean([r in np.argsort(-s)[:5] for s, r in zip(scores, references)]))
    assert result == pytest.approx({"top1_accuracy": expected_top1, "top5_accuracy": expected_top5})
    assert load_topk_accuracy().compute(predictions=[[0.0, 1.0]], references=[1]) == {
        "top1_accuracy": 1.0,
        "top5_accuracy": 1.0,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Data helpers


def test_bad_video_is_skipped_or_fails_by_path(tmp_path, cache_dir):
    from datasets import Dataset, Features, Video

    good = sorted((cache_dir / "tsf_hf").glob("*/train/*/*.mp4"))[:3]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(500))
    rows = {"video": [str(good[0]), str(broken), str(good[1]), str(good[2])]}
    dataset = Dataset.from_dict(rows, features=Features({"video": Video(decode=False)}))

    cache = common.DecodedVideoCache(budget_mb=64, backend="pyav")
    with pytest.raises(ValueError, match="broken.mp4"):
        common.check_videos(dataset, "video", cache, "error", "train", progress=False)

    cache = common.DecodedVideoCache(budget_mb=64, backend="pyav")
    kept = common.check_videos(dataset, "video", cache, "skip", "train", progress=False)
    assert [row["path"] for row in kept["video"]] == [str(good[0]), str(good[1]), str(good[2])]
    # the cache follows the new positions
    frames, _ = cache.decode(kept[1]["video"], ("train", 1))
    assert frames.shape == (8, 3, 32, 32) and set(cache.entries) == {("train", 0), ("train", 1), ("train", 2)}


def test_decoded_splits_are_reused_from_disk(tmp_path, cache_dir, monkeypatch):
    from datasets import Dataset, Features, Video

    good = []
    for index, source in enumerate(sorted((cache_dir / "tsf_hf").glob("*/train/*/*.mp4"))[:3]):
        good.append(tmp_path / f"{index}.mp4")
        shutil.copy(source, good[-1])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    rows = {"video": [str(good[0]), str(broken), str(good[1]), str(good[2])]}
    dataset = Dataset.from_dict(rows, features=Features({"video": Video(decode=False)}))
    first = common.DecodedVideoCache(budget_mb=64, backend="pyav")
    kept = common.check_videos(dataset, "video", first, "skip", "train", False, tmp_path / "decoded")
    assert len(list((tmp_path / "decoded").glob("train-*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(common, "open_video", no_decoding)
    second = common.DecodedVideoCache(budget_mb=64, backend="pyav")
    kept_again = common.check_videos(dataset, "video", second, "skip", "train", False, tmp_path / "decoded")
    assert kept_again["video"] == kept["video"] and len(kept_again) == 3
    assert second.entries.keys() == first.entries.keys()
    for key, (frames, fps) in first.entries.items():
        assert np.array_equal(second.entries[key][0].numpy(), frames.numpy()) and second.entries[key][1] == fps
    with pytest.raises(ValueError, match="broken.mp4"):  # the bad video is remembered with its path
        common.check_videos(
            dataset, "video", common.DecodedVideoCache(64, "pyav"), "error", "train", False, tmp_path / "decoded"
        )
    # a changed file changes the key: decoded again
    os.utime(good[0], ns=(1, 1))
    with pytest.raises(ValueError, match="decoded again"):
        common.check_videos(
            dataset, "video", common.DecodedVideoCache(64, "pyav"), "error", "train", False, tmp_path / "decoded"
        )


def test_bad_video_in_a_script_run_is_named(tmp_path, cache_dir):
    source = next((cache_dir / "tsf_hf").glob("moving_square-*"))
    data = tmp_path / "data"
    for split in ("train", "validation"):
        shutil.copytree(source / split, data / split)
    (data / "train" / "left" / "corrupt.mp4").write_bytes(b"not a video at all")
    common_args = [
        "--train_dir",
        data / "train",
        "--validation_dir",
        data / "validation",
        "--cache_dir",
        tmp_path / "c",
        "--max_train_steps",
        "1",
        "--per_device_train_batch_size",
        "8",
        "--no_prediction",
    ]
    failed = subprocess.run(
        [sys.executable, NO_TRAINER, *common_args, "--output_dir", tmp_path / "a", "--on_bad_video", "error"],
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert failed.returncode != 0 and "corrupt.mp4" in failed.stderr and "could not be decoded" in failed.stderr
    skipped = run([sys.executable, NO_TRAINER, *common_args, "--output_dir", tmp_path / "b"])
    assert (
        "Skipping 1 train video(s)" in skipped.stderr + skipped.stdout
        and "corrupt.mp4" in skipped.stderr + skipped.stdout
    )


def test_videofolder_without_validation_is_split(tmp_path, cache_dir):
    import argparse

    source = next((cache_dir / "tsf_hf").glob("moving_square-*"))
    parser = argparse.ArgumentParser()
    common.add_common_arguments(parser)
    args = parser.parse_args(
        [
            "--train_dir",
            str(source / "train"),
            "--cache_dir",
            str(tmp_path),
            "--train_val_split",
            "0.25",
            "--max_train_samples",
            "20",
        ]
    )
    dataset, labels = common.load_video_datasets(args, seed=0)
    assert labels == sorted(DIRECTIONS) and len(dataset["validation"]) == 8 and len(dataset["train"]) == 20
    paths = lambda split: {row["path"] for row in dataset[split]["video"]}  # noqa: E731
    assert not paths("train") & paths("validation")
    assert common.uses_builtin_dataset(parser.parse_args([])) and not common.uses_builtin_dataset(args)


def test_no_decay_on_biases_norms_and_tables():
    names = [
        "tsf.embeddings.cls_token",
        "tsf.embeddings.position_embeddings",
        "tsf.embeddings.time_embeddings",
        "tsf.layers.0.norm.weight",
        "tsf.layernorm.bias",
        "classifier.bias",
    ]
    assert not any(common.decays(name) for name in names)
    assert common.decays("tsf.layers.0.mlp.fc1.weight") and common.decays("classifier.weight")


# ---------------------------------------------------------------------------------------------------------------------
# Script runs


def resume_and_push(base: list, output_dir: Path, checkpoint: Path, repo_id: str, tmp_path: Path) -> dict:
    """Runs the script command `base` resumed from `checkpoint` into `output_dir`, pushing to `repo_id` on a mock
    Hub; returns the pushed files."""
    with MockHub() as hub:
        env = hub.environment(tmp_path / "home", offline_env())
        arguments = ["--output_dir", output_dir, "--resume_from_checkpoint", checkpoint, "--no_prediction"]
        run([*base, *arguments, "--push_to_hub", "--hub_model_id", repo_id], env=env)
        return hub.files(repo_id)


def test_trainer_script_resumes_exactly_saves_a_pipeline_folder_and_pushes(tmp_path, cache_dir):
    base = [
        sys.executable,
        TRAINER,
        "--cache_dir",
        cache_dir,
        *SMALL_DATA,
        "--per_device_train_batch_size",
        "8",
        "--num_train_epochs",
        "2",
        "--checkpointing_steps",
        "3",
        "--save_total_limit",
        "10",
        "--seed",
        "3",
    ]
    full = tmp_path / "full"
    result = run([*base, "--output_dir", full])
    assert "eval_top1_accuracy" in result.stdout and "Held-out video" in result.stdout
    summary = json.loads((full / "results_summary.json").read_text())
    assert summary["eval_samples"] == 9 and summary["train_steps"] == 8
    assert (full / "checkpoint-3").is_dir() and (full / "checkpoint-6").is_dir()
    video = next((cache_dir / "tsf_hf").glob("*/test/*/*.mp4"))
    assert_pipeline_loads(full, video)

    # resume from the step-3 checkpoint of the same run (what an interrupted run leaves) into another folder
    resumed = tmp_path / "resumed"
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    files = resume_and_push(base, resumed, resumed / "checkpoint-3", "testuser/tsf-trainer-test", tmp_path)
    assert_same_weights(full, resumed)
    assert PUSHED_FILES <= set(files) and not any(name.startswith("checkpoint-") for name in files)
    assert (
        "eval_top1_accuracy" in files["README.md"].decode()
        and "pipeline_tag: video-classification" in files["README.md"].decode()
        and "testuser/tsf-trainer-test" in files["README.md"].decode()
    )


def test_accelerate_script_resumes_exactly_and_pushes(tmp_path, cache_dir):
    base = [
        sys.executable,
        NO_TRAINER,
        "--cache_dir",
        cache_dir,
        *SMALL_DATA,
        "--per_device_train_batch_size",
        "8",
        "--max_train_steps",
        "7",
        "--checkpointing_steps",
        "3",
        "--seed",
        "3",
    ]
    full = tmp_path / "full"
    result = run([*base, "--output_dir", full])
    assert "Held-out video" in result.stdout
    all_results = json.loads((full / "all_results.json").read_text())
    assert all_results["eval_samples"] == 9 and all_results["train_steps"] == 7
    assert 0.0 <= all_results["eval_top1_accuracy"] <= 1.0 and all_results["eval_top5_accuracy"] == 1.0
    video = next((cache_dir / "tsf_hf").glob("*/test/*/*.mp4"))
    assert_pipeline_loads(full, video)

    # step 3 is inside the first epoch (4 steps each): the resumed run skips the batches already seen
    resumed = tmp_path / "resumed"
    files = resume_and_push(base, resumed, full / "step_3", "testuser/tsf-accelerate-test", tmp_path)
    assert_same_weights(full, resumed)
    assert PUSHED_FILES <= set(files) and not any(name.startswith("step_") for name in files)
    assert "top-1 accuracy" in files["README.md"].decode()


def test_two_cpu_processes_gather_every_sample_once(tmp_path, cache_dir):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    output = tmp_path / "two"
    result = run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            NO_TRAINER,
            "--cpu",
            "--cache_dir",
            cache_dir,
            *SMALL_DATA,
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "2",
            "--max_train_steps",
            "3",
            "--output_dir",
            output,
            "--no_prediction",
        ]
    )
    results = json.loads((output / "all_results.json").read_text())
    # 9 samples over 2 processes in batches of 2: the last batches repeat samples to even out the processes, and
    # gather_for_metrics drops the repeats
    assert results["num_processes"] == 2 and results["eval_samples"] == 9
    assert "MULTI_CPU" in result.stdout + result.stderr and "gloo" in result.stdout + result.stderr
    assert (output / "model.safetensors").is_file()


def test_init_from_imagenet_vit_with_gradient_checkpointing(tmp_path, cache_dir):
    vit = tiny_vit()
    vit.save_pretrained(tmp_path / "vit")
    output = tmp_path / "out"
    run(
        [
            sys.executable,
            NO_TRAINER,
            "--cache_dir",
            cache_dir,
            *SMALL_DATA,
            "--init_from_vit",
            tmp_path / "vit",
            "--num_frames",
            "4",
            "--image_size",
            "32",
            "--attention_type",
            "joint_space_time",
            "--gradient_checkpointing",
            "--learning_rate",
            "0",
            "--weight_decay",
            "0",
            "--max_train_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--output_dir",
            output,
            "--no_prediction",
        ]
    )
    config = json.loads((output / "config.json").read_text())
    assert (config["hidden_size"], config["num_frames"], config["attention_type"]) == (32, 4, "joint_space_time")
    trained = weights(output)
    vit_state = {key: value.numpy() for key, value in vit.state_dict().items()}
    # learning rate 0: the ViT's weights arrive unchanged
    np.testing.assert_array_equal(trained["tsf.layers.1.mlp.fc1.weight"], vit_state["layers.1.mlp.fc1.weight"])
    np.testing.assert_array_equal(
        trained["tsf.embeddings.patch_embeddings.projection.weight"],
        vit_state["embeddings.patch_embeddings.projection.weight"],
    )


@pytest.mark.slow
def test_default_run_learns_the_builtin_dataset(tmp_path):
    """The default command: built-in dataset, divided attention, >= 90% validation accuracy (about 3-5 minutes on
    two CPU cores)."""
    result = run(
        [sys.executable, TRAINER, "--output_dir", tmp_path / "out", "--cache_dir", tmp_path / "cache"], timeout=1800
    )
    summary = json.loads((tmp_path / "out" / "results_summary.json").read_text())
    assert summary["eval_top1_accuracy"] >= 0.9, result.stdout[-2000:]
