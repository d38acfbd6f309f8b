"""Initialise a TimeSformer from ImageNet ViT weights (timm `vit_base_patch16_224` checkpoint file, or a transformers
ViT folder / Hub repo), as the released models were before video training, and write a tsf_hf model folder ready for
fine-tuning.

Example:
    python conversion/convert_imagenet_vit.py --vit_path jx_vit_base_p16_224-80ecf9dd.pth --output_dir tsf-init \
        --num_frames 8 --image_size 224 --attention_type divided_space_time --dataset k400 --verify
"""

import argparse
import sys

from tsf_hf.configuration_tsf import ATTENTION_TYPES
from tsf_hf.conversion import (
    POSITION_RESIZE_MODES,
    ConversionResult,
    add_conversion_arguments,
    add_image_size_argument,
    add_license_argument,
    conversion_options,
    conversion_parser,
    convert_imagenet_vit,
    image_size_from_argument,
    positive_int,
    run_conversion,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = conversion_parser(__doc__)
    parser.add_argument("--vit_path", required=True, help="timm ViT checkpoint file, or transformers ViT folder / repo")
    parser.add_argument("--num_frames", type=positive_int, default=8, help="frames per clip (temporal table size)")
    add_image_size_argument(parser, "frame size H [W]; default: the ViT's own (from its config or position table)")
    parser.add_argument("--attention_type", choices=ATTENTION_TYPES, default="divided_space_time", help="scheme")
    parser.add_argument(
        "--num_labels", type=positive_int, default=400, help="classes of the new head without --dataset"
    )
    parser.add_argument(
        "--num_attention_heads",
        type=positive_int,
        default=None,
        help="default: the ViT config's, else 12 (a timm file does not record heads; they must divide the width)",
    )
    parser.add_argument(
        "--layer_norm_eps",
        type=float,
        default=None,
        help="default: the ViT config's, else 1e-6 (a timm file does not record it)",
    )
    parser.add_argument(
        "--position_resize",
        choices=POSITION_RESIZE_MODES,
        default="bicubic",
        help="spatial position table resize for another frame size: 2-D grid modes, or the original's 1-D 'legacy'",
    )
    parser.add_argument("--allow_unsafe_pickle", action="store_true", help="allow full unpickling of a trusted file")
    add_license_argument(parser)
    add_conversion_arguments(
        parser,
        verify_help="compare with transformers' ViTModel where they must agree (divided / space-only at the ViT's "
        "grid); skipped, with the reason, elsewhere",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def describe(result: ConversionResult) -> str:
        config = result.model.config
        return (
            f"initialised {config.attention_type} TimeSformer ({config.num_frames} frames, {config.image_size} px, "
            f"{config.num_labels} classes) from {args.vit_path} -> {result.output_dir}"
        )

    return run_conversion(
        lambda: convert_imagenet_vit(
            args.vit_path,
            args.output_dir,
            num_frames=args.num_frames,
            image_size=image_size_from_argument(args.image_size),
            attention_type=args.attention_type,
            num_labels=args.num_labels,
            num_attention_heads=args.num_attention_heads,
            layer_norm_eps=args.layer_norm_eps,
            position_resize=args.position_resize,
            allow_unsafe_pickle=args.allow_unsafe_pickle,
            license=args.license,
            **conversion_options(args),
        ),
        describe,
    )


if __name__ == "__main__":
    sys.exit(main())
