"""Convert a transformers `TimesformerForVideoClassification` (folder or Hub repo, e.g. the
`facebook/timesformer-base-finetuned-k400` layout) into a tsf_hf model folder.

Example:
    python conversion/convert_transformers_timesformer.py --model_path facebook/timesformer-base-finetuned-k400 \
        --output_dir timesformer-base-k400 --verify
"""

import argparse
import sys

from tsf_hf.conversion import (
    add_conversion_arguments,
    add_license_argument,
    conversion_options,
    conversion_parser,
    convert_transformers_timesformer,
    run_conversion,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = conversion_parser(__doc__)
    parser.add_argument("--model_path", required=True, help="transformers Timesformer folder or Hub repo id")
    add_license_argument(parser)
    add_conversion_arguments(parser, verify_help="compare logits with the source; fail above tolerance")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_conversion(
        lambda: convert_transformers_timesformer(
            args.model_path,
            args.output_dir,
            license=args.license,
            **conversion_options(args),
        ),
        lambda result: f"converted {args.model_path} ({result.model.config.attention_type}) -> {result.output_dir}",
    )


if __name__ == "__main__":
    sys.exit(main())
