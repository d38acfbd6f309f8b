"""Data, model and reporting helpers shared by `run_video_classification.py` (Trainer) and
`run_video_classification_no_trainer.py` (Accelerate).

Videos are read from `datasets` with `Video(decode=False)` (a path or bytes per row) and decoded by the model's video
processor (PyAV, or torchcodec when usable). Each video is decoded once and its uint8 frames are kept in memory
within a budget (`--decoded_cache_mb`); every epoch then only samples, resizes, crops and normalises them.
"""

import hashlib
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict, Video, load_dataset

from tsf_hf import TsfConfig, TsfForVideoClassification, TsfVideoProcessor
from tsf_hf.synthetic import MovingSquareConfig, default_cache_dir, generate_moving_square_dataset
from tsf_hf.video_processing_tsf import open_video

logger = logging.getLogger(__name__)

BUILTIN_DATASET = "moving_square"
"""`--dataset_name` of the built-in dataset (also used when no dataset is given): see `tsf_hf.synthetic`."""

MOVING_SQUARE_PRESET = {
    "image_size": 32,
    "patch_size": 8,
    "num_frames": 8,
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "initializer_range": 0.1,
}
"""A ~180k-parameter model that learns the built-in dataset from scratch on a CPU in minutes."""

CONFIG_PRESETS = ("moving-square", "base", "hr", "large")
"""`--config_name` presets: the small model above, or the paper's variants (`TsfConfig.from_variant`)."""

DEFAULT_TIME_EMBEDDING_STD = {"moving-square": 0.5}
"""Std of the temporal position table at initialisation per preset: a zero table (the library's default, as the
original) leaves a small from-scratch model blind to frame order at the start, and it then stalls at 50% on the
built-in dataset."""

BAD_VIDEO_POLICIES = ("skip", "error")


# ---------------------------------------------------------------------------------------------------------------------
# Arguments shared by both scripts


