"""Convert a transformers `TimesformerForVideoClassification` (folder or Hub repo, e.g. the
`facebook/timesformer-base-finetuned-k400` layout) into a tsf_hf model folder.

Example:
    python conversion/convert_transformers_timesformer.py --model_path facebook/timesformer-base-finetuned-k400 \
        --output_dir timesformer-base-k400 --verify
"""

import argparse
import sys

from tsf_hf.conversion import DATASETS, convert_transformers_timesformer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True, help="transformers Timesformer folder or Hub repo id")
    parser.add_argument("--output_dir", required=True, help="folder to write the converted model to")
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="training dataset (processor protocol); default: guessed from the path and class count",
    )
    parser.add_argument("--label_file", default=None, help="class names replacing the source config's")
    parser.add_argument("--verify", action="store_true", help="compare logits with the source; fail above tolerance")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4,
        help="largest accepted |logit difference| for --verify",
    )
    parser.add_argument("--push_to_hub", metavar="REPO_ID", default=None, help="upload the folder to this Hub repo")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = convert_transformers_timesformer(
            args.model_path,
            args.output_dir,
            dataset=args.dataset,
            label_file=args.label_file,
            verify=args.verify,
            tolerance=args.tolerance,
            push_to_hub=args.push_to_hub,
        )
    except (ValueError, OSError) as error:  # includes failed verification
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"converted {args.model_path} ({result.model.config.attention_type}) -> {result.output_dir}")
    if result.max_abs_difference is not None:
        print(f"max |logit difference| to {result.reference}: {result.max_abs_difference:.3e}")
    if result.repo_id:
        print(f"uploaded to {result.repo_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
