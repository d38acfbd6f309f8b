"""Conversion of TimeSformer weights into `tsf_hf` models.

Three sources are supported:

- checkpoints of the original implementation (`.pyth` files of its model zoo, or any checkpoint trained with that
  code): `convert_original_checkpoint`;
- `transformers`' `TimesformerForVideoClassification` folders (the `facebook/timesformer-*` Hub layout):
  `convert_transformers_timesformer`;
- ImageNet ViT-B/16 weights (timm's `vit_base_patch16_224` layout or a `transformers` `ViTModel` folder), turned into
  a TimeSformer initialisation the way the released models were trained: `convert_imagenet_vit`.

Loading is strict (every missing, unexpected or mis-shaped key is an error that names it) and safe (pickles are
read with `torch.load(weights_only=True)` unless the caller explicitly opts in to full unpickling).
"""

import argparse
import json
import math
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from transformers.utils import logging

from .configuration_tsf import TsfConfig
from .modeling_tsf import TsfForVideoClassification


if TYPE_CHECKING:
    from transformers import TimesformerConfig, ViTConfig

    from .image_processing_tsf import TsfImageProcessor
    from .video_processing_tsf import TsfVideoProcessor


logger = logging.get_logger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# Datasets of the released checkpoints and their evaluation protocols


@dataclass(frozen=True)
class DatasetSpec:
    """What a released checkpoint's dataset implies: class names, frame sampling protocol and the paper's results.

    `results` and `sampling_rates` are keyed by `(num_frames, image_size)` of the checkpoint."""

    key: str
    name: str
    url: str
    num_classes: int | None
    label_file: str | None
    sampling_strategy: str
    sampling_rates: dict[tuple[int, int], int] = field(default_factory=dict)
    bgr: bool = False
    results: dict[tuple[int, int], str] = field(default_factory=dict)
    test_protocol: str = "1 temporal clip x 3 spatial crops"


_KINETICS_SAMPLING_RATES = {(8, 224): 32, (16, 448): 16, (96, 224): 4}
"""Frame stride of the Kinetics-400 and -600 checkpoints, by `(num_frames, image_size)`."""

DATASETS: dict[str, DatasetSpec] = {
    "k400": DatasetSpec(
        key="k400",
        name="Kinetics-400",
        url="https://deepmind.com/research/open-source/kinetics",
        num_classes=400,
        label_file="kinetics400_id2label.json",
        sampling_strategy="dense",
        sampling_rates=_KINETICS_SAMPLING_RATES,
        results={(8, 224): "78.0 / 93.7", (16, 448): "79.7 / 94.4", (96, 224): "80.7 / 94.7"},
    ),
    "k600": DatasetSpec(
        key="k600",
        name="Kinetics-600",
        url="https://deepmind.com/research/open-source/kinetics",
        num_classes=600,
        label_file="kinetics600_id2label.json",
        sampling_strategy="dense",
        sampling_rates=_KINETICS_SAMPLING_RATES,
        results={(8, 224): "79.1 / 94.4", (16, 448): "81.8 / 95.8", (96, 224): "82.2 / 95.6"},
    ),
    "ssv2": DatasetSpec(
        key="ssv2",
        name="Something-Something-v2",
        url="https://developer.qualcomm.com/software/ai-datasets/something-something",
        num_classes=174,
        label_file="something_something_v2_id2label.json",
        sampling_strategy="segment",
        bgr=True,
        results={(8, 224): "59.5 / -"},
    ),
    "howto100m": DatasetSpec(
        key="howto100m",
        name="HowTo100M (long-term task classification)",
        url="https://www.di.ens.fr/willow/research/howto100m/",
        num_classes=None,
        label_file=None,
        sampling_strategy="dense",
        sampling_rates={(8, 224): 32, (32, 224): 32, (64, 224): 32, (96, 224): 32},
        results={(8, 224): "56.8 / -", (32, 224): "61.2 / -", (64, 224): "62.2 / -", (96, 224): "62.6 / -"},
        test_protocol="48, 12, 6 or 4 clips per video (8, 32, 64 or 96 frames), logits averaged",
    ),
}
"""The datasets of the original model zoo. Results are the paper's top-1 / top-5 (%) for each checkpoint."""

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
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
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


def _sampling_rate_from_name(file_name: str, num_frames: int) -> int | None:
    """The `8x32` style `frames x rate` in a zoo file name, if its frame count agrees with the checkpoint."""
    for frames, rate in re.findall(r"(\d+)x(\d+)", Path(file_name).name):
        if int(frames) == num_frames:
            return int(rate)
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Reading checkpoints safely


class UnsafeCheckpointError(ValueError):
    """A checkpoint needs arbitrary unpickling (it references Python objects beyond tensors and plain containers)."""


