"""Shared pieces of the benchmarks: the two models with equal weights, the matmul peak, interleaved timing, peak
memory measured in a fresh process, and the report (table and JSON)."""

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from transformers import TimesformerForVideoClassification

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification
from tsf_hf.conversion import transformers_timesformer_config, tsf_to_transformers_state_dict
from tsf_hf.flops import count_macs


TRANSFORMERS_SCHEMES = ("divided_space_time", "joint_space_time")
"""Schemes transformers' Timesformer runs correctly (its space_only returns per-frame logits)."""

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
TINY = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_attention_heads=2, intermediate_size=64)


@dataclass(frozen=True)
class Case:
    """One benchmarked configuration. `model` is `tsf` or `transformers`; `checkpointing` only matters for
    training."""

    model: str
    attention_type: str
    attn_implementation: str
    dtype: str
    compiled: bool
    checkpointing: bool = False

    @property
    def label(self) -> str:
        parts = [self.model, self.attention_type, self.attn_implementation, self.dtype]
        parts += ["compiled"] * self.compiled + ["checkpointing"] * self.checkpointing
        return "/".join(parts)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the inference and training benchmarks."""
    parser.add_argument("--variant", default="base", choices=("base", "hr", "large"), help="input shape and width")
    parser.add_argument("--num_layers", type=int, default=None, help="blocks (default: the variant's 12)")
    parser.add_argument("--num_frames", type=int, default=None, help="frames per clip (default: the variant's)")
    parser.add_argument("--image_size", type=int, default=None, help="frame side (default: the variant's)")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument(
        "--attention_types", nargs="+", default=list(TRANSFORMERS_SCHEMES), choices=ATTENTION_TYPES + ("all",)
    )
    parser.add_argument(
        "--attn_implementations", nargs="+", default=["sdpa"], choices=("eager", "sdpa", "flex_attention", "tsf_chunked"),
        help="tsf attention backends (transformers' Timesformer is eager only)",
    )
    parser.add_argument("--dtypes", nargs="+", default=["fp32"], choices=tuple(DTYPES))
    parser.add_argument(
        "--bf16_mode", default="cast", choices=("cast", "autocast"),
        help="how tsf runs bf16: weights cast to bf16, or fp32 weights under autocast (transformers: always autocast)",
    )
    parser.add_argument("--compile", default="off", choices=("off", "on", "both"), help="torch.compile variants")
    parser.add_argument("--no_transformers", action="store_true", help="benchmark tsf only")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (min and median reported)")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per case and round")
    parser.add_argument(
        "--warmup", type=int, default=2,
        help="untimed calls per case before timing (compiled training recompiles once on its second call)",
    )
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-memory pass (one process per case)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--matmul_size", type=int, default=None, help="side of the peak-measuring matmul")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--tiny", action="store_true", help="tiny model and short runs (seconds), to check the script")
    parser.add_argument("--memory_case", default=None, help=argparse.SUPPRESS)


def finish_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """Applies `--tiny` and expands `all`."""
    if "all" in args.attention_types:
        args.attention_types = list(ATTENTION_TYPES)
    if args.tiny:
        args.num_layers = args.num_layers or 2
        args.rounds, args.iters, args.warmup = min(args.rounds, 2), 1, 2
        args.matmul_size = args.matmul_size or 512
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def tsf_config(args: argparse.Namespace, attention_type: str) -> TsfConfig:
    """The benchmarked model's config: the variant (or the tiny model), its depth, frames and size overridden."""
    overrides = dict(attention_type=attention_type, num_labels=400)
    if args.tiny:
        overrides.update(TINY)
    if args.num_layers:
        overrides["num_hidden_layers"] = args.num_layers
    if args.num_frames:
        overrides["num_frames"] = args.num_frames
    if args.image_size:
        overrides["image_size"] = args.image_size
    return TsfConfig.from_variant(args.variant, **overrides)


def input_shape(config: TsfConfig, batch_size: int) -> tuple[int, ...]:
    height, width = config.image_height_width
    return (batch_size, config.num_frames, config.num_channels, height, width)


