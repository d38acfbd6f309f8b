"""The datasets of the original model zoo: class names, frame sampling protocols and the paper's results."""

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class DatasetSpec:
    """What a released checkpoint's dataset implies: class names, frame sampling protocol and the paper's results.

    `results` (the paper's top-1 and top-5 accuracy in %, `None` where not reported) and `sampling_rates` are keyed
    by `(num_frames, image_size)` of the checkpoint; `card_id` names the dataset in model-card metadata."""

    key: str
    name: str
    card_id: str
    url: str
    num_classes: int | None
    label_file: str | None
    sampling_strategy: str
    sampling_rates: dict[tuple[int, int], int] = field(default_factory=dict)
    bgr: bool = False
    results: dict[tuple[int, int], tuple[float, float | None]] = field(default_factory=dict)
    test_protocol: str = "1 temporal clip x 3 spatial crops"


KINETICS_SAMPLING_RATES = {(8, 224): 32, (16, 448): 16, (96, 224): 4}
"""Frame stride of the Kinetics-400 and -600 checkpoints, by `(num_frames, image_size)`."""

DATASETS: dict[str, DatasetSpec] = {
    "k400": DatasetSpec(
        key="k400",
        card_id="kinetics-400",
        name="Kinetics-400",
        url="https://deepmind.com/research/open-source/kinetics",
        num_classes=400,
        label_file="kinetics400_id2label.json",
        sampling_strategy="dense",
        sampling_rates=KINETICS_SAMPLING_RATES,
        results={(8, 224): (78.0, 93.7), (16, 448): (79.7, 94.4), (96, 224): (80.7, 94.7)},
    ),
    "k600": DatasetSpec(
        key="k600",
        card_id="kinetics-600",
        name="Kinetics-600",
        url="https://deepmind.com/research/open-source/kinetics",
        num_classes=600,
        label_file="kinetics600_id2label.json",
        sampling_strategy="dense",
        sampling_rates=KINETICS_SAMPLING_RATES,
        results={(8, 224): (79.1, 94.4), (16, 448): (81.8, 95.8), (96, 224): (82.2, 95.6)},
    ),
    "ssv2": DatasetSpec(
        key="ssv2",
        card_id="something-something-v2",
        name="Something-Something-v2",
        url="https://developer.qualcomm.com/software/ai-datasets/something-something",
        num_classes=174,
        label_file="something_something_v2_id2label.json",
        sampling_strategy="segment",
        bgr=True,
        results={(8, 224): (59.5, None)},
    ),
    "howto100m": DatasetSpec(
        key="howto100m",
        card_id="howto100m",
        name="HowTo100M (long-term task classification)",
        url="https://www.di.ens.fr/willow/research/howto100m/",
        num_classes=None,
        label_file=None,
        sampling_strategy="dense",
        sampling_rates={(8, 224): 32, (32, 224): 32, (64, 224): 32, (96, 224): 32},
        results={(8, 224): (56.8, None), (32, 224): (61.2, None), (64, 224): (62.2, None), (96, 224): (62.6, None)},
        test_protocol="48, 12, 6 or 4 clips per video (8, 32, 64 or 96 frames), logits averaged",
    ),
}
"""The datasets of the original model zoo, by key."""

HOWTO100M_CLIPS = {8: 48, 32: 12, 64: 6, 96: 4}
"""Clips per video in the paper's HowTo100M evaluation, by frames per clip."""

_DATASET_NAME_PATTERNS = {
    "k400": ("k400", "kinetics400"),
    "k600": ("k600", "kinetics600"),
    "ssv2": ("ssv2", "somethingsomething", "sthv2"),
    "howto100m": ("howto100m", "howto"),
}


def load_label_names(dataset: str) -> dict[int, str]:
    """The class names of a zoo dataset (`k400`, `k600`, `ssv2`) as `{class id: name}`, in the ids the released
    checkpoints use (alphabetical for Kinetics, `labels.json` order for Something-Something-v2)."""
    spec = DATASETS.get(dataset)
    if spec is None or spec.label_file is None:
        known = sorted(key for key, value in DATASETS.items() if value.label_file)
        raise ValueError(f"class names are shipped for datasets {known}, got {dataset!r}")
    text = resources.files("tsf_hf").joinpath("data", spec.label_file).read_text(encoding="utf-8")
    return {int(index): name for index, name in json.loads(text).items()}