def load_checkpoint_file(path: str | os.PathLike, allow_unsafe_pickle: bool = False) -> object:
    """Loads a `torch.save` file (or a `.safetensors` file) on the CPU.

    Pickles are read with `torch.load(weights_only=True)`, which refuses to run code: a file that needs more raises
    `UnsafeCheckpointError` unless `allow_unsafe_pickle=True` (only for files from a source you trust). A missing,
    truncated or non-checkpoint file raises `ValueError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"{path} is not a readable safetensors file: {error}") from error
    with open(path, "rb") as file:
        is_zip_archive = file.read(4) == b"PK\x03\x04"
    if is_zip_archive and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is an incomplete zip archive: the checkpoint is truncated or not a checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_unsafe_pickle)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Unsupported global" not in message:
            raise ValueError(f"{path} is not a PyTorch checkpoint (unpickling failed: {message})") from error
        detail = next(line.strip() for line in message.splitlines() if "Unsupported global" in line)
        raise UnsafeCheckpointError(
            f"{path} holds Python objects that loading it would have to execute (arbitrary code), so it was refused "
            f"and nothing in it was run. Released TimeSformer checkpoints load without this. If you trust the file's "
            f"source, opt in with allow_unsafe_pickle=True (--allow_unsafe_pickle on the command line). Detail: "
            f"{detail}"
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(
            f"{path} could not be read as a PyTorch checkpoint; it may be truncated or not a checkpoint "
            f"({type(error).__name__}: {error})"
        ) from error


_WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"
)


def load_pretrained_weights(model_path: str | os.PathLike, token: str | None = None) -> dict[str, torch.Tensor]:
    """Every weight of a `save_pretrained` folder or Hub repo, exactly as stored: `model.safetensors`, or
    `pytorch_model.bin` read with `torch.load(weights_only=True)` (no code runs), either one possibly sharded with an
    index. Unlike `from_pretrained`, nothing is initialised, dropped or renamed, so callers can load strictly."""
    from transformers.utils import cached_file

    def resolve(name: str) -> str | None:
        return cached_file(
            str(model_path),
            name,
            token=token,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )

    for name in _WEIGHT_FILES:
        resolved = resolve(name)
        if resolved is None:
            continue
        if not name.endswith(".index.json"):
            return load_checkpoint_file(resolved)
        shards = sorted(set(json.loads(Path(resolved).read_text(encoding="utf-8"))["weight_map"].values()))
        weights = {}
        for shard in shards:
            shard_file = resolve(shard)
            if shard_file is None:
                raise ValueError(f"{model_path}: the index {name} names the shard {shard}, which is not there")
            weights.update(load_checkpoint_file(shard_file))
        return weights
    raise ValueError(f"{model_path} holds no weights: expected one of {list(_WEIGHT_FILES)}")


_CONTAINER_KEYS = ("model_state", "model", "state_dict", "module")
_KEY_PREFIXES = ("module.", "model.")


def extract_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """The model weights inside a checkpoint: the original's `{"model_state": ...}` container or `{"model": ...}`,
    `{"state_dict": ...}`, or a bare state dict; `module.` (DataParallel) and `model.` prefixes are removed."""
    state_dict = checkpoint
    while isinstance(state_dict, Mapping) and not _is_tensor_dict(state_dict):
        container = next((key for key in _CONTAINER_KEYS if isinstance(state_dict.get(key), Mapping)), None)
        if container is None:
            keys = sorted(map(str, state_dict))[:10]
            raise ValueError(
                f"could not find model weights in the checkpoint: expected a state dict or a dict with one of "
                f"{list(_CONTAINER_KEYS)}, got a dict with keys {keys}"
            )
        state_dict = state_dict[container]
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ValueError(f"expected a non-empty state dict in the checkpoint, got {type(state_dict).__name__}")
    cleaned = {}
    for key, value in state_dict.items():
        while key.startswith(_KEY_PREFIXES):
            key = key.split(".", 1)[1]
        cleaned[key] = value
    return cleaned


def _is_tensor_dict(mapping: Mapping) -> bool:
    return len(mapping) > 0 and all(isinstance(value, torch.Tensor) for value in mapping.values())


# ---------------------------------------------------------------------------------------------------------------------
# Key mappings between the original layout, transformers' Timesformer and tsf_hf

# (original suffix, transformers suffix) inside blocks.i / encoder.layer.i
_BLOCK_KEYS_ORIGINAL_TO_TRANSFORMERS = {
    "norm1": "layernorm_before",
    "attn.qkv": "attention.attention.qkv",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "temporal_norm1": "temporal_layernorm",
    "temporal_attn.qkv": "temporal_attention.attention.qkv",
    "temporal_attn.proj": "temporal_attention.output.dense",
    "temporal_fc": "temporal_dense",
}
# original key prefix -> the same module inside either encoder (transformers' `timesformer.`, tsf's `tsf.`)
_TOP_KEYS_ORIGINAL_TO_ENCODER = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "time_embed": "embeddings.time_embeddings",
    "patch_embed.proj": "embeddings.patch_embeddings.projection",
    "norm": "layernorm",
}


def _top_keys_original_to(encoder_prefix: str) -> dict[str, str]:
    """Original top-level key prefixes -> those of a model whose encoder is at `encoder_prefix`."""
    keys = {key: f"{encoder_prefix}.{name}" for key, name in _TOP_KEYS_ORIGINAL_TO_ENCODER.items()}
    return {**keys, "head": "classifier"}


_TOP_KEYS_ORIGINAL_TO_TRANSFORMERS = _top_keys_original_to("timesformer")
_TOP_KEYS_ORIGINAL_TO_TSF = _top_keys_original_to("tsf")


def _block_keys_original_to_tsf(attention_type: str) -> dict[str, str]:
    """Original block sub-keys -> tsf block sub-keys for the three official schemes."""
    keys = {"norm2": "norm", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    if attention_type == "divided_space_time":
        keys.update(
            {
                "temporal_norm1": "steps.0.norm",
                "temporal_attn.qkv": "steps.0.attention.qkv",
                "temporal_attn.proj": "steps.0.attention.proj",
                "temporal_fc": "steps.0.fc",
                "norm1": "steps.1.norm",
                "attn.qkv": "steps.1.attention.qkv",
                "attn.proj": "steps.1.attention.proj",
            }
        )
    elif attention_type in ("joint_space_time", "space_only"):
        keys.update(
            {"norm1": "steps.0.norm", "attn.qkv": "steps.0.attention.qkv", "attn.proj": "steps.0.attention.proj"}
        )
    else:
        raise ValueError(
            "the original layout exists for divided_space_time, joint_space_time and space_only, got "
            f"{attention_type!r}"
        )
    return keys


_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$")
_TOP_KEY = re.compile(r"^(.+?)(?:\.(weight|bias))?$")
_TSF_BLOCK_KEY = re.compile(r"^tsf\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def _rename(
    state_dict: Mapping[str, torch.Tensor],
    top_keys: Mapping[str, str],
    block_keys: Mapping[str, str],
    block_pattern: re.Pattern,
    block_template: str,
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Renames keys by table. Returns the renamed dict, new name -> source name, and the unknown source keys."""
    renamed, sources, unknown = {}, {}, []
    for key, value in state_dict.items():
        block = block_pattern.match(key)
        new_key = None
        if block:
            index, name, kind = block.groups()
            if name in block_keys:
                new_key = f"{block_template.format(index=index)}.{block_keys[name]}.{kind}"
        else:
            name, kind = _TOP_KEY.match(key).groups()
            if name in top_keys:
                new_key = top_keys[name] + (f".{kind}" if kind else "")
        if new_key is None:
            unknown.append(key)
        else:
            renamed[new_key] = value
            sources[new_key] = key
    return renamed, sources, unknown


