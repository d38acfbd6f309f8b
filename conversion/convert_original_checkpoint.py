"""Convert an original TimeSformer checkpoint (`.pyth` of the model zoo, or one trained with the original code) into a
tsf_hf model folder.

Example:
    python conversion/convert_original_checkpoint.py --checkpoint_path TimeSformer_divST_8x32_224_K400.pyth \
        --output_dir timesformer-base-k400 --verify
"""

import argparse
import sys

from tsf_hf.conversion import (
    ConversionResult,
    add_conversion_arguments,
    add_image_size_argument,
    conversion_options,
    conversion_parser,
    convert_original_checkpoint,
    image_size_from_argument,
    positive_int,
    run_conversion,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = conversion_parser(__doc__)
    parser.add_argument("--checkpoint_path", required=True, help="original checkpoint file (.pyth / .pth)")
    parser.add_argument(
        "--num_attention_heads",
        type=positive_int,
        default=12,
        help="heads per attention: not recorded in the weights (must divide the width, which is checked)",
    )
    parser.add_argument(
        "--layer_norm_eps", type=float, default=1e-6, help="LayerNorm epsilon: not recorded in the weights"
    )
    add_image_size_argument(
        parser, "frame size H [W]; default: the square grid of the position table (give it for non-square frames)"
    )
    parser.add_argument(
        "--allow_unsafe_pickle",
        action="store_true",
        help="allow full unpickling (runs code stored in the file): only for checkpoints from a source you trust",
    )
    add_conversion_arguments(parser, verify_help="compare with transformers' Timesformer; fail above tolerance")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def describe(result: ConversionResult) -> str:
        config = result.model.config
        return (
            f"converted {args.checkpoint_path}: {config.attention_type}, {config.num_frames} frames, "
            f"{config.image_size} px, {config.num_hidden_layers} layers, width {config.hidden_size}, "
            f"{config.num_labels} classes, dataset {result.dataset or 'unknown'} -> {result.output_dir}"
        )

    return run_conversion(
        lambda: convert_original_checkpoint(
            args.checkpoint_path,
            args.output_dir,
            num_attention_heads=args.num_attention_heads,
            layer_norm_eps=args.layer_norm_eps,
            image_size=image_size_from_argument(args.image_size),
            allow_unsafe_pickle=args.allow_unsafe_pickle,
            **conversion_options(args),
        ),
        describe,
    )


if __name__ == "__main__":
    sys.exit(main())