def build_transformers(config: TsfConfig, state_dict: dict | None = None) -> TimesformerForVideoClassification:
    """transformers' Timesformer with `config`'s shape; with tsf's `state_dict` when given."""
    their_config = transformers_timesformer_config(config)
    model = TimesformerForVideoClassification(their_config)
    if state_dict is not None:
        model.load_state_dict(tsf_to_transformers_state_dict(state_dict, config.attention_type), strict=True)
    return model


def case_uses_autocast(case: Case, args: argparse.Namespace) -> bool:
    """transformers runs bf16 under autocast; tsf casts its weights to bf16 unless `--bf16_mode autocast`."""
    if case.dtype != "bf16":
        return False
    return case.model == "transformers" or args.bf16_mode == "autocast"


def autocast_context(case: Case, args: argparse.Namespace) -> contextlib.AbstractContextManager:
    if case_uses_autocast(case, args):
        return torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_model(
    config: TsfConfig, case: Case, args: argparse.Namespace, tsf_state: dict | None = None
) -> torch.nn.Module:
    """The case's model on `args.device`, with tsf's `tsf_state` (fp32) when given, cast to bf16 when the case runs
    bf16 without autocast."""
    if case.model == "tsf":
        model = TsfForVideoClassification(config)
        model.set_attn_implementation(case.attn_implementation)
        if tsf_state is not None:
            model.load_state_dict(tsf_state)
    else:
        model = build_transformers(config, tsf_state)
    if case.dtype == "bf16" and not case_uses_autocast(case, args):
        model = model.to(torch.bfloat16)
    return model.to(args.device)


def enumerate_cases(args: argparse.Namespace, checkpointing: tuple[bool, ...] = (False,)) -> list[Case]:
    """Every tsf variant asked for, plus transformers' counterpart (eager) for the schemes it supports."""
    compiled = {"off": (False,), "on": (True,), "both": (False, True)}[args.compile]
    cases = []
    for attention_type in args.attention_types:
        for dtype in args.dtypes:
            for compile_ in compiled:
                for ckpt in checkpointing:
                    for implementation in args.attn_implementations:
                        cases.append(Case("tsf", attention_type, implementation, dtype, compile_, ckpt))
                    if not args.no_transformers and attention_type in TRANSFORMERS_SCHEMES:
                        cases.append(Case("transformers", attention_type, "eager", dtype, compile_, ckpt))
    return cases


def maybe_compile(model: torch.nn.Module, case: Case) -> Callable:
    return torch.compile(model) if case.compiled else model


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_step(device: str, dtype: torch.dtype, size: int | None = None) -> tuple[Callable[[], object], int]:
    """A square matmul of side `size` (default 2048 on CPU, 8192 on GPU) to time beside the models, and its FLOPs;
    its speed is the peak the models' FLOP/s are compared with."""
    size = size or (8192 if device.startswith("cuda") else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return (lambda: torch.matmul(a, b)), 2 * size**3


def time_interleaved(
    steps: dict[str, Callable[[], object]], rounds: int, iters: int, warmup: int, device: str
) -> dict[str, list[float]]:
    """Seconds per call of every step, one figure per round; the steps take turns within a round (in an order that
    rotates between rounds) so that load from elsewhere on the machine falls on all of them alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(iters):
                steps[name]()
            synchronize(device)
            times[name].append((time.perf_counter() - start) / iters)
    return times


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


@contextlib.contextmanager
def peak_memory_above_baseline(device: str) -> Iterator[dict]:
    """Measures the peak memory of the block above what was in use when it began: on CUDA from the caching
    allocator's statistics, on CPU from the resident set's high-water mark (reset through /proc/self/clear_refs;
    run with MALLOC_MMAP_THRESHOLD_ set low so that freed tensors go back to the system)."""
    result = {}
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        yield result
        torch.cuda.synchronize()
        result["peak_bytes"] = torch.cuda.max_memory_allocated() - baseline
    else:
        baseline = _status_bytes("VmRSS:")
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        yield result
        result["peak_bytes"] = _status_bytes("VmHWM:") - baseline
    result["baseline_bytes"] = baseline


def measure_memory_in_subprocess(script: str, argv: list[str], case: Case) -> int | None:
    """Runs `script` with `argv` and `--memory_case` in a fresh process; returns its peak bytes (None on failure)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    command = [sys.executable, script, *argv, "--memory_case", json.dumps(asdict(case))]
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in finished.stdout.splitlines():
        if line.startswith("PEAK_BYTES "):
            return int(line.split()[1])
    print(f"memory measurement of {case.label} failed:\n{finished.stderr[-2000:]}", file=sys.stderr)
    return None


def forward_flops(config: TsfConfig, batch_size: int, model: str) -> int:
    """FLOPs (2 per MAC) of one forward pass of `model` (`tsf` or `transformers`) over the batch (`tsf_hf.flops`):
    transformers, like the original, projects every group's copy of cls."""
    return batch_size * count_macs(config, per_group_qkv=model == "transformers").flops


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def environment(args: argparse.Namespace, peaks: dict[str, float]) -> dict:
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    return {
        "torch": torch.__version__,
        "device": args.device,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "matmul_peak_flops": peaks,
        "arguments": {key: value for key, value in vars(args).items() if key != "memory_case"},
    }


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Prints `rows` as a table; `columns` are (key, header, format)."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append(
            ["-" if row.get(key) is None else format(row[key], spec) for key, _, spec in columns]
        )
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    for number, line in enumerate(cells):
        print("  ".join(cell.rjust(width) if index else cell.ljust(width) for index, (cell, width) in
                        enumerate(zip(line, widths))))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def write_json(path: str | None, payload: dict) -> None:
    if path:
        with open(path, "w") as handle:
            json.dump(payload, handle, indent=2)
        print(f"results written to {path}")