def original_to_tsf_state_dict(
    state_dict: Mapping[str, torch.Tensor], attention_type: str
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Renames an original-layout state dict (prefixes already removed) to `TsfForVideoClassification` keys.
    Returns `(renamed, {tsf key: original key}, unknown original keys)`."""
    return _rename(
        state_dict,
        _TOP_KEYS_ORIGINAL_TO_TSF,
        _block_keys_original_to_tsf(attention_type),
        _BLOCK_KEY,
        "tsf.layers.{index}",
    )


def tsf_key_to_original(key: str, attention_type: str) -> str | None:
    """The original-layout name of a `TsfForVideoClassification` key (for error messages), or `None`."""
    block = _TSF_BLOCK_KEY.match(key)
    if block:
        index, name, kind = block.groups()
        inverse = _inverted(_block_keys_original_to_tsf(attention_type))
        return f"blocks.{index}.{inverse[name]}.{kind}" if name in inverse else None
    name, kind = _TOP_KEY.match(key).groups()
    inverse = _inverted(_TOP_KEYS_ORIGINAL_TO_TSF)
    return inverse[name] + (f".{kind}" if kind else "") if name in inverse else None


def original_to_transformers_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames an original-layout state dict to `transformers`' `TimesformerForVideoClassification` keys."""
    renamed, _, unknown = _rename(
        state_dict,
        _TOP_KEYS_ORIGINAL_TO_TRANSFORMERS,
        _BLOCK_KEYS_ORIGINAL_TO_TRANSFORMERS,
        _BLOCK_KEY,
        "timesformer.encoder.layer.{index}",
    )
    if unknown:
        raise ValueError(f"keys without a transformers Timesformer equivalent: {unknown}")
    return renamed


_TRANSFORMERS_BLOCK_KEY = re.compile(r"^timesformer\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def _transformers_to_tsf_tables(attention_type: str) -> tuple[dict[str, str], dict[str, str]]:
    """(top-level, block) key tables from `transformers`' Timesformer names to tsf names, composed from the tables
    of the original layout."""
    to_tsf = _block_keys_original_to_tsf(attention_type)
    block_keys = {hf: to_tsf[orig] for orig, hf in _BLOCK_KEYS_ORIGINAL_TO_TRANSFORMERS.items() if orig in to_tsf}
    top_keys = {hf: _TOP_KEYS_ORIGINAL_TO_TSF[orig] for orig, hf in _TOP_KEYS_ORIGINAL_TO_TRANSFORMERS.items()}
    return top_keys, block_keys


def _inverted(table: Mapping[str, str]) -> dict[str, str]:
    return {target: source for source, target in table.items()}


def transformers_to_tsf_state_dict(
    state_dict: Mapping[str, torch.Tensor], attention_type: str
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Renames a `transformers` `TimesformerForVideoClassification` state dict to `TsfForVideoClassification` keys.
    Returns `(renamed, {tsf key: transformers key}, unknown transformers keys)`."""
    top_keys, block_keys = _transformers_to_tsf_tables(attention_type)
    return _rename(state_dict, top_keys, block_keys, _TRANSFORMERS_BLOCK_KEY, "tsf.layers.{index}")


def tsf_to_transformers_state_dict(
    state_dict: Mapping[str, torch.Tensor], attention_type: str
) -> dict[str, torch.Tensor]:
    """Renames a `TsfForVideoClassification` state dict to `transformers`' `TimesformerForVideoClassification` keys
    (the inverse of `transformers_to_tsf_state_dict`), for the schemes both implement: `divided_space_time`,
    `joint_space_time` and `space_only`. Keys without an equivalent raise a `ValueError` naming them."""
    top_keys, block_keys = _transformers_to_tsf_tables(attention_type)
    renamed, _, unknown = _rename(
        state_dict, _inverted(top_keys), _inverted(block_keys), _TSF_BLOCK_KEY, "timesformer.encoder.layer.{index}"
    )
    if unknown:
        raise ValueError(
            f"keys without a transformers Timesformer equivalent for {attention_type!r}: {sorted(unknown)}"
        )
    return renamed


# ---------------------------------------------------------------------------------------------------------------------
# Configs from weights and strict loading


def infer_original_config(
    state_dict: Mapping[str, torch.Tensor],
    num_attention_heads: int = 12,
    layer_norm_eps: float = 1e-6,
    image_size: int | tuple[int, int] | None = None,
    id2label: Mapping[int, str] | None = None,
) -> TsfConfig:
    """A `TsfConfig` for an original-layout state dict (width from the cls token, patch size from the
    convolution, image size from the spatial table (square unless `image_size` is given), frames from the temporal
    table, depth from the block indices, classes from the head, scheme from the keys present). The head count and
    LayerNorm epsilon cannot be read from weights: they are arguments (the releases use 12 and 1e-6)."""
    required = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight", "head.weight")
    missing = [key for key in required if key not in state_dict]
    if missing:
        raise ValueError(
            f"not a TimeSformer checkpoint in the original layout: missing keys {missing} "
            f"(found e.g. {sorted(state_dict)[:8]})"
        )
    hidden_size = state_dict["cls_token"].shape[-1]
    patch_weight = state_dict["patch_embed.proj.weight"]
    patch_size = patch_weight.shape[-1]
    num_patches = state_dict["pos_embed"].shape[1] - 1
    if image_size is None:
        side = round(num_patches**0.5)
        if side * side != num_patches:
            raise ValueError(
                f"the spatial position table has {num_patches} patch rows, not a square grid: pass image_size=(height, "
                f"width) with (height / {patch_size}) * (width / {patch_size}) == {num_patches}"
            )
        image_size = side * patch_size
    else:
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if (height // patch_size) * (width // patch_size) != num_patches:
            raise ValueError(
                f"image_size {image_size} gives {(height // patch_size) * (width // patch_size)} patches, but the "
                f"spatial position table has {num_patches}"
            )
    if "blocks.0.temporal_attn.qkv.weight" in state_dict:
        attention_type = "divided_space_time"
    elif "time_embed" in state_dict:
        attention_type = "joint_space_time"
    else:
        attention_type = "space_only"
    block_indices = {int(match.group(1)) for key in state_dict if (match := _BLOCK_KEY.match(key))}
    num_classes = state_dict["head.weight"].shape[0]
    if id2label is None:
        id2label = generic_label_names(num_classes)
    return TsfConfig(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=patch_weight.shape[1],
        num_frames=state_dict["time_embed"].shape[1] if "time_embed" in state_dict else 8,
        hidden_size=hidden_size,
        num_hidden_layers=max(block_indices) + 1,
        num_attention_heads=num_attention_heads,
        intermediate_size=state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        layer_norm_eps=layer_norm_eps,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        attention_type=attention_type,
        id2label=dict(id2label),
        label2id={name: index for index, name in id2label.items()},
    )


def check_state_dict_fits(
    expected_shapes: Mapping[str, tuple[int, ...]],
    state_dict: Mapping[str, torch.Tensor],
    sources: Mapping[str, str] | None = None,
    unknown: list[str] | None = None,
    source_name_of_missing: Callable[[str], str | None] | None = None,
) -> None:
    """Raises a `ValueError` listing every key of `expected_shapes` that `state_dict` lacks, every key it has beyond
    them (plus the `unknown` source keys that had no mapping) and every shape that differs, each by its name in the
    source when `sources` maps it (missing keys: `source_name_of_missing(key)`, when given)."""
    sources = sources or {}
    missing = sorted(set(expected_shapes) - set(state_dict))
    if source_name_of_missing is not None:
        missing = [f"{source_name_of_missing(key) or '?'} (-> {key})" for key in missing]
    unexpected = sorted(unknown or []) + sorted(sources.get(key, key) for key in set(state_dict) - set(expected_shapes))
    mismatched = [
        f"{sources.get(key, key)}: checkpoint {tuple(value.shape)}, model {tuple(expected_shapes[key])}"
        for key, value in state_dict.items()
        if key in expected_shapes and tuple(value.shape) != tuple(expected_shapes[key])
    ]
    problems = []
    if missing:
        problems.append(f"missing keys (model parameters the checkpoint lacks): {missing}")
    if unexpected:
        problems.append(f"unexpected keys (checkpoint entries the model has no place for): {unexpected}")
    if mismatched:
        problems.append(f"mis-shaped keys: {mismatched}")
    if problems:
        raise ValueError("the checkpoint does not fit the model:\n  " + "\n  ".join(problems))


def load_state_dict_strictly(
    model: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    sources: Mapping[str, str] | None = None,
    unknown: list[str] | None = None,
    source_name_of_missing: Callable[[str], str | None] | None = None,
) -> None:
    """Loads `state_dict` into `model`, raising a `ValueError` that lists every missing, unexpected (including
    `unknown` source keys that have no mapping) and mis-shaped key, by its name in the source when `sources` maps it
    (missing keys: `source_name_of_missing(model_key)`, when given)."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    check_state_dict_fits(expected, state_dict, sources, unknown, source_name_of_missing)
    model.load_state_dict(state_dict, strict=True)


# ---------------------------------------------------------------------------------------------------------------------
# ImageNet ViT -> TimeSformer initialisation

_VIT_DROPPED_PREFIXES = ("head.", "pre_logits.", "pooler.", "classifier.")
# ImageNet ViT key tables, into timm's names (also the original TimeSformer's), which are the canonical ones
_VIT_TOP_KEYS_TIMM = {name: name for name in ("cls_token", "pos_embed", "patch_embed.proj", "norm")}
_VIT_TOP_KEYS_TRANSFORMERS = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection": "patch_embed.proj",
    "layernorm": "norm",
}
_VIT_BLOCK_KEYS_TIMM = {name: name for name in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")}
_VIT_BLOCK_KEYS_TRANSFORMERS_FILE = {  # transformers ViT, as saved in files
    "attention.attention.query": "attn.q",
    "attention.attention.key": "attn.k",
    "attention.attention.value": "attn.v",
    "attention.output.dense": "attn.proj",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_VIT_BLOCK_KEYS_TRANSFORMERS_MODULE = {  # transformers ViT, in memory (5.x module names)
    "attention.q_proj": "attn.q",
    "attention.k_proj": "attn.k",
    "attention.v_proj": "attn.v",
    "attention.o_proj": "attn.proj",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_VIT_TOP_KEYS = {**_VIT_TOP_KEYS_TIMM, **_VIT_TOP_KEYS_TRANSFORMERS}
_VIT_BLOCK_KEYS = {**_VIT_BLOCK_KEYS_TIMM, **_VIT_BLOCK_KEYS_TRANSFORMERS_FILE, **_VIT_BLOCK_KEYS_TRANSFORMERS_MODULE}
_QKV_PARTS = {"q": "query", "k": "key", "v": "value"}
_VIT_BLOCK_KEY = re.compile(r"^(?:blocks|encoder\.layer|layers)\.(\d+)\.(.+)\.(weight|bias)$")


def canonical_vit_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Brings ImageNet ViT weights into timm's layout (`cls_token`, `pos_embed`, `patch_embed.proj`,
    `blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `norm`): from timm's own layout or `transformers`'
    `ViTModel` / `ViTForImageClassification` (as saved, or its in-memory names). The classification head, pre-logits
    and pooler are dropped (a video model gets a new head); any other unknown key is an error."""
    stripped = {}
    for key, value in state_dict.items():
        while key.startswith(("module.", "vit.")):
            key = key.split(".", 1)[1]
        if not key.startswith(_VIT_DROPPED_PREFIXES):
            stripped[key] = value
    renamed, _, unknown = _rename(stripped, _VIT_TOP_KEYS, _VIT_BLOCK_KEYS, _VIT_BLOCK_KEY, "blocks.{index}")
    if unknown:
        raise ValueError(f"unexpected keys for an ImageNet ViT (timm or transformers layout): {sorted(unknown)}")
    for index in sorted({int(match.group(1)) for key in renamed if (match := _BLOCK_KEY.match(key))}):
        prefix = f"blocks.{index}.attn"
        for kind in ("weight", "bias"):
            parts = {name: renamed.pop(f"{prefix}.{name}.{kind}", None) for name in _QKV_PARTS}
            absent = [_QKV_PARTS[name] for name, part in parts.items() if part is None]
            if not absent:
                renamed[f"{prefix}.qkv.{kind}"] = torch.cat(list(parts.values()), dim=0)
            elif len(absent) < len(parts):
                raise ValueError(f"block {index} has some of the query/key/value {kind}s but lacks {absent}")
    required = (
        "cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.mlp.fc1.weight",
        "norm.weight",
    )
    missing = [key for key in required if key not in renamed]
    if missing:
        raise ValueError(f"not an ImageNet ViT checkpoint: missing {missing} (found e.g. {sorted(renamed)[:8]})")
    return renamed


POSITION_RESIZE_MODES = ("bicubic", "bilinear", "nearest", "legacy")


def resize_spatial_position_table(
    table: torch.Tensor, grid: tuple[int, int], mode: str = "bicubic"
) -> torch.Tensor:
    """Resizes a `(1, 1 + N0, D)` table (cls row first, square `N0` grid) to a `rows x cols` grid, keeping the cls
    row. `bicubic` / `bilinear` / `nearest` resize the 2-D grid; `legacy` reproduces the original TimeSformer's 1-D
    nearest resize of the flattened patch rows (which scrambles the layout; only for exact reproduction)."""
    if mode not in POSITION_RESIZE_MODES:
        raise ValueError(f"position table resize mode must be one of {POSITION_RESIZE_MODES}, got {mode!r}")
    rows, cols = grid
    cls_row, patch_rows = table[:, :1], table[:, 1:]
    if patch_rows.shape[1] == rows * cols:
        return table.clone()
    hidden_size = table.shape[-1]
    if mode == "legacy":
        resized = F.interpolate(patch_rows.transpose(1, 2), size=rows * cols, mode="nearest").transpose(1, 2)
        return torch.cat([cls_row, resized], dim=1)
    side = round(patch_rows.shape[1] ** 0.5)
    if side * side != patch_rows.shape[1]:
        raise ValueError(f"the source position table has {patch_rows.shape[1]} patch rows, not a square grid")
    source = patch_rows.reshape(1, side, side, hidden_size).permute(0, 3, 1, 2).float()
    extra = {} if mode == "nearest" else {"align_corners": False}
    resized = F.interpolate(source, size=(rows, cols), mode=mode, **extra).to(table.dtype)
    return torch.cat([cls_row, resized.flatten(2).transpose(1, 2)], dim=1)


def vit_to_tsf_state_dict(
    vit_state_dict: Mapping[str, torch.Tensor], config: TsfConfig, position_resize: str = "bicubic"
) -> dict[str, torch.Tensor]:
    """`TsfModel` weights (no `tsf.` prefix, no head) initialised from a canonical ImageNet ViT state dict, as the
    released models were: patch embedding, cls token, blocks and final norm copied; spatial position table resized to
    `config`'s grid; every attention step of a block (temporal, local/global, width/height...) starts as a copy of
    the ViT's attention and its norm; every step's extra fc and the temporal table start at zero."""
    rows, cols = (side // config.patch_size for side in config.image_height_width)
    hidden_size = config.hidden_size
    state = {
        "embeddings.cls_token": vit_state_dict["cls_token"].clone(),
        "embeddings.position_embeddings": resize_spatial_position_table(
            vit_state_dict["pos_embed"], (rows, cols), position_resize
        ),
        "embeddings.patch_embeddings.projection.weight": vit_state_dict["patch_embed.proj.weight"].clone(),
        "embeddings.patch_embeddings.projection.bias": vit_state_dict["patch_embed.proj.bias"].clone(),
        "layernorm.weight": vit_state_dict["norm.weight"].clone(),
        "layernorm.bias": vit_state_dict["norm.bias"].clone(),
    }
    if config.attention_type != "space_only":
        state["embeddings.time_embeddings"] = torch.zeros(1, config.num_frames, hidden_size)
    steps = config.attention_steps
    for index in range(config.num_hidden_layers):
        source, target = f"blocks.{index}.", f"layers.{index}."
        for kind in ("weight", "bias"):
            for step in range(len(steps)):
                step_prefix = f"{target}steps.{step}."
                state[f"{step_prefix}norm.{kind}"] = vit_state_dict[f"{source}norm1.{kind}"].clone()
                state[f"{step_prefix}attention.proj.{kind}"] = vit_state_dict[f"{source}attn.proj.{kind}"].clone()
                if f"{source}attn.qkv.{kind}" in vit_state_dict:
                    state[f"{step_prefix}attention.qkv.{kind}"] = vit_state_dict[f"{source}attn.qkv.{kind}"].clone()
                if step < len(steps) - 1:
                    shape = (hidden_size, hidden_size) if kind == "weight" else (hidden_size,)
                    state[f"{step_prefix}fc.{kind}"] = torch.zeros(shape)
            state[f"{target}norm.{kind}"] = vit_state_dict[f"{source}norm2.{kind}"].clone()
            for name in ("fc1", "fc2"):
                state[f"{target}mlp.{name}.{kind}"] = vit_state_dict[f"{source}mlp.{name}.{kind}"].clone()
    return state


def vit_config_values(vit_state_dict: Mapping[str, torch.Tensor]) -> dict[str, int | bool]:
    """The architecture fields a ViT's weights determine: width, patch size, channels, depth, MLP width, qkv bias."""
    patch_weight = vit_state_dict["patch_embed.proj.weight"]
    depth = 1 + max(int(match.group(1)) for key in vit_state_dict if (match := _BLOCK_KEY.match(key)))
    return {
        "hidden_size": vit_state_dict["cls_token"].shape[-1],
        "patch_size": patch_weight.shape[-1],
        "num_channels": patch_weight.shape[1],
        "num_hidden_layers": depth,
        "intermediate_size": vit_state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        "qkv_bias": any(key.endswith(".attn.qkv.bias") for key in vit_state_dict),
    }


def load_imagenet_vit(
    source: str | os.PathLike, allow_unsafe_pickle: bool = False, token: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, int | float]]:
    """Reads ImageNet ViT weights from a timm-style checkpoint file (`.pth`, `.bin`, `.safetensors`) or a
    `transformers` ViT folder / Hub repo, strictly: a missing, unexpected or mis-shaped weight (against the folder's
    config, or for a file the ViT its weights describe) is a `ValueError` naming it, in timm's names. Returns the
    canonical state dict and what is known of its config (`num_attention_heads`, `layer_norm_eps` for `transformers`
    folders)."""
    from transformers import ViTConfig

    path = Path(source)
    if path.is_file():
        state_dict = canonical_vit_state_dict(extract_state_dict(load_checkpoint_file(path, allow_unsafe_pickle)))
        config, known = _vit_config_from_weights(state_dict), {}
    else:
        config = ViTConfig.from_pretrained(str(source), token=token)
        if config.hidden_act != "gelu":
            raise ValueError(f"TimeSformer uses exact GELU; the ViT at {source} uses {config.hidden_act!r}")
        state_dict = canonical_vit_state_dict(load_pretrained_weights(source, token))
        known = {"num_attention_heads": config.num_attention_heads, "layer_norm_eps": config.layer_norm_eps}
    try:
        check_state_dict_fits(_vit_weight_shapes(config), state_dict)
    except ValueError as error:
        raise ValueError(f"ImageNet ViT weights at {source} (keys in timm's names): {error}") from None
    return state_dict, known


def _vit_config_from_weights(vit_state_dict: Mapping[str, torch.Tensor]) -> "ViTConfig":
    """The `transformers` `ViTConfig` whose weights have these shapes (one head: heads do not change shapes)."""
    from transformers import ViTConfig

    values = vit_config_values(vit_state_dict)
    num_patches = vit_state_dict["pos_embed"].shape[1] - 1
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"the ViT's position table has {num_patches} patch rows, not a square grid")
    return ViTConfig(image_size=side * values["patch_size"], num_attention_heads=1, **values)


def _vit_weight_shapes(config: "ViTConfig") -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape of the ViT `config` describes (built on the meta device: no memory, no init)."""
    from transformers import ViTModel

    with torch.device("meta"):
        vit = ViTModel(config, add_pooling_layer=False)
    return {key: tuple(value.shape) for key, value in canonical_vit_state_dict(vit.state_dict()).items()}


def init_from_imagenet_vit(
    vit_state_dict: Mapping[str, torch.Tensor],
    num_frames: int = 8,
    image_size: int | tuple[int, int] = 224,
    attention_type: str = "divided_space_time",
    id2label: Mapping[int, str] | None = None,
    num_attention_heads: int = 12,
    layer_norm_eps: float = 1e-6,
    position_resize: str = "bicubic",
    **config_kwargs: Any,
) -> TsfForVideoClassification:
    """A `TsfForVideoClassification` initialised from canonical ImageNet ViT weights (see `vit_to_tsf_state_dict`)
    for any scheme, frame count and frame size; the head is new (`id2label`, default 400 generic classes), initialised
    like the rest of the model's fresh weights."""
    id2label = dict(id2label) if id2label is not None else generic_label_names(400)
    config = TsfConfig(
        **vit_config_values(vit_state_dict),
        num_frames=num_frames,
        image_size=image_size,
        attention_type=attention_type,
        num_attention_heads=num_attention_heads,
        layer_norm_eps=layer_norm_eps,
        id2label=id2label,
        label2id={name: index for index, name in id2label.items()},
        **config_kwargs,
    )
    model = TsfForVideoClassification(config)
    load_state_dict_strictly(model.tsf, vit_to_tsf_state_dict(vit_state_dict, config, position_resize))
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------------
# Verification against transformers


def verification_input(config: TsfConfig, num_frames: int | None = None, seed: int = 0) -> torch.Tensor:
    """A deterministic random video `(1, T, C, H, W)` at the config's table sizes."""
    height, width = config.image_height_width
    generator = torch.Generator().manual_seed(seed)
    frames = num_frames or config.num_frames
    return torch.randn(1, frames, config.num_channels, height, width, generator=generator)


def transformers_timesformer_config(config: TsfConfig) -> "TimesformerConfig":
    """The `transformers` `TimesformerConfig` of the same network as `config` (divided, joint or space-only; square
    frames only, as `transformers`' port requires)."""
    from transformers import TimesformerConfig

    height, width = config.image_height_width
    if height != width:
        raise ValueError(f"transformers' Timesformer supports square frames only, got {height}x{width}")
    return TimesformerConfig(
        image_size=height,
        patch_size=config.patch_size,
        num_channels=config.num_channels,
        num_frames=config.num_frames,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        layer_norm_eps=config.layer_norm_eps,
        qkv_bias=config.qkv_bias,
        attention_type=config.attention_type,
        id2label=dict(config.id2label),
        label2id=dict(config.label2id),
    )


def transformers_timesformer_from_original(
    state_dict: Mapping[str, torch.Tensor], config: TsfConfig
) -> torch.nn.Module:
    """`transformers`' `TimesformerForVideoClassification` holding an original-layout checkpoint (divided, joint or
    space-only): the independent reference used to verify conversions."""
    from transformers import TimesformerForVideoClassification

    reference = TimesformerForVideoClassification(transformers_timesformer_config(config))
    load_state_dict_strictly(reference, original_to_transformers_state_dict(state_dict))
    return reference.eval()


@torch.no_grad()
def transformers_timesformer_logits(reference: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Logits of a `transformers` Timesformer classifier, with the original's space-only semantics (per-frame states
    averaged over frames before the final norm and head) where `transformers` returns per-frame logits instead."""
    if reference.config.attention_type != "space_only":
        return reference(pixel_values).logits
    batch_size, num_frames = pixel_values.shape[:2]
    hidden = reference(pixel_values, output_hidden_states=True).hidden_states[-1]
    hidden = hidden.view(batch_size, num_frames, *hidden.shape[1:]).mean(1)
    return reference.classifier(reference.timesformer.layernorm(hidden)[:, 0])


@torch.no_grad()
def max_logit_difference(model: torch.nn.Module, reference_logits: torch.Tensor, pixel_values: torch.Tensor) -> float:
    """Largest absolute difference between `model`'s logits and `reference_logits` on `pixel_values`."""
    return (model(pixel_values).logits - reference_logits).abs().max().item()


def vit_reference_unavailable(config: TsfConfig, vit_state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Why a model initialised from `vit_state_dict` with `config` has no exact reference in the ViT itself (`None`
    when it has one): only `divided_space_time` (on a static video) and `space_only` reduce to the image ViT, and
    only at the ViT's own grid (a resized position table has no counterpart)."""
    if config.attention_type not in ("divided_space_time", "space_only"):
        return (
            f"a ViT-initialised {config.attention_type} model has no exact ViT reference (only divided_space_time and "
            "space_only reduce to the image ViT)"
        )
    height, width = config.image_height_width
    side = math.isqrt(vit_state_dict["pos_embed"].shape[1] - 1)
    if (height // config.patch_size, width // config.patch_size) != (side, side):
        return (
            f"the model's {height}x{width} frames differ from the ViT's grid, so its resized position table has no "
            "exact ViT reference"
        )
    return None


@torch.no_grad()
def vit_reference_difference(
    model: TsfForVideoClassification, vit_state_dict: Mapping[str, torch.Tensor], seed: int = 0
) -> float:
    """Largest absolute difference between a ViT-initialised model's pooled output and `transformers`' `ViTModel`
    with the same ImageNet weights. The two are equal by construction for `divided_space_time` on a static video
    (every frame the same picture: the model is then the image ViT) and for `space_only` on any video (per-frame ViT
    states averaged over frames before the final norm). Needs the ViT's own grid (no table resize)."""
    from transformers import ViTConfig, ViTModel

    config = model.config
    reason = vit_reference_unavailable(config, vit_state_dict)
    if reason is not None:
        raise ValueError(reason)
    height = config.image_height_width[0]
    vit_config = ViTConfig(
        image_size=height,
        patch_size=config.patch_size,
        num_channels=config.num_channels,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        layer_norm_eps=config.layer_norm_eps,
        qkv_bias=config.qkv_bias,
    )
    vit = ViTModel(vit_config, add_pooling_layer=False).eval()
    load_state_dict_strictly(vit, _canonical_to_vit_module_names(vit_state_dict))
    pixel_values = verification_input(config, seed=seed)
    if config.attention_type == "divided_space_time":
        pixel_values = pixel_values[:, :1].expand_as(pixel_values).contiguous()
        expected = vit(pixel_values[:, 0]).last_hidden_state[:, 0]
    else:
        frames = pixel_values.flatten(0, 1)
        hidden = vit(frames, output_hidden_states=True).hidden_states[-1]
        expected = vit.layernorm(hidden.view(*pixel_values.shape[:2], *hidden.shape[1:]).mean(1))[:, 0]
    return (model.tsf(pixel_values).pooler_output - expected).abs().max().item()


def _canonical_to_vit_module_names(vit_state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical (timm) ViT weights under the module names of `transformers`' in-memory `ViTModel` (the inverse of
    the in-memory table of `canonical_vit_state_dict`, the fused qkv split into query, key and value)."""
    split = {}
    for key, value in vit_state_dict.items():
        block = _BLOCK_KEY.match(key)
        if block and block.group(2) == "attn.qkv":
            for name, part in zip(_QKV_PARTS, value.chunk(3, dim=0)):
                split[f"blocks.{block.group(1)}.attn.{name}.{block.group(3)}"] = part
        else:
            split[key] = value
    renamed, _, _ = _rename(
        split,
        _inverted(_VIT_TOP_KEYS_TRANSFORMERS),
        _inverted(_VIT_BLOCK_KEYS_TRANSFORMERS_MODULE),
        _BLOCK_KEY,
        "layers.{index}",
    )
    return renamed


# ---------------------------------------------------------------------------------------------------------------------
# Output folders: processors, model card, remote code, Hub upload


_HOWTO100M_CLIPS = {8: 48, 32: 12, 64: 6, 96: 4}
"""Clips per video in the paper's HowTo100M evaluation, by frames per clip."""


def build_processors(
    config: TsfConfig, dataset: str | None = None, sampling_rate: int | None = None
) -> tuple["TsfVideoProcessor", "TsfImageProcessor"]:
    """The `(TsfVideoProcessor, TsfImageProcessor)` of a checkpoint's evaluation protocol: its frame count and crop,
    the dataset's frame sampling (dense clips at the checkpoint's rate for Kinetics and HowTo100M, placed as the
    original evaluation code placed them, `clip_alignment="start"`: one clip starts at frame 0, several at evenly
    spaced starts from 0; segments for Something-Something-v2), 3 spatial crops for the zoo datasets (the paper's
    1x3 views; HowTo100M: the paper's clips per video, centre crop) and BGR frames without training flips for
    Something-Something-v2. Unknown datasets get uniform sampling and one centre crop."""
    from .image_processing_tsf import TsfImageProcessor
    from .video_processing_tsf import TsfVideoProcessor

    height, width = config.image_height_width
    short_side = min(height, width)
    kwargs = {
        "num_frames": config.num_frames,
        "size": {"shortest_edge": short_side},
        "crop_size": {"height": height, "width": width},
    }
    if short_side > 256:
        kwargs["train_short_side_range"] = (short_side, short_side + 64)
    spec = DATASETS.get(dataset) if dataset else None
    if spec is not None:
        kwargs["sampling_strategy"] = spec.sampling_strategy
        kwargs["num_spatial_crops"] = 3
        if spec.bgr:
            kwargs.update(channel_order="bgr", train_flip=False)
        rate = sampling_rate or spec.sampling_rates.get((config.num_frames, short_side))
        if spec.sampling_strategy == "dense":
            kwargs["clip_alignment"] = "start"
            if rate:
                kwargs["sampling_rate"] = rate
        if spec.key == "howto100m":
            kwargs.update(num_spatial_crops=1, num_temporal_clips=_HOWTO100M_CLIPS.get(config.num_frames, 1))
    return TsfVideoProcessor(**kwargs), TsfImageProcessor(**kwargs)


def _variant_name(config: TsfConfig) -> str:
    height, width = config.image_height_width
    long_range = "L (long range)"
    names = {(8, 224): "base", (16, 448): "HR (high resolution)", (96, 224): long_range, (64, 224): long_range}
    return names.get((config.num_frames, height if height == width else -1), "(custom size)")


def model_card(
    config: TsfConfig,
    source: str,
    dataset: str | None,
    license: str,
    video_processor: "TsfVideoProcessor | None" = None,
    verification: str | None = None,
    repo_id: str | None = None,
) -> str:
    """The README.md of a converted folder: licence, source, dataset and protocol, the paper's accuracy for this
    checkpoint, the verification result, and a usage example."""
    spec = DATASETS.get(dataset) if dataset else None
    height, width = config.image_height_width
    name = repo_id or "path/to/this/folder"
    lines = [
        "---",
        f"license: {license}",
        "library_name: transformers",
        "pipeline_tag: video-classification",
        "tags:",
        "- video-classification",
        "- timesformer",
        "- tsf_hf",
        "---",
        "",
        f"# TimeSformer {_variant_name(config)}" + (f", {spec.name}" if spec else ""),
        "",
        "TimeSformer (Bertasius, Wang and Torresani, *Is Space-Time Attention All You Need for Video Understanding?*, "
        "ICML 2021, [arXiv:2102.05095](https://arxiv.org/abs/2102.05095)) as a Hugging Face Transformers model "
        "(`tsf_hf`, loadable with `trust_remote_code=True`).",
        "",
        f"- Converted from: {source}",
        f"- Architecture: {config.num_hidden_layers} layers, width {config.hidden_size}, "
        f"{config.num_attention_heads} heads, `{config.attention_type}` attention, {config.num_frames} frames of "
        f"{height}x{width}, patch {config.patch_size}, {config.num_labels} classes.",
    ]
    if spec is not None:
        lines.append(f"- Dataset: [{spec.name}]({spec.url})")
        result = spec.results.get((config.num_frames, height if height == width else -1))
        if result:
            lines.append(
                "- Accuracy reported in the paper for this checkpoint "
                f"(top-1 / top-5 %, {spec.test_protocol}): {result}"
            )
    if video_processor is not None:
        settings = (
            f"{video_processor.num_frames} frames, `{video_processor.sampling_strategy}` sampling"
            + (f" (rate {video_processor.sampling_rate})" if video_processor.sampling_strategy == "dense" else "")
            + f", {video_processor.num_temporal_clips} clip(s) x {video_processor.num_spatial_crops} crop(s), "
            f"{video_processor.channel_order.upper()} frames, mean 0.45 / std 0.225"
        )
        lines.append(f"- Preprocessing (`video_preprocessor_config.json`, `preprocessor_config.json`): {settings}.")
        if video_processor.sampling_strategy == "dense" and video_processor.clip_alignment == "start":
            lines.append(
                '- Clip placement: `clip_alignment="start"`, as in the original evaluation code (one clip starts at '
                "the video's first frame, several at evenly spaced starts from it), the protocol behind the accuracy "
                "above. The paper describes the clip in the middle of the video, which is the processor's own "
                'default (`clip_alignment="center"`); pass that to the processor to use it.'
            )
    if verification:
        lines.append(f"- Verification: {verification}")
    if license == "cc-by-nc-4.0":
        lines += [
            "",
            "## License",
            "",
            "The weights were released by the TimeSformer authors under the Creative Commons Attribution-NonCommercial "
            "4.0 International licence (CC BY-NC 4.0): non-commercial use only, with attribution.",
        ]
    else:
        lines += ["", "## License", "", "The weights keep the licence of the weights they were initialised from."]
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "import torch",
        "from transformers import AutoModelForVideoClassification, AutoVideoProcessor",
        "",
        f'processor = AutoVideoProcessor.from_pretrained("{name}", trust_remote_code=True)',
        f'model = AutoModelForVideoClassification.from_pretrained("{name}", trust_remote_code=True).eval()',
        'inputs = processor("video.mp4", return_tensors="pt")',
        "with torch.no_grad():",
        "    logits = model(**inputs).logits",
        "print(model.config.id2label[logits.argmax(-1).item()])",
        "```",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@inproceedings{bertasius2021space,",
        "  title = {Is Space-Time Attention All You Need for Video Understanding?},",
        "  author = {Bertasius, Gedas and Wang, Heng and Torresani, Lorenzo},",
        "  booktitle = {Proceedings of the International Conference on Machine Learning (ICML)},",
        "  year = {2021}",
        "}",
        "```",
        "",
    ]
    return "\n".join(lines)


def save_converted(
    model: TsfForVideoClassification,
    output_dir: str | os.PathLike,
    processors: tuple["TsfVideoProcessor", "TsfImageProcessor"],
    card: str,
) -> Path:
    """Writes a complete model folder: `config.json` (with `auto_map` for `AutoConfig`, `AutoModel` and
    `AutoModelForVideoClassification`), `model.safetensors`, the processors' configs
    (`video_preprocessor_config.json`, `preprocessor_config.json`), the remote-code files they need
    (`configuration_tsf.py`, `modeling_tsf.py`, `video_processing_tsf.py`, `image_processing_tsf.py`) and
    `README.md`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # the package registers the tsf classes for auto_map; only the saved class enters it by itself
    model.config.auto_map = {"AutoModel": "modeling_tsf.TsfModel"}
    model.save_pretrained(output_dir, safe_serialization=True)
    for processor in processors:
        processor.save_pretrained(output_dir)
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    return output_dir


def create_hub_repo(repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Creates the Hub model repo `repo_id` if needed; returns its full id (with the user's namespace)."""
    from huggingface_hub import HfApi

    return HfApi(token=token).create_repo(repo_id, exist_ok=True, private=private).repo_id


def push_folder_to_hub(folder: str | os.PathLike, repo_id: str, token: str | None = None) -> str:
    """Uploads `folder` to the Hub model repo `repo_id` (created if needed) in one commit; returns the full repo id."""
    from huggingface_hub import HfApi

    repo_id = create_hub_repo(repo_id, token)
    HfApi(token=token).upload_folder(
        folder_path=str(folder), repo_id=repo_id, commit_message="Upload converted TimeSformer"
    )
    return repo_id


# ---------------------------------------------------------------------------------------------------------------------
# The three conversions


class VerificationError(ValueError):
    """The converted model disagrees with its source beyond the tolerance."""


@dataclass
class ConversionResult:
    """A converted model, where it was written, and its measured agreement with the source (`None` when not
    verified; `verification_skipped` says why when verification was asked for but no exact reference exists)."""

    model: TsfForVideoClassification
    dataset: str | None
    output_dir: Path | None = None
    repo_id: str | None = None
    max_abs_difference: float | None = None
    reference: str | None = None
    verification_skipped: str | None = None


def _check_difference(difference: float, tolerance: float, reference: str) -> None:
    if not difference <= tolerance:
        raise VerificationError(
            f"the converted model differs from {reference} by up to {difference:.3e} (tolerance {tolerance:.1e})"
        )


def _resolve_labels(
    num_classes: int,
    dataset: str | None,
    label_file: str | os.PathLike | None,
    fallback: Mapping[int, str] | None = None,
) -> dict[int, str]:
    if label_file is not None:
        return read_label_file(label_file, num_classes)
    if dataset is not None and DATASETS[dataset].label_file is not None:
        return load_label_names(dataset)
    return dict(fallback) if fallback is not None else generic_label_names(num_classes)


def _check_dataset(dataset: str | None, num_classes: int) -> None:
    if dataset is None:
        return
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)} or None, got {dataset!r}")
    expected = DATASETS[dataset].num_classes
    if expected is not None and expected != num_classes:
        raise ValueError(f"dataset {dataset!r} has {expected} classes, but the checkpoint's head has {num_classes}")


def _finish(
    result: ConversionResult,
    output_dir: str | os.PathLike | None,
    push_to_hub: str | None,
    source: str,
    license: str,
    sampling_rate: int | None = None,
    hub_token: str | None = None,
) -> ConversionResult:
    """Writes the folder (and uploads it) for a converted model."""
    if output_dir is None and push_to_hub is None:
        return result
    if output_dir is None:
        raise ValueError("push_to_hub needs an output_dir to write the folder that is uploaded")
    processors = build_processors(result.model.config, result.dataset, sampling_rate)
    verification = None
    if result.max_abs_difference is not None:
        verification = (
            f"max |logit difference| to {result.reference} on a random input: {result.max_abs_difference:.2e}."
        )
    if push_to_hub is not None:
        result.repo_id = create_hub_repo(push_to_hub, hub_token)  # the card names the full repo id
    card = model_card(result.model.config, source, result.dataset, license, processors[0], verification, result.repo_id)
    result.output_dir = save_converted(result.model, output_dir, processors, card)
    if result.repo_id is not None:
        push_folder_to_hub(output_dir, result.repo_id, token=hub_token)
    return result


def convert_original_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    num_attention_heads: int = 12,
    layer_norm_eps: float = 1e-6,
    dataset: str | None = None,
    label_file: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    allow_unsafe_pickle: bool = False,
    verify: bool = False,
    tolerance: float = 1e-4,
    push_to_hub: str | None = None,
    hub_token: str | None = None,
) -> ConversionResult:
    """Converts an original TimeSformer checkpoint (any model-zoo `.pyth`, or a checkpoint trained with the original
    code: any class count, frames, frame size, width and depth; divided, joint or space-only attention).

    The config comes from the weights (`infer_original_config`); `dataset` (`k400`, `k600`, `ssv2`, `howto100m`)
    defaults to a guess from the file name and head size and sets class names and the processor's protocol;
    `label_file` names the classes of other checkpoints (else `LABEL_i`). With `verify`, the model is compared with
    `transformers`' Timesformer holding the same weights, and a difference above `tolerance` raises
    `VerificationError` before anything is written. `output_dir` receives the complete folder; `push_to_hub` (a repo
    id) uploads it."""
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint_path, allow_unsafe_pickle))
    config = infer_original_config(state_dict, num_attention_heads, layer_norm_eps, image_size)
    num_classes = config.num_labels
    if dataset is None:
        dataset = guess_dataset(Path(checkpoint_path).name, num_classes)
    _check_dataset(dataset, num_classes)
    id2label = _resolve_labels(num_classes, dataset, label_file)
    config.id2label = id2label
    config.label2id = {name: index for index, name in id2label.items()}
    model = TsfForVideoClassification(config)
    load_state_dict_strictly(
        model,
        *original_to_tsf_state_dict(state_dict, config.attention_type),
        source_name_of_missing=lambda key: tsf_key_to_original(key, config.attention_type),
    )
    model.eval()
    result = ConversionResult(model=model, dataset=dataset)
    if verify:
        reference = transformers_timesformer_from_original(state_dict, config)
        pixel_values = verification_input(config)
        result.reference = "transformers' TimesformerForVideoClassification with the same weights"
        result.max_abs_difference = max_logit_difference(
            model, transformers_timesformer_logits(reference, pixel_values), pixel_values
        )
        _check_difference(result.max_abs_difference, tolerance, result.reference)
    rate = _sampling_rate_from_name(Path(checkpoint_path).name, config.num_frames)
    return _finish(
        result, output_dir, push_to_hub, f"original TimeSformer checkpoint `{Path(checkpoint_path).name}`",
        "cc-by-nc-4.0", rate, hub_token,
    )