def add_common_arguments(parser) -> None:
    """Adds the data and model options both scripts share to an `argparse` parser (the Trainer script declares the
    same names in its dataclasses)."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset_name",
        type=str,
        default=None,
        help=f"Hub or local dataset; `{BUILTIN_DATASET}` "
        "(the default when no data is given) generates the built-in temporal dataset.",
    )
    group.add_argument("--dataset_config_name", type=str, default=None)
    group.add_argument("--train_dir", type=str, default=None, help="videofolder of training videos (<label>/*.mp4).")
    group.add_argument("--validation_dir", type=str, default=None, help="videofolder of validation videos.")
    group.add_argument("--train_val_split", type=float, default=0.15, help="validation share when there is none.")
    group.add_argument("--max_train_samples", type=int, default=None)
    group.add_argument("--max_eval_samples", type=int, default=None)
    group.add_argument("--video_column_name", type=str, default="video")
    group.add_argument("--label_column_name", type=str, default="label")
    group.add_argument("--cache_dir", type=str, default=None, help="datasets and built-in dataset cache folder.")
    group.add_argument("--decoded_cache_mb", type=int, default=2048, help="memory for decoded frames (0: none).")
    group.add_argument(
        "--decoded_cache_dir",
        type=str,
        default=None,
        help="where decoded splits are kept between runs (default: <cache>/decoded; 'none': nowhere).",
    )
    group.add_argument(
        "--on_bad_video",
        choices=BAD_VIDEO_POLICIES,
        default="skip",
        help="a video that cannot be decoded: skip it with a warning naming it, or stop with an error.",
    )
    group.add_argument("--builtin_num_train", type=int, default=MovingSquareConfig.num_train)
    group.add_argument("--builtin_num_validation", type=int, default=MovingSquareConfig.num_validation)
    group.add_argument("--builtin_num_test", type=int, default=MovingSquareConfig.num_test)
    group.add_argument("--builtin_seed", type=int, default=0, help="seed of the generated videos.")
    group.add_argument(
        "--train_short_side_range",
        type=int,
        nargs=2,
        default=None,
        help="training short-side jitter (default: crop x 256/224 .. 320/224, the paper's; built-in: x 1.0 .. 1.2).",
    )
    group.add_argument(
        "--horizontal_flip",
        type=_str_to_bool,
        default=None,
        help="random flip in training (default: on, off for the direction-sensitive built-in data).",
    )
    group.add_argument("--eval_temporal_clips", type=int, default=1)
    group.add_argument("--eval_spatial_crops", type=int, choices=(1, 3), default=3)

    group = parser.add_argument_group("model")
    group.add_argument("--model_name_or_path", type=str, default=None, help="pretrained model folder or Hub repo.")
    group.add_argument(
        "--config_name",
        type=str,
        default=None,
        help=f"from scratch: a preset {CONFIG_PRESETS} or a config path (default: moving-square).",
    )
    group.add_argument(
        "--init_from_vit",
        type=str,
        default=None,
        help="initialise from ImageNet ViT weights (timm checkpoint file or transformers ViT folder).",
    )
    group.add_argument("--attention_type", type=str, default=None, help="space-time scheme of a new model.")
    group.add_argument("--num_frames", type=int, default=None)
    group.add_argument("--image_size", type=int, default=None)
    group.add_argument(
        "--time_embedding_init_std",
        type=float,
        default=None,
        help="std of the temporal table of a new model (default: 0.5 for moving-square, else zeros).",
    )
    group.add_argument("--trust_remote_code", action="store_true")
    group.add_argument(
        "--ignore_mismatched_sizes",
        action="store_true",
        help="allow a new classification head of another size than the checkpoint's.",
    )
    group.add_argument("--token", type=str, default=None)


def _str_to_bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


# ---------------------------------------------------------------------------------------------------------------------
# Data


def uses_builtin_dataset(args) -> bool:
    """True when the built-in dataset is asked for, by name or by giving no data at all."""
    return args.dataset_name == BUILTIN_DATASET or (
        args.dataset_name is None and args.train_dir is None and args.validation_dir is None
    )


def load_video_datasets(args, seed: int) -> tuple[DatasetDict, list[str]]:
    """The `train` and `validation` splits (and `test` when the data has one) with videos as undecoded
    `{"path", "bytes"}` rows, and the class names. Without a validation split, `train_val_split` of train is held
    out."""
    if uses_builtin_dataset(args):
        config = MovingSquareConfig(
            num_train=args.builtin_num_train,
            num_validation=args.builtin_num_validation,
            num_test=args.builtin_num_test,
            seed=args.builtin_seed,
        )
        root = Path(args.cache_dir) / "tsf_hf" if args.cache_dir else None
        folder = generate_moving_square_dataset(root, config, progress=True)
        dataset = load_dataset("videofolder", data_dir=str(folder), cache_dir=args.cache_dir)
    elif args.dataset_name is not None:
        dataset = load_dataset(args.dataset_name, args.dataset_config_name, cache_dir=args.cache_dir, token=args.token)
    else:
        data_files = {}
        if args.train_dir is not None:
            data_files["train"] = os.path.join(args.train_dir, "**")
        if args.validation_dir is not None:
            data_files["validation"] = os.path.join(args.validation_dir, "**")
        dataset = load_dataset("videofolder", data_files=data_files, cache_dir=args.cache_dir)

    if "train" not in dataset:
        raise ValueError(f"the dataset needs a 'train' split, got {sorted(dataset)}")
    for column in (args.video_column_name, args.label_column_name):
        if column not in dataset["train"].column_names:
            raise ValueError(
                f"column {column!r} not found in the dataset (columns: {dataset['train'].column_names}); pass "
                "--video_column_name / --label_column_name"
            )
    dataset = dataset.cast_column(args.video_column_name, Video(decode=False))
    if "validation" not in dataset:
        if not 0.0 < args.train_val_split < 1.0:
            raise ValueError(f"no validation split: train_val_split must be in (0, 1), got {args.train_val_split}")
        split = dataset["train"].train_test_split(args.train_val_split, seed=seed, stratify_by_column=None)
        dataset["train"], dataset["validation"] = split["train"], split["test"]
    if args.max_train_samples is not None:
        dataset["train"] = (
            dataset["train"].shuffle(seed=seed).select(range(min(args.max_train_samples, len(dataset["train"]))))
        )
    if args.max_eval_samples is not None:
        count = min(args.max_eval_samples, len(dataset["validation"]))
        dataset["validation"] = dataset["validation"].shuffle(seed=seed).select(range(count))
    feature = dataset["train"].features[args.label_column_name]
    labels = (
        list(feature.names) if hasattr(feature, "names") else sorted(set(dataset["train"][args.label_column_name]))
    )
    return dataset, [str(label) for label in labels]


def decoded_cache_dir(args) -> Path | None:
    """`--decoded_cache_dir`, defaulting to `decoded/` in the tsf_hf cache (`--cache_dir`/tsf_hf or
    `default_cache_dir()`); `None` for "none"."""
    if args.decoded_cache_dir is not None:
        return None if args.decoded_cache_dir.lower() == "none" else Path(args.decoded_cache_dir)
    root = Path(args.cache_dir) / "tsf_hf" if args.cache_dir else default_cache_dir()
    return root / "decoded"


class DecodedVideoCache:
    """Decoded uint8 frames `(T, C, H, W)` and fps of videos, kept in memory up to `budget_mb` megabytes."""

    def __init__(self, budget_mb: int, backend: str = "auto"):
        self.budget = budget_mb * 2**20
        self.backend = backend
        self.used = 0
        self.entries: dict[Any, tuple[torch.Tensor, float | None]] = {}

    def decode(self, video: dict, key: Any) -> tuple[torch.Tensor, float | None]:
        """All frames of `video` (a `{"path", "bytes"}` row) and its fps; from memory when cached."""
        if key in self.entries:
            return self.entries[key]
        with open_video(video, backend=self.backend) as reader:
            frames = reader.get_frames(range(reader.num_frames)).contiguous()
            entry = (frames, reader.fps)
        if self.used + frames.numel() <= self.budget:
            self.entries[key] = entry
            self.used += frames.numel()
        return entry


def video_name(video: dict) -> str:
    """How a video row is named in messages: its path, else `<bytes>`."""
    return video.get("path") or "<bytes>"


def _decoded_file_key(videos: list, split: str, backend: str) -> str | None:
    """Key of a split's decoded frames on disk: the split, the decoder, and every file's path, size and time;
    `None` when a video is not a file (bytes) or is missing."""
    parts = [split, backend]
    for video in videos:
        path = video.get("path")
        if video.get("bytes") is not None or not path or not os.path.isfile(path):
            return None
        stat = os.stat(path)
        parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def check_videos(
    dataset,
    video_column: str,
    cache: DecodedVideoCache,
    policy: str,
    split: str,
    progress: bool = True,
    disk_cache_dir: str | os.PathLike | None = None,
):
    """Decodes every video of `dataset` once (filling `cache`); undecodable ones are dropped with a warning that
    names them (`policy="skip"`) or raise a `ValueError` naming them (`policy="error"`). Returns the dataset.

    With `disk_cache_dir`, a split whose frames all fit in the cache is also saved there (keyed by its files' paths,
    sizes and times), and later runs load it instead of decoding again."""
    from tqdm.auto import tqdm

    if policy not in BAD_VIDEO_POLICIES:
        raise ValueError(f"on_bad_video must be one of {BAD_VIDEO_POLICIES}, got {policy!r}")
    videos = dataset[video_column]
    key = _decoded_file_key(videos, split, cache.backend) if disk_cache_dir is not None else None
    disk_file = Path(disk_cache_dir) / f"{split}-{key}.pt" if key is not None else None
    if disk_file is not None and disk_file.is_file():
        saved = torch.load(disk_file, weights_only=True)
        for index, frames, fps in zip(saved["indices"], saved["frames"], saved["fps"]):
            cache.entries[(split, index)] = (frames, fps)
            cache.used += frames.numel()
        bad = list(zip(saved["bad_indices"], saved["bad_names"]))
    else:
        bad = []
        bar = tqdm(videos, desc=f"Decoding {split} videos", unit="video", disable=not progress)
        for index, video in enumerate(bar):
            try:
                cache.decode(video, (split, index))
            except Exception as error:  # any decoder failure: PyAV, torchcodec, missing file
                bad.append((index, f"{video_name(video)} ({type(error).__name__}: {error})"))
        indices = [index for index in range(len(videos)) if (split, index) in cache.entries]
        if disk_file is not None and len(indices) + len(bad) == len(videos):
            disk_file.parent.mkdir(parents=True, exist_ok=True)
            entries = [cache.entries[(split, index)] for index in indices]
            partial = disk_file.with_suffix(f".{os.getpid()}.tmp")
            torch.save(
                {
                    "indices": indices,
                    "frames": [frames for frames, _ in entries],
                    "fps": [fps for _, fps in entries],
                    "bad_indices": [index for index, _ in bad],
                    "bad_names": [name for _, name in bad],
                },
                partial,
            )
            partial.replace(disk_file)
    if not bad:
        return dataset
    listing = "\n  ".join(name for _, name in bad)
    if policy == "error":
        raise ValueError(
            f"{len(bad)} {split} video(s) could not be decoded:\n  {listing}\n(--on_bad_video skip drops them)"
        )
    logger.warning(f"Skipping {len(bad)} {split} video(s) that could not be decoded:\n  {listing}")
    drop = {index for index, _ in bad}
    keep = [index for index in range(len(videos)) if index not in drop]
    # cached entries are keyed by position: re-key them for the filtered dataset
    for new_index, old_index in enumerate(keep):
        entry = cache.entries.pop((split, old_index), None)
        if entry is not None:
            cache.entries[(split, new_index)] = entry
    return dataset.select(keep)


class VideoClassificationDataset(torch.utils.data.Dataset):
    """Rows of a `datasets` split as `{"pixel_values", "labels"}`: frames from the decoded cache, through the video
    processor (training augmentation when `train`). The randomness of item `i` in epoch `e` comes from a generator
    seeded with `(seed, e, i)`, so a resumed run sees exactly the clips an uninterrupted one would."""

    def __init__(self, dataset, processor, cache, video_column, label_column, split, train, seed=0):
        self.dataset, self.processor, self.cache = dataset, processor, cache
        self.videos = dataset[video_column]
        self.labels = dataset[label_column]
        self.split, self.train, self.seed, self.epoch = split, train, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any]:
        frames, fps = self.cache.decode(self.videos[index], (self.split, index))
        generator = None
        if self.train:
            generator = torch.Generator().manual_seed(zlib.crc32(f"{self.seed}/{self.epoch}/{index}".encode()))
        pixel_values = self.processor(
            frames, train=self.train, generator=generator, video_metadata={"fps": fps or 30.0}, return_tensors="pt"
        )["pixel_values"][0]
        return {"pixel_values": pixel_values, "labels": int(self.labels[index])}


def collate_fn(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": torch.tensor([example["labels"] for example in examples]),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Model and processor


def build_model_and_processor(args, labels: list[str], builtin: bool):
    """The model (pretrained, ImageNet-ViT initialised, or new from a preset / config) and its video processor, set
    up for `labels` and the example's augmentation options."""
    id2label = dict(enumerate(labels))
    label2id = {label: index for index, label in id2label.items()}
    if args.model_name_or_path is not None:
        from transformers import AutoModelForVideoClassification, AutoVideoProcessor

        model = AutoModelForVideoClassification.from_pretrained(
            args.model_name_or_path,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=args.ignore_mismatched_sizes,
            trust_remote_code=args.trust_remote_code,
            token=args.token,
        )
        if args.attention_type is not None and args.attention_type != model.config.attention_type:
            raise ValueError(
                f"--attention_type {args.attention_type!r} differs from the pretrained model's "
                f"{model.config.attention_type!r}; a pretrained model keeps its scheme"
            )
        try:
            processor = AutoVideoProcessor.from_pretrained(
                args.model_name_or_path, trust_remote_code=args.trust_remote_code, token=args.token
            )
        except OSError:
            processor = TsfVideoProcessor(num_frames=model.config.num_frames)
    else:
        model = _new_model(args, id2label, label2id)
        processor = TsfVideoProcessor(num_frames=model.config.num_frames)

    num_frames = args.num_frames or model.config.num_frames
    crop = args.image_size or model.config.image_height_width[0]
    # the paper's jitter is crop x 256/224 .. 320/224; the built-in 32 px clips get a milder one (x 1.0 .. 1.2), as
    # a stronger zoom crops the 7-10 px square out of too many frames
    paper_range = [round(crop * 256 / 224), round(crop * 320 / 224)]
    short_side_range = args.train_short_side_range or ([crop, round(crop * 1.2)] if builtin else paper_range)
    flip = args.horizontal_flip if args.horizontal_flip is not None else not builtin
    settings = {
        "num_frames": num_frames,
        "size": {"shortest_edge": crop},
        "crop_size": {"height": crop, "width": crop},
        "train_short_side_range": list(short_side_range),
        "train_flip": flip,
        "num_temporal_clips": args.eval_temporal_clips,
        "num_spatial_crops": args.eval_spatial_crops,
    }
    for key, value in settings.items():
        setattr(processor, key, value)
    return model, processor


