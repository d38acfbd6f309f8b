"""Reading checkpoints safely and loading them strictly.

Pickles are read with `torch.load(weights_only=True)`, which runs no code, unless the caller explicitly opts in to
full unpickling; every missing, unexpected or mis-shaped key is an error that names it.
"""

import json
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch


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


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""The weight files of a `save_pretrained` folder, in the order `from_pretrained` prefers them."""


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

    for name in WEIGHT_FILES:
        resolved = resolve(name)
        if resolved is None:
            continue
        if not name.endswith(".index.json"):
            return load_checkpoint_file(resolved)
        # transformers' get_checkpoint_shard_files needs the index's metadata and does not check that local shards exist
        shards = sorted(set(json.loads(Path(resolved).read_text(encoding="utf-8"))["weight_map"].values()))
        weights = {}
        for shard in shards:
            shard_file = resolve(shard)
            if shard_file is None:
                raise ValueError(f"{model_path}: the index {name} names the shard {shard}, which is not there")
            weights.update(load_checkpoint_file(shard_file))
        return weights
    raise ValueError(f"{model_path} holds no weights: expected one of {list(WEIGHT_FILES)}")


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