def convert_transformers_timesformer(
    model_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    dataset: str | None = None,
    label_file: str | os.PathLike | None = None,
    verify: bool = False,
    tolerance: float = 1e-4,
    push_to_hub: str | None = None,
    hub_token: str | None = None,
) -> ConversionResult:
    """Converts a `transformers` `TimesformerForVideoClassification` (a folder or Hub repo in the
    `facebook/timesformer-*` layout). The weights are read as stored and loaded strictly: a missing, unexpected or
    mis-shaped key is a `ValueError` naming it (where `from_pretrained` would only log it and fill in random values).
    Class names come from its config unless `label_file` is given; `dataset` (default: guessed from the path and
    class count) sets the processor's protocol. `verify` compares logits with the source model."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    source_config = TimesformerConfig.from_pretrained(str(model_path), token=hub_token)
    source = TimesformerForVideoClassification(source_config)
    load_state_dict_strictly(source, load_pretrained_weights(model_path, hub_token))
    source.eval()
    num_classes = source_config.num_labels
    if dataset is None:
        dataset = guess_dataset(str(model_path).replace("/", "_"), num_classes)
    _check_dataset(dataset, num_classes)
    id2label = _resolve_labels(num_classes, None, label_file, fallback=source_config.id2label)
    config = TsfConfig(
        image_size=source_config.image_size,
        patch_size=source_config.patch_size,
        num_channels=source_config.num_channels,
        num_frames=source_config.num_frames,
        hidden_size=source_config.hidden_size,
        num_hidden_layers=source_config.num_hidden_layers,
        num_attention_heads=source_config.num_attention_heads,
        intermediate_size=source_config.intermediate_size,
        hidden_act=source_config.hidden_act,
        hidden_dropout_prob=float(source_config.hidden_dropout_prob),
        attention_probs_dropout_prob=float(source_config.attention_probs_dropout_prob),
        drop_path_rate=float(source_config.drop_path_rate),
        initializer_range=source_config.initializer_range,
        layer_norm_eps=source_config.layer_norm_eps,
        qkv_bias=source_config.qkv_bias,
        attention_type=source_config.attention_type,
        id2label={int(index): name for index, name in id2label.items()},
        label2id={name: int(index) for index, name in id2label.items()},
    )
    model = TsfForVideoClassification(config)
    load_state_dict_strictly(model, *transformers_to_tsf_state_dict(source.state_dict(), config.attention_type))
    model.eval()
    result = ConversionResult(model=model, dataset=dataset)
    if verify:
        pixel_values = verification_input(config)
        result.reference = f"transformers' TimesformerForVideoClassification ({model_path})"
        result.max_abs_difference = max_logit_difference(
            model, transformers_timesformer_logits(source, pixel_values), pixel_values
        )
        _check_difference(result.max_abs_difference, tolerance, result.reference)
    return _finish(
        result, output_dir, push_to_hub, f"transformers Timesformer `{model_path}`", "cc-by-nc-4.0", None, hub_token
    )


def convert_imagenet_vit(
    source: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    num_frames: int = 8,
    image_size: int | tuple[int, int] = 224,
    attention_type: str = "divided_space_time",
    dataset: str | None = None,
    label_file: str | os.PathLike | None = None,
    num_labels: int = 400,
    num_attention_heads: int | None = None,
    layer_norm_eps: float | None = None,
    position_resize: str = "bicubic",
    allow_unsafe_pickle: bool = False,
    verify: bool = False,
    tolerance: float = 1e-4,
    push_to_hub: str | None = None,
    hub_token: str | None = None,
) -> ConversionResult:
    """Builds a TimeSformer initialised from ImageNet ViT weights (timm checkpoint file or `transformers` ViT folder /
    repo), ready for fine-tuning: any scheme, frames and frame size (`init_from_imagenet_vit`). Classes: the
    `dataset`'s names, a `label_file` (`num_labels` entries), or `num_labels` generic names. Heads and LayerNorm
    epsilon default to the `transformers` ViT's config, else 12 and 1e-6. `verify` compares with `transformers`'
    `ViTModel` where the two are equal by construction (`vit_reference_difference`) and otherwise skips, saying why
    in `verification_skipped` (`vit_reference_unavailable`)."""
    vit_state_dict, known = load_imagenet_vit(source, allow_unsafe_pickle, hub_token)
    if dataset is not None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)} or None, got {dataset!r}")
        num_labels = DATASETS[dataset].num_classes or num_labels
    id2label = _resolve_labels(num_labels, dataset, label_file)
    model = init_from_imagenet_vit(
        vit_state_dict,
        num_frames=num_frames,
        image_size=image_size,
        attention_type=attention_type,
        id2label=id2label,
        num_attention_heads=num_attention_heads or known.get("num_attention_heads", 12),
        layer_norm_eps=layer_norm_eps or known.get("layer_norm_eps", 1e-6),
        position_resize=position_resize,
    )
    result = ConversionResult(model=model, dataset=dataset)
    if verify:
        result.verification_skipped = vit_reference_unavailable(model.config, vit_state_dict)
        if result.verification_skipped is None:
            result.reference = "transformers' ViTModel with the same ImageNet weights"
            result.max_abs_difference = vit_reference_difference(model, vit_state_dict)
            _check_difference(result.max_abs_difference, tolerance, result.reference)
        else:
            logger.warning("verification skipped: %s", result.verification_skipped)
    return _finish(
        result,
        output_dir,
        push_to_hub,
        f"ImageNet ViT `{source}` (initialisation for fine-tuning, not trained on video)",
        "other", None, hub_token,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Command-line pieces shared by the scripts in conversion/


def add_conversion_arguments(parser: argparse.ArgumentParser, verify_help: str) -> None:
    """Adds the options every converter script takes: `--output_dir`, `--dataset`, `--label_file`, `--verify`,
    `--tolerance` and `--push_to_hub`."""
    parser.add_argument("--output_dir", required=True, help="folder to write the tsf_hf model folder to")
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


def conversion_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments every `convert_*` function takes, from the options of `add_conversion_arguments`."""
    names = ("dataset", "label_file", "verify", "tolerance", "push_to_hub")
    return {name: getattr(args, name) for name in names}