def summarize(times: list[float]) -> dict[str, float]:
    return {"seconds_min": min(times), "seconds_median": statistics.median(times)}


StepFactory = Callable[[torch.nn.Module, Case, argparse.Namespace, torch.Tensor, torch.Tensor], Callable[[], object]]
"""Makes the timed callable from a built model, its case, the arguments, the input batch and labels."""


def run(args: argparse.Namespace, script: str, make_step: StepFactory, flops_per_forward: int, columns: list) -> dict:
    """The benchmark: every case of every scheme timed interleaved (per scheme, so tsf and transformers share a
    round), logits checked against an fp32 eager tsf model with the same weights, peak memory measured per case in
    a fresh process; prints a table and writes the JSON. `flops_per_forward` scales the forward FLOPs into the
    FLOPs of one timed step (1 for inference, 3 for a training step: forward + backward)."""
    if args.memory_case:
        case = Case(**json.loads(args.memory_case))
        config = tsf_config(args, case.attention_type)
        pixel_values, labels = make_inputs(config, args)
        step = make_step(build_model(config, case, args), case, args, pixel_values, labels)
        for _ in range(max(args.warmup, 1)):  # compilation, optimizer state, thread pools
            step()
        with peak_memory_above_baseline(args.device) as memory:
            step()
        print("PEAK_BYTES", memory["peak_bytes"])
        return {}

    matmuls = {name: matmul_step(args.device, dtype, args.matmul_size) for name, dtype in DTYPES.items()}
    peaks: dict[str, float] = {}
    checkpointing = (False, True) if getattr(args, "checkpointing", "off") == "both" else (
        (getattr(args, "checkpointing", "off") == "on"),
    )
    cases = enumerate_cases(args, checkpointing)
    rows = []
    for attention_type in args.attention_types:
        config = tsf_config(args, attention_type)
        pixel_values, labels = make_inputs(config, args)
        torch.manual_seed(0)
        reference = TsfForVideoClassification(config).eval()
        state = {key: value.clone() for key, value in reference.state_dict().items()}
        reference.set_attn_implementation("eager")
        with torch.no_grad():
            reference_logits = reference.to(args.device)(pixel_values).logits.cpu()
        del reference
        steps, logit_errors = {}, {}
        for case in (case for case in cases if case.attention_type == attention_type):
            model = build_model(config, case, args, state)
            with torch.no_grad(), autocast_context(case, args):
                logits = model.eval()(pixel_values).logits.float().cpu()
            logit_errors[case] = (logits - reference_logits).abs().max().item()
            steps[case] = make_step(model, case, args, pixel_values, labels)
        timed_steps = {case.label: step for case, step in steps.items()}
        timed_steps.update({f"matmul/{name}": step for name, (step, _) in matmuls.items()})
        timed = time_interleaved(timed_steps, args.rounds, args.iters, args.warmup, args.device)
        for name, (_, flops) in matmuls.items():
            # median over the same rounds as the models: the attainable speed under the load they met
            peaks[f"{attention_type}/{name}"] = flops / statistics.median(timed[f"matmul/{name}"])
        for case in steps:
            step_flops = flops_per_forward * forward_flops(config, args.batch_size, case.model)
            times = summarize(timed[case.label])
            achieved = step_flops / times["seconds_median"]
            peak_bytes = None if args.no_memory else measure_memory_in_subprocess(script, sys.argv[1:], case)
            rows.append({
                **asdict(case),
                "label": case.label,
                "seconds_per_clip_min": times["seconds_min"] / args.batch_size,
                "seconds_per_clip_median": times["seconds_median"] / args.batch_size,
                "clips_per_second": args.batch_size / times["seconds_median"],
                "gflops_per_second": achieved / 1e9,
                "fraction_of_matmul_peak": achieved / peaks[f"{attention_type}/{case.dtype}"],
                "peak_memory_mb": None if peak_bytes is None else peak_bytes / 2**20,
                "max_abs_logit_difference": logit_errors[case],
                "seconds_per_step_all_rounds": timed[case.label],
                "gflops_per_step": step_flops / 1e9,
            })
        del steps
    for row in rows:
        row["speedup_over_transformers"] = speedup_over_transformers(row, rows)
        if row["compiled"]:
            row["speedup_over_uncompiled_transformers"] = speedup_over_transformers(row, rows, compiled=False)
    print_table(rows, columns)
    ranges = []
    for name in DTYPES:
        values = [value / 1e9 for key, value in peaks.items() if key.endswith(f"/{name}")]
        ranges.append(f"{name} {min(values):.1f}-{max(values):.1f}")
    print(
        f"matmul peak over the schemes' rounds (GFLOP/s): {', '.join(ranges)}; {args.device}, "
        f"{torch.get_num_threads()} threads, batch {args.batch_size}"
    )
    payload = {"environment": environment(args, peaks), "results": rows}
    write_json(args.output, payload)
    return payload


