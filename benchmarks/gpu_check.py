"""The GPU checks in one run (about 5 minutes on an H100/H200-class GPU), written to one JSON file:

1. parity: every scheme and attention backend (eager, sdpa, flex_attention, tsf_chunked, and flash_attention_2/3 where
   installed) in float32 and bfloat16 on the GPU against the float64 eager model on the CPU, odd grids included;
2. hr_inference: bf16 inference of the HR model (16x448, 12 layers) against transformers' Timesformer (target >= 2x);
3. joint_memory: joint space-time attention at 448 px and at 32 frames, inference and an activation-checkpointed
   training step, peak memory and time, tsf and transformers (the paper's GPUs ran out of memory there);
4. base_training: bf16 training steps of the base model (8x224, 12 layers): clips/s, tsf and transformers.

    bash benchmarks/gpu_check.sh                 # on the GPU machine; JSON in $OUT (or ./gpu_check.json)
    python benchmarks/gpu_check.py --dry_run     # tiny shapes on the CPU: checks the flow in seconds

Every section is timed and guarded: a failure is recorded in the JSON with its message and the run goes on; the JSON
is rewritten after each section, so a run stopped early still leaves what it measured.
"""

import argparse
import copy
import importlib.util
import json
import os
import platform
import time
import traceback
from collections.abc import Callable

import torch
from harness import build_transformers, synchronize, time_interleaved

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification


TRANSFORMERS_SCHEMES = ("divided_space_time", "joint_space_time")
PARITY_TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}
"""Largest logit difference from the float64 CPU reference accepted per precision (logits of order 1)."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="gpu_check.json", help="JSON file written after every section")
    parser.add_argument("--dry_run", action="store_true", help="tiny shapes on the CPU, to check the flow")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--sections", nargs="+", default=["parity", "hr_inference", "joint_memory", "base_training"])
    return parser.parse_args()


def attention_backends(device: str) -> list[str]:
    """The backends to check on this machine: flash attention only where its package is installed, on CUDA."""
    backends = ["eager", "sdpa", "flex_attention", "tsf_chunked"]
    if device == "cuda":
        backends += [name for name, package in (("flash_attention_2", "flash_attn"), ("flash_attention_3", "flash_attn_3"))
                     if importlib.util.find_spec(package) is not None]
    return backends


def parity(device: str, dry_run: bool) -> list[dict]:
    """Max |logit difference| of every scheme, backend and precision against the float64 eager model on the CPU, on
    an even and an odd (padded for sparse local/global) input."""
    rows = []
    shapes = [(1, 3, 3, 24, 40)] if dry_run else [(2, 4, 3, 32, 32), (1, 3, 3, 24, 40)]
    for attention_type in ATTENTION_TYPES:
        config = TsfConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=128, attention_type=attention_type, num_labels=5)
        torch.manual_seed(0)
        model = TsfForVideoClassification._from_config(config, attn_implementation="eager").eval()
        with torch.no_grad():
            for parameter in model.parameters():  # extra fc and temporal table start at zero: perturb them
                parameter.add_(torch.randn_like(parameter) * 0.05)
        for shape in shapes:
            pixel_values = torch.randn(*shape)
            with torch.no_grad():
                reference = model.double()(pixel_values.double()).logits
            for backend in attention_backends(device):
                for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                    if backend.startswith("flash") and dtype_name == "fp32":
                        continue
                    row = {"attention_type": attention_type, "backend": backend, "dtype": dtype_name, "shape": shape}
                    try:
                        candidate = copy.deepcopy(model).to(device=device, dtype=dtype)
                        candidate.set_attn_implementation(backend)
                        with torch.no_grad():
                            logits = candidate(pixel_values.to(device, dtype)).logits
                        difference = (logits.double().cpu() - reference).abs().max().item()
                        row.update(max_abs_diff=difference, ok=difference <= PARITY_TOLERANCE[dtype_name])
                    except Exception as error:  # a backend that cannot run here is a finding, not a crash
                        row.update(ok=False, error=f"{type(error).__name__}: {str(error)[:300]}")
                    rows.append(row)
    return rows


def paired_models(config: TsfConfig, device: str, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.nn.Module]:
    """tsf (weights in `dtype`, sdpa) and transformers' Timesformer (float32 weights, run under autocast) with the same
    weights, on `device`."""
    torch.manual_seed(0)
    tsf = TsfForVideoClassification._from_config(config, attn_implementation="sdpa")
    reference = build_transformers(config, tsf.state_dict())
    return tsf.to(device=device, dtype=dtype), reference.to(device)


def timed_pair(steps: dict[str, Callable[[], object]], device: str, rounds: int) -> dict:
    """Median seconds per call of each step (interleaved rounds) and the speed-up of tsf over transformers."""
    times = time_interleaved(steps, rounds=rounds, iters=1, warmup=2, device=device)
    medians = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    result = {f"{name}_seconds": seconds for name, seconds in medians.items()}
    if "tsf" in medians and "transformers" in medians:
        result["speedup"] = medians["transformers"] / medians["tsf"]
    return result


def autocast(device: str, enabled: bool = True):
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=enabled)


def hr_inference(device: str, dry_run: bool, rounds: int) -> dict:
    """bf16 inference of the HR variant: tsf with bf16 weights, transformers under bf16 autocast."""
    overrides = dict(attention_type="divided_space_time", num_labels=400)
    if dry_run:
        overrides.update(num_hidden_layers=1, hidden_size=64, num_attention_heads=4, intermediate_size=128, image_size=64)
    config = TsfConfig.from_variant("hr", **overrides)
    tsf, reference = paired_models(config, device, torch.bfloat16)
    height, width = config.image_height_width
    pixel_values = torch.randn(1, config.num_frames, 3, height, width, device=device)

    def run_tsf():
        with torch.no_grad():
            return tsf(pixel_values.bfloat16()).logits

    def run_transformers():
        with torch.no_grad(), autocast(device):
            return reference(pixel_values).logits

    difference = (run_tsf().float() - run_transformers().float()).abs().max().item()
    result = timed_pair({"tsf": run_tsf, "transformers": run_transformers}, device, rounds)
    return {"config": f"{config.num_frames}x{height}, {config.num_hidden_layers} layers", "logit_diff": difference,
            "target_speedup": 2.0, **result}


def peak_memory(device: str, step: Callable[[], object]) -> dict:
    """Seconds and peak memory (GiB above what was allocated before) of one call, or the error it raised."""
    if device != "cuda":
        start = time.perf_counter()
        step()
        return {"seconds": time.perf_counter() - start}
    torch.cuda.empty_cache()
    synchronize(device)
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    start = time.perf_counter()
    try:
        step()
        synchronize(device)
    except torch.OutOfMemoryError as error:
        return {"error": f"out of memory: {str(error)[:200]}"}
    return {"seconds": time.perf_counter() - start,
            "peak_gib": (torch.cuda.max_memory_allocated() - baseline) / 2**30}


def joint_memory(device: str, dry_run: bool, rounds: int) -> list[dict]:
    """Joint space-time attention where the paper ran out of memory: 448 px (8 frames) and 32 frames (224 px)."""
    rows = []
    shapes = {"448px_8frames": (8, 448), "224px_32frames": (32, 224)}
    if dry_run:
        shapes = {"64px_4frames": (4, 64)}
    for label, (num_frames, size) in shapes.items():
        overrides = dict(attention_type="joint_space_time", num_frames=num_frames, image_size=size, num_labels=400)
        if dry_run:
            overrides.update(num_hidden_layers=1, hidden_size=64, num_attention_heads=4, intermediate_size=128)
        config = TsfConfig.from_variant("base", **overrides)
        tsf, reference = paired_models(config, device, torch.float32)
        pixel_values = torch.randn(1, num_frames, 3, size, size, device=device)
        labels = torch.tensor([3], device=device)
        for name, model in (("tsf", tsf), ("transformers", reference)):
            def infer():
                with torch.no_grad(), autocast(device):
                    model.eval()(pixel_values)

            def train_step():
                model.train()
                model.activation_checkpointing_enable()
                with autocast(device):
                    model(pixel_values, labels=labels).loss.backward()
                model.zero_grad(set_to_none=True)
                model.activation_checkpointing_disable()

            for mode, step in (("inference", infer), ("checkpointed_training_step", train_step)):
                step()  # warm-up
                rows.append({"shape": label, "model": name, "mode": mode, **peak_memory(device, step)})
        del tsf, reference
    return rows


def base_training(device: str, dry_run: bool, rounds: int) -> dict:
    """bf16 (autocast) training steps of the base model, both implementations, interleaved."""
    overrides = dict(attention_type="divided_space_time", num_labels=400)
    batch_size = 8
    if dry_run:
        overrides.update(num_hidden_layers=1, hidden_size=64, num_attention_heads=4, intermediate_size=128, image_size=64)
        batch_size = 2
    config = TsfConfig.from_variant("base", **overrides)
    tsf, reference = paired_models(config, device, torch.float32)
    height, width = config.image_height_width
    pixel_values = torch.randn(batch_size, config.num_frames, 3, height, width, device=device)
    labels = torch.randint(0, 400, (batch_size,), device=device)
    steps = {}
    for name, model in (("tsf", tsf), ("transformers", reference)):
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True)

        def step(model=model, optimizer=optimizer):
            model.train()
            with autocast(device):
                loss = model(pixel_values, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps[name] = step
    result = timed_pair(steps, device, rounds)
    for name in ("tsf", "transformers"):
        result[f"{name}_clips_per_second"] = batch_size / result[f"{name}_seconds"]
    return {"batch_size": batch_size, **result}


def environment(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    if device == "cuda":
        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    import transformers

    info["transformers"] = transformers.__version__
    return info


def main() -> None:
    args = parse_args()
    device = "cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 parity means float32 products
        torch.backends.cudnn.allow_tf32 = False
    rounds = min(args.rounds, 2) if args.dry_run else args.rounds
    sections = {
        "parity": lambda: parity(device, args.dry_run),
        "hr_inference": lambda: hr_inference(device, args.dry_run, rounds),
        "joint_memory": lambda: joint_memory(device, args.dry_run, rounds),
        "base_training": lambda: base_training(device, args.dry_run, rounds),
    }
    report = {"environment": environment(device), "sections": {}}
    for name in args.sections:
        start = time.perf_counter()
        try:
            result = {"result": sections[name]()}
        except Exception as error:
            result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}
        result["seconds"] = time.perf_counter() - start
        report["sections"][name] = result
        temporary = f"{args.output}.tmp"
        with open(temporary, "w") as file:
            json.dump(report, file, indent=2, default=str)
        os.replace(temporary, args.output)
        print(f"{name}: {json.dumps(result, default=str)[:2000]}", flush=True)


if __name__ == "__main__":
    main()