def image_size_from_argument(values: list[int] | None) -> int | tuple[int, int] | None:
    """`--image_size H [W]` as `TsfConfig.image_size` takes it."""
    if values is None:
        return None
    return values[0] if len(values) == 1 else (values[0], values[1])


def run_conversion(convert: Callable[[], ConversionResult], describe: Callable[[ConversionResult], str]) -> int:
    """Runs a converter for a script: prints `describe(result)`, the verification and the upload, and returns the
    exit status (1 with the error on stderr when the conversion fails, e.g. a refused pickle or failed verify)."""
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


__all__ = [
    "add_conversion_arguments",
    "conversion_options",
    "image_size_from_argument",
    "run_conversion",
    "DATASETS",
    "ConversionResult",
    "UnsafeCheckpointError",
    "VerificationError",
    "build_processors",
    "canonical_vit_state_dict",
    "check_state_dict_fits",
    "convert_imagenet_vit",
    "convert_original_checkpoint",
    "convert_transformers_timesformer",
    "create_hub_repo",
    "extract_state_dict",
    "guess_dataset",
    "infer_original_config",
    "init_from_imagenet_vit",
    "load_checkpoint_file",
    "load_imagenet_vit",
    "load_label_names",
    "load_pretrained_weights",
    "load_state_dict_strictly",
    "model_card",
    "original_to_transformers_state_dict",
    "original_to_tsf_state_dict",
    "push_folder_to_hub",
    "read_label_file",
    "resize_spatial_position_table",
    "save_converted",
    "transformers_timesformer_logits",
    "transformers_to_tsf_state_dict",
    "tsf_to_transformers_state_dict",
    "vit_config_values",
    "vit_reference_difference",
    "vit_reference_unavailable",
    "vit_to_tsf_state_dict",
]
