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
    """Loads a checkpoint file on the CPU: a safetensors file (recognised by its header, whatever its name) or a
    `torch.save` file (a zip archive, or a legacy pickle).

    Pickles are read with `torch.load(weights_only=True)`, which refuses to run code: a file that needs more raises
    `UnsafeCheckpointError` unless `allow_unsafe_pickle=True` (only for files from a source you trust). A missing,
    truncated or non-checkpoint file raises `FileNotFoundError` / `ValueError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    with open(path, "rb") as file:
        head = file.read(_SNIFF_BYTES)
    if path.suffix == ".safetensors" or _is_safetensors(head, path.stat().st_size):
        return _load_safetensors(path)
    is_zip_archive = head.startswith(b"PK\x03\x04")
    if is_zip_archive and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is an incomplete zip archive: the checkpoint is truncated or not a checkpoint")
    if not is_zip_archive and not head.startswith(_PICKLE_PROTOCOL):
        raise ValueError(
            f"{path} is not a PyTorch checkpoint (a zip archive or a pickle) nor a safetensors file: it starts with "
            f"{head!r}"
        )
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
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError) as error:
        raise ValueError(
            f"{path} could not be read as a PyTorch checkpoint; it may be truncated or not a checkpoint "
            f"({type(error).__name__}: {error})"
        ) from error


_SNIFF_BYTES = 16
_PICKLE_PROTOCOL = b"\x80"  # every pickle of protocol 2 or later (torch.save's legacy format) starts with PROTO


def _is_safetensors(head: bytes, file_size: int) -> bool:
    """A safetensors file starts with the little-endian 8-byte length of its JSON header, then the header's `{`."""
    header_size = int.from_bytes(head[:8], "little")
    return len(head) > 8 and head[8:9] == b"{" and 8 + header_size <= file_size


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from error


def require_config_file(model_path: str | os.PathLike, model_type: str, token: str | None = None) -> None:
    """Raises a `ValueError` when the folder or Hub repo `model_path` has no `config.json`, or one of another
    `model_type` than expected (where `from_pretrained` would go on with default values and a warning)."""
    config_file = resolve_file(model_path, "config.json", token)
    if config_file is None:
        raise ValueError(
            f"{model_path} has no config.json: a transformers {model_type} folder or repo holds its config beside its "
            "weights (save_pretrained writes both)"
        )
    try:
        found = json.loads(Path(config_file).read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise ValueError(f"{model_path}: config.json is not a JSON object ({error})") from error
    if found != model_type:
        raise ValueError(f"{model_path} holds a {found!r} model (config.json), expected a {model_type!r} one")


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""The weight files of a `save_pretrained` folder, in the order `from_pretrained` prefers them."""


def resolve_file(model_path: str | os.PathLike, name: str, token: str | None = None) -> str | None:
    """The local path of file `name` of a folder or Hub repo (downloaded into the cache), or `None` without it."""
    from transformers.utils import cached_file

    return cached_file(
        str(model_path),
        name,
        token=token,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )


def load_pretrained_weights(model_path: str | os.PathLike, token: str | None = None) -> dict[str, torch.Tensor]:
    """Every weight of a `save_pretrained` folder or Hub repo, exactly as stored: `model.safetensors`, or
    `pytorch_model.bin` read with `torch.load(weights_only=True)` (no code runs), either one possibly sharded with an
    index. Unlike `from_pretrained`, nothing is initialised, dropped or renamed, so callers can load strictly."""
    for name in WEIGHT_FILES:
        resolved = resolve_file(model_path, name, token)
        if resolved is None:
            continue
        if not name.endswith(".index.json"):
            return load_checkpoint_file(resolved)
        # transformers' get_checkpoint_shard_files needs the index's metadata and does not check that local shards exist
        shards = sorted(set(json.loads(Path(resolved).read_text(encoding="utf-8"))["weight_map"].values()))
        weights = {}
        for shard in shards:
            shard_file = resolve_file(model_path, shard, token)
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
