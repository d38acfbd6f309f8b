"""Inference speed and memory of tsf's TsfForVideoClassification against transformers'
TimesformerForVideoClassification with the same weights, in one process.

    python benchmarks/benchmark_inference.py --num_layers 4 --attention_types all --output inference.json
    python benchmarks/benchmark_inference.py --tiny        # seconds: checks the script runs

Reports seconds per clip (min and median over interleaved rounds), clips/s, achieved FLOP/s (`tsf_hf.flops`) and its
fraction of a matmul peak measured in the same run, and peak memory above the weights (one fresh process per case).
"""

import argparse
from collections.abc import Callable

import torch
import torch._inductor.config
from harness import COLUMNS, Case, add_common_arguments, autocast_context, finish_arguments, maybe_compile, run


def make_step(
    model: torch.nn.Module, case: Case, args: argparse.Namespace, pixel_values: torch.Tensor, labels: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """One forward pass of the batch, without gradients."""
    runner = maybe_compile(model.eval(), case)

    def step() -> torch.Tensor:
        with torch.no_grad(), autocast_context(case, args):
            return runner(pixel_values).logits

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument(
        "--freezing", action="store_true",
        help="compile with inductor's freezing (weights become constants, prepacked for the CPU matmul libraries)",
    )
    args = finish_arguments(parser.parse_args())
    torch._inductor.config.freezing = args.freezing
    run(args, __file__, make_step, flops_per_forward=1, columns=COLUMNS)


if __name__ == "__main__":
    main()
