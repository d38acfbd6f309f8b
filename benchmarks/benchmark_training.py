"""Training-step speed and memory of tsf's TsfForVideoClassification against transformers'
TimesformerForVideoClassification with the same weights, in one process, with and without activation
checkpointing.

    python benchmarks/benchmark_training.py --variant base --num_layers 2 --checkpointing both --output training.json
    python benchmarks/benchmark_training.py --tiny        # seconds: checks the script runs

A step is forward with labels (cross-entropy), backward, and an SGD update (momentum 0.9, Nesterov: the paper's
recipe). Reports seconds per clip, clips/s, achieved FLOP/s counting a step as 3 forward passes (activation
checkpointing recomputes a fourth, which is not counted), its fraction of a matmul peak measured in the same run,
and the peak memory of a step above the weights, gradients and optimizer state (one fresh process per case).
"""

import argparse
from collections.abc import Callable

import torch
from harness import COLUMNS, Case, add_common_arguments, autocast_context, finish_arguments, maybe_compile, run


def make_step(
    model: torch.nn.Module, case: Case, args: argparse.Namespace, pixel_values: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
    """One optimisation step on the batch."""
    model.train()
    if case.checkpointing:
        model.activation_checkpointing_enable()
    runner = maybe_compile(model, case)
    # one parameter at a time and gradients kept between steps: the measured peak is then the step's activations
    # and transients, not the optimizer's temporary copies
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True, foreach=False)

    def step() -> None:
        with autocast_context(case, args):
            loss = runner(pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument(
        "--checkpointing", default="both", choices=("off", "on", "both"), help="activation checkpointing variants"
    )
    args = finish_arguments(parser.parse_args())
    columns = COLUMNS[:1] + [("checkpointing", "ckpt", "")] + COLUMNS[1:]
    run(args, __file__, make_step, flops_per_forward=3, columns=columns)


if __name__ == "__main__":
    main()
