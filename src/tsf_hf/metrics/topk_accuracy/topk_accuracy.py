"""Top-k accuracy of class scores, as an `evaluate` metric (numpy only, no download)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Top-k accuracy: the fraction of examples whose true class is among the k highest-scoring classes. Top-1 accuracy
is plain accuracy. `k` larger than the number of classes counts as the number of classes (so it is then 1.0).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): class scores (logits or probabilities), one row per example, all
        rows of the same length (the number of classes).
    references (`list` of `int`): true class ids.
    top_k (`list` of `int`, defaults to `[1, 5]`): the k values to report.
Returns:
    `top{k}_accuracy` (`float` in [0, 1]) for every k in `top_k`.
Example:
    >>> metric = evaluate.load("path/to/topk_accuracy")
    >>> metric.compute(predictions=[[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], references=[2, 0], top_k=[1, 2])
    {'top1_accuracy': 0.5, 'top2_accuracy': 1.0}
"""


def topk_accuracy(scores: np.ndarray, references: np.ndarray, top_k: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k accuracies of `scores` (N, C) against class ids `references` (N,)."""
    scores = np.asarray(scores, dtype=np.float64)
    references = np.asarray(references, dtype=np.int64)
    if scores.ndim != 2 or references.shape != (scores.shape[0],):
        raise ValueError(
            f"predictions must be (N, num_classes) scores and references (N,) ids, got {scores.shape} and "
            f"{references.shape}"
        )
    if scores.shape[0] == 0:
        raise ValueError("top-k accuracy needs at least one example, got none")
    if references.min() < 0 or references.max() >= scores.shape[1]:
        raise ValueError(
            f"references must be class ids in [0, {scores.shape[1]}), got values from {references.min()} to "
            f"{references.max()}"
        )
    # rank of the true class: classes scored higher, plus tied classes of lower index (as argmax breaks ties)
    true_scores = scores[np.arange(len(references)), references][:, None]
    lower_index = np.arange(scores.shape[1])[None, :] < references[:, None]
    rank = ((scores > true_scores) | ((scores == true_scores) & lower_index)).sum(axis=1)
    results = {}
    for k in top_k:
        if int(k) < 1:
            raise ValueError(f"top_k values must be >= 1, got {k}")
        results[f"top{int(k)}_accuracy"] = float((rank < int(k)).mean())
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopkAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, top_k=(1, 5)):
        return topk_accuracy(np.asarray(predictions), np.asarray(references), tuple(top_k))