def make_inputs(config: TsfConfig, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(input_shape(config, args.batch_size), generator=generator)
    labels = torch.randint(0, config.num_labels, (args.batch_size,), generator=generator)
    return pixel_values.to(args.device), labels.to(args.device)


def speedup_over_transformers(row: dict, rows: list[dict], compiled: bool | None = None) -> float | None:
    """transformers' median time over this row's, for the same scheme, dtype, compilation and checkpointing (or,
    with `compiled`, transformers compiled or not)."""
    if row["model"] != "tsf":
        return None
    wanted = {key: row[key] for key in ("attention_type", "dtype", "compiled", "checkpointing")}
    if compiled is not None:
        wanted["compiled"] = compiled
    for other in rows:
        if other["model"] == "transformers" and all(other[key] == value for key, value in wanted.items()):
            return other["seconds_per_clip_median"] / row["seconds_per_clip_median"]
    return None


COLUMNS = [
    ("label", "case", "s"),
    ("seconds_per_clip_min", "s/clip min", ".4f"),
    ("seconds_per_clip_median", "s/clip med", ".4f"),
    ("clips_per_second", "clips/s", ".2f"),
    ("gflops_per_second", "GFLOP/s", ".1f"),
    ("fraction_of_matmul_peak", "of peak", ".1%"),
    ("peak_memory_mb", "peak MB", ".1f"),
    ("speedup_over_transformers", "vs transformers", ".2f"),
    ("speedup_over_uncompiled_transformers", "vs uncompiled", ".2f"),
    ("max_abs_logit_difference", "|dlogits|", ".1e"),
]
"""Table columns: (row key, header, format)."""