def _new_model(args, id2label, label2id) -> TsfForVideoClassification:
    overrides = {
        key: value
        for key, value in (
            ("attention_type", args.attention_type),
            ("num_frames", args.num_frames),
            ("image_size", args.image_size),
        )
        if value is not None
    }
    if args.init_from_vit is not None:
        from tsf_hf.conversion import init_from_imagenet_vit, load_imagenet_vit

        vit_state_dict, known = load_imagenet_vit(args.init_from_vit)
        return init_from_imagenet_vit(
            vit_state_dict,
            id2label=id2label,
            num_attention_heads=known.get("num_attention_heads", 12),
            layer_norm_eps=known.get("layer_norm_eps", 1e-6),
            **overrides,
        ).train()
    preset = args.config_name or "moving-square"
    if preset == "moving-square":
        config = TsfConfig(**{**MOVING_SQUARE_PRESET, **overrides}, id2label=id2label, label2id=label2id)
    elif preset in CONFIG_PRESETS:
        config = TsfConfig.from_variant(preset, **overrides, id2label=id2label, label2id=label2id)
    else:
        config = TsfConfig.from_pretrained(preset, **overrides, id2label=id2label, label2id=label2id)
    model = TsfForVideoClassification(config)
    std = args.time_embedding_init_std
    if std is None:
        std = DEFAULT_TIME_EMBEDDING_STD.get(preset, 0.0)
    if std > 0 and model.tsf.embeddings.time_embeddings is not None:
        with torch.no_grad():
            model.tsf.embeddings.time_embeddings.normal_(0.0, std)
    return model


