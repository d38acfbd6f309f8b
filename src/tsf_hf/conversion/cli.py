"""Command-line pieces shared by the converter scripts in `conversion/`."""

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .model_folder import ConversionResult
from .zoo import DATASETS


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's line breaks (its example command) and shows every option's default, except where
    the option is required or its help already says what its default means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def conversion_parser(description: str | None) -> argparse.ArgumentParser:
    """The argument parser of a converter script: its docstring as description, defaults shown in `--help`."""
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)


def positive_int(text: str) -> int:
    """An `argparse` type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


class ImageSizeAction(argparse.Action):
    """`--image_size H [W]`: one value (square frames) or two (height, width), each positive."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: list[int],
        option_string: str | None = None,
    ) -> None:
        if len(values) not in (1, 2):
            parser.error(f"{option_string} takes 1 value (square frames) or 2 (height width), got {len(values)}")
        setattr(namespace, self.dest, values)


def add_image_size_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Adds `--image_size H [W]` (validated by `ImageSizeAction`; default `None`, which `help_text` explains)."""
    parser.add_argument(
        "--image_size", type=positive_int, nargs="+", action=ImageSizeAction, metavar="PX", help=help_text
    )


def add_conversion_arguments(parser: argparse.ArgumentParser, verify_help: str) -> None:
    """Adds the options every converter script takes: `--output_dir`, `--overwrite`, `--dataset`, `--label_file`,
    `--verify`, `--tolerance` and `--push_to_hub`."""
    parser.add_argument("--output_dir", required=True, help="folder to write the tsf_hf model folder to")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --output_dir as a whole (the old folder is deleted once the new one is complete)",
    )
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
    names = ("dataset", "label_file", "verify", "tolerance", "push_to_hub", "overwrite")
    return {name: getattr(args, name) for name in names}


def image_size_from_argument(values: list[int] | None) -> int | tuple[int, int] | None:
    """`--image_size H [W]` as `TsfConfig.image_size` takes it."""
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise ValueError(f"image_size takes 1 value (square frames) or 2 (height, width), got {values}")
    return values[0] if len(values) == 1 else (values[0], values[1])


def run_conversion(convert: Callable[[], ConversionResult], describe: Callable[[ConversionResult], str]) -> int:
    """Runs a converter for a script: prints `describe(result)`, the verification and the upload, and returns the
    exit status (1 with one `error: ...` line on stderr when the conversion fails, e.g. a refused pickle, a failed
    verify or a full disk; nothing is left half-written then)."""
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
