"""Evaluation metrics shipped with tsf_hf, loadable offline with `evaluate.load(path)`."""

from pathlib import Path

TOPK_ACCURACY_PATH = str(Path(__file__).parent / "topk_accuracy")
"""Folder of the top-k accuracy metric: `evaluate.load(TOPK_ACCURACY_PATH)`."""


def load_topk_accuracy(**kwargs):
    """`evaluate.load` of the shipped top-k accuracy metric (no network); `kwargs` go to `evaluate.load`."""
    import evaluate

    return evaluate.load(TOPK_ACCURACY_PATH, **kwargs)


__all__ = ["TOPK_ACCURACY_PATH", "load_topk_accuracy"]