NO_DECAY_PATTERNS = ("bias", "norm", "cls_token", "position_embeddings", "time_embeddings")


def decays(name: str) -> bool:
    """Whether a parameter gets weight decay: not biases, norms, or the cls / position / time tables."""
    return not any(pattern in name for pattern in NO_DECAY_PATTERNS)


def optimizer_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    return [
        {"params": [p for n, p in named if decays(n)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if not decays(n)], "weight_decay": 0.0},
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Reporting


def results_table(results: dict[str, Any]) -> str:
    """A plain two-column table of results."""
    rows = [(key, f"{value:.4f}" if isinstance(value, float) else str(value)) for key, value in results.items()]
    width = max(len(key) for key, _ in rows)
    value_width = max(len(value) for _, value in rows)
    line = f"+-{'-' * width}-+-{'-' * value_width}-+"
    body = [f"| {key:<{width}} | {value:>{value_width}} |" for key, value in rows]
    return "\n".join([line, *body, line])


def write_model_card(output_dir: str, args, results: dict[str, Any], labels: list[str], script: str) -> Path:
    """README.md of the trained model: what it is, how it was trained, its evaluation results, how to use it."""
    dataset = BUILTIN_DATASET if uses_builtin_dataset(args) else (args.dataset_name or "videofolder")
    config = json.loads((Path(output_dir) / "config.json").read_text())
    top1 = results.get("eval_top1_accuracy")
    metadata = [
        "---",
        "library_name: transformers",
        "pipeline_tag: video-classification",
        "tags:",
        "- tsf",
        "- timesformer",
        "- video-classification",
    ]
    if top1 is not None:
        metadata += [
            "model-index:",
            f"- name: {Path(output_dir).name}",
            "  results:",
            "  - task:",
            "      type: video-classification",
            "    dataset:",
            f"      name: {dataset}",
            f"      type: {dataset}",
            "    metrics:",
            "    - type: accuracy",
            "      name: top-1 accuracy",
            f"      value: {top1:.4f}",
        ]
    metadata.append("---")
    rows = "\n".join(
        f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |"
        for key, value in results.items()
    )
    header = "\n".join(metadata)
    architecture = f"{config.get('num_frames')} frames of {config.get('image_size')}px"
    if args.model_name_or_path is not None:
        origin = f"fine-tuned from `{args.model_name_or_path}`"
    elif args.init_from_vit is not None:
        origin = f"initialised from the ImageNet ViT `{args.init_from_vit}` and fine-tuned"
    else:
        origin = f"trained from scratch (`{args.config_name or 'moving-square'}` configuration)"
    repo = getattr(args, "hub_model_id", None) or "<this repo>"
    class_list = ", ".join(labels[:10]) + (", ..." if len(labels) > 10 else "")
    card = f"""{header}

# {Path(output_dir).name}

TimeSformer ({config.get("attention_type")} attention, {architecture},
width {config.get("hidden_size")}, {config.get("num_hidden_layers")} layers) {origin} for video
classification on `{dataset}` ({len(labels)} classes: {class_list}) with `examples/{script}` of tsf_hf.

## Evaluation ({args.eval_temporal_clips} x {args.eval_spatial_crops} views per video)

| metric | value |
|---|---|
{rows}

## Use

```python
from transformers import pipeline

classifier = pipeline("video-classification", model="{repo}", trust_remote_code=True)
classifier("video.mp4")
```
"""
    path = Path(output_dir) / "README.md"
    path.write_text(card)
    return path


def predict_held_out(output_dir: str, dataset: DatasetDict, video_column: str, label_column: str, labels: list[str]):
    """Loads the saved folder in `pipeline("video-classification")` and classifies one held-out video (test split,
    else validation); returns (path, true label, predictions)."""
    from transformers import pipeline

    split = dataset["test"] if "test" in dataset else dataset["validation"]
    row = split[len(split) // 2]
    video = row[video_column]
    source = video.get("path") if video.get("bytes") is None else video["bytes"]
    classifier = pipeline("video-classification", model=output_dir, device="cpu")
    predictions = classifier(source, top_k=min(3, len(labels)))
    return video_name(video), labels[row[label_column]], predictions