def read_label_file(path: str | os.PathLike, num_classes: int) -> dict[int, str]:
    """Reads class names for a checkpoint with `num_classes` classes from a user file: a JSON list of names, a JSON
    object `{id: name}` or `{name: id}` (as Something-Something's `labels.json`), or a text file with one name per
    line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"label file {path} is not UTF-8 text: {error}") from error
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"label file {path} is not valid JSON: {error}") from error
        if isinstance(data, list):
            id2label = dict(enumerate(str(name) for name in data))
        elif isinstance(data, dict) and all(_is_int(key) for key in data):
            id2label = {int(key): str(name) for key, name in data.items()}
        elif isinstance(data, dict) and all(_is_int(value) for value in data.values()):
            id2label = {int(value): str(name) for name, value in data.items()}
        else:
            raise ValueError(
                f"label file {path} must hold a JSON list of names, {{id: name}} or {{name: id}}, got "
                f"{type(data).__name__} with keys/values that are not class ids"
            )
    else:
        id2label = dict(enumerate(line.strip() for line in text.splitlines() if line.strip()))
    if sorted(id2label) != list(range(num_classes)):
        raise ValueError(
            f"label file {path} must name classes 0..{num_classes - 1} (the checkpoint's head has {num_classes} rows), "
            f"got {len(id2label)} entries with ids {min(id2label, default=None)}..{max(id2label, default=None)}"
        )
    return id2label


def _is_int(value: object) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())


def generic_label_names(num_classes: int) -> dict[int, str]:
    """`{i: "LABEL_i"}`, transformers' convention for unnamed classes."""
    return {index: f"LABEL_{index}" for index in range(num_classes)}


def resolve_label_names(
    num_classes: int,
    dataset: str | None,
    label_file: str | os.PathLike | None,
    fallback: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """The class names of a converted model: from `label_file`, else the zoo `dataset`'s shipped names, else
    `fallback`, else `LABEL_i`."""
    if label_file is not None:
        return read_label_file(label_file, num_classes)
    if dataset is not None and DATASETS[dataset].label_file is not None:
        return load_label_names(dataset)
    return dict(fallback) if fallback is not None else generic_label_names(num_classes)


def check_dataset_classes(dataset: str | None, num_classes: int) -> None:
    """Raises a `ValueError` when `dataset` is not a zoo dataset (or `None`) or has another class count."""
    if dataset is None:
        return
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)} or None, got {dataset!r}")
    expected = DATASETS[dataset].num_classes
    if expected is not None and expected != num_classes:
        raise ValueError(f"dataset {dataset!r} has {expected} classes, but the checkpoint's head has {num_classes}")


def guess_dataset(file_name: str, num_classes: int) -> str | None:
    """Guesses the zoo dataset of a checkpoint from its file name, checked against its class count. Without a hint in
    the name, a head of 400, 600 or 174 classes means Kinetics-400, Kinetics-600 or Something-Something-v2. Returns
    `None` when nothing fits (a checkpoint fine-tuned on other data)."""
    compact = re.sub(r"[^a-z0-9]", "", Path(file_name).name.lower())
    for key, patterns in _DATASET_NAME_PATTERNS.items():
        if any(pattern in compact for pattern in patterns):
            expected = DATASETS[key].num_classes
            return key if expected is None or expected == num_classes else None
    by_size = {spec.num_classes: key for key, spec in DATASETS.items() if spec.num_classes}
    return by_size.get(num_classes)


def sampling_rate_from_name(file_name: str, num_frames: int) -> int | None:
    """The `8x32` style `frames x rate` in a zoo file name, if its frame count agrees with the checkpoint."""
    for frames, rate in re.findall(r"(\d+)x(\d+)", Path(file_name).name):
        if int(frames) == num_frames:
            return int(rate)
    return None
