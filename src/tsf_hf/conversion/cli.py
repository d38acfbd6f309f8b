"""Command-line pieces shared by the converter scripts in `conversion/`."""

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .model_folder import ConversionResult
from .zoo import DATASETS


def add_conversion_arguments(parser: argparse.ArgumentParser, verify_help: str) -> None:
    """Adds the options every converter script takes: `--output_dir`, `--dataset`, `--label_file`, `--verify`,
    `--tolerance` and `--push_to_hub`."""
    parser.add_argument("--output_dir", required=True, help="folder to write the tsf_hf model folder to")
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="training dataset (class names and processor protocol); default: guessed where the source allows",
    )
    parser.add_argument(
        "--label_file", default=None, help="class names: JSON list, {id: name}, {name: id}, or text lines"
    )
    parser.add_argument("--verify", action="store_true", help=verify_help)
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="largest accepted |logit difference| for --verify"
    )
    parser.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="upload the folder to this Hub repo")


def add_license_argument(parser: argparse.ArgumentParser) -> None:
    """Adds `--license` (the model card's licence) for converters whose source's licence is not fixed."""
    parser.add_argument(
        "--license",
        default=None,
        help="licence id for the model card (e.g. apache-2.0); default: the source card's licence, else none",
    )


def conversion_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments every `convert_*` function takes, from the options of `add_conversion_arguments`."""
    names = ("dataset", "label_file", "verify", "tolerance", "push_to_hub")
    return {name: getattr(args, name) for name in names}


def image_size_from_argument(values: list[int] | None) -> int | tuple[int, int] | None:
    """`--image_size H [W]` as `TsfConfig.image_size` takes it."""
    if values is None:
        return None
    return values[0] if len(values) == 1 else (values[0], values[1])


def run_conversion(convert: Callable[[], ConversionResult], describe: Callable[[ConversionResult], str]) -> int:
    """Runs a converter for a script: prints `describe(result)`, the verification and the upload, and returns the
    exit status (1 with the error on stderr when the conversion fails, e.g. a refused pickle or failed verify)."""
    try:
        result = convert()
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(describe(result))
    if result.max_abs_difference is not None:
        print(f"max |logit difference| to {result.reference}: {result.max_abs_difference:.3e}")
    if result.verification_skipped is not None:
        print(f"verification skipped: {result.verification_skipped}")
    if result.repo_id:
        print(f"uploaded to {result.repo_id}")
    return 0
