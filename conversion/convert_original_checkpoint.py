"""Convert an original TimeSformer checkpoint (`.pyth` of the model zoo, or one trained with the original code) into a
tsf_hf model folder.

Example:
    python conversion/convert_original_checkpoint.py --checkpoint_path TimeSformer_divST_8x32_224_K400.pyth \
        --output_dir timesformer-base-k400 --verify
"""

import argparse
import sys

from tsf_hf.conversion import DATASETS, convert_original_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint_path", required=True, help="original checkpoint file (.pyth / .pth)")
    parser.add_argument("--output_dir", required=True, help="folder to write the converted model to")
    parser.add_argument("--num_attention_heads", type=int, default=12, help="heads per attention (not in the weights)")
    parser.add_argument("--layer_norm_eps", type=float, default=1e-6, help="LayerNorm epsilon (not in the weights)")
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="training dataset (class names and processor protocol); default: guessed from the file name and head size",
    )
    parser.add_argument(
        "--label_file", default=None,
        help="class names: JSON list, {id: name}, {name: id}, or text lines",
    )
    parser.add_argument(
        "--image_size", type=int, nargs="+", default=None, help="frame size (H [W]) when the grid is not square"
    )
    parser.add_argument(
        "--allow_unsafe_pickle",
        action="store_true",
        help="allow full unpickling (runs code stored in the file): only for checkpoints from a source you trust",
    )
    parser.add_argument(
        "--verify", action="store_true",
        help="compare with transformers' Timesformer; fail above tolerance",
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-4,
        help="largest accepted |logit difference| for --verify",
    )
    parser.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="upload the folder to this Hub repo")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    image_size = None
    if args.image_size is not None:
        image_size = args.image_size[0] if len(args.image_size) == 1 else tuple(args.image_size[:2])
    try:
        result = convert_original_checkpoint(
            args.checkpoint_path,
            args.output_dir,
            num_attention_heads=args.num_attention_heads,
            layer_norm_eps=args.layer_norm_eps,
            dataset=args.dataset,
            label_file=args.label_file,
            image_size=image_size,
            allow_unsafe_pickle=args.allow_unsafe_pickle,
            verify=args.verify,
            tolerance=args.tolerance,
            push_to_hub=args.push_to_hub,
        )
    except (ValueError, OSError) as error:  # includes refused pickles and failed verification
        print(f"error: {error}", file=sys.stderr)
        return 1
    config = result.model.config
    print(
        f"converted {args.checkpoint_path}: {config.attention_type}, {config.num_frames} frames, "
        f"{config.image_size} px, {config.num_hidden_layers} layers, width {config.hidden_size}, "
        f"{config.num_labels} classes, dataset {result.dataset or 'unknown'} -> {result.output_dir}"
    )
    if result.max_abs_difference is not None:
        print(f"max |logit difference| to {result.reference}: {result.max_abs_difference:.3e}")
    if result.repo_id:
        print(f"uploaded to {result.repo_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
