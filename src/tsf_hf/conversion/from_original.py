"""Checkpoints of the original TimeSformer implementation (model-zoo `.pyth` files, or trained with that code)."""

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..configuration_tsf import TsfConfig
from ..modeling_tsf import TsfForVideoClassification
from .checkpoint_io import extract_state_dict, load_checkpoint_file, load_state_dict_strictly
from .configs import tsf_config
from .key_maps import block_indices, original_to_tsf_state_dict, tsf_key_to_original
from .model_folder import RELEASED_WEIGHTS_LICENSE, ConversionResult, check_conversion_target, finish_conversion
from .progress import conversion_progress
from .verification import timesformer_difference, transformers_timesformer_from_original
from .zoo import check_dataset_classes, generic_label_names, guess_dataset, resolve_label_names, sampling_rate_from_name


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
    num_classes = state_dict["head.weight"].shape[0]
    if id2label is None:
        id2label = generic_label_names(num_classes)
    return tsf_config(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=patch_weight.shape[1],
        num_frames=state_dict["time_embed"].shape[1] if "time_embed" in state_dict else 8,
        hidden_size=hidden_size,
        num_hidden_layers=block_indices(state_dict)[-1] + 1,
        num_attention_heads=num_attention_heads,
        intermediate_size=state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        layer_norm_eps=layer_norm_eps,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        attention_type=attention_type,
        id2label=dict(id2label),
        label2id={name: index for index, name in id2label.items()},
    )


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
    overwrite: bool = False,
) -> ConversionResult:
    """Converts an original TimeSformer checkpoint (any model-zoo `.pyth`, or a checkpoint trained with the original
    code: any class count, frames, frame size, width and depth; divided, joint or space-only attention).

    The config comes from the weights (`infer_original_config`); `dataset` (`k400`, `k600`, `ssv2`, `howto100m`)
    defaults to a guess from the file name and head size and sets class names and the processor's protocol;
    `label_file` names the classes of other checkpoints (else `LABEL_i`). With `verify`, the model is compared with
    `transformers`' Timesformer holding the same weights, and a difference above `tolerance` raises
    `VerificationError` before anything is written. `output_dir` receives the complete folder, atomically (a
    non-empty folder only with `overwrite`, which replaces it); `push_to_hub` (a repo id) uploads it. The card
    carries the released weights' licence, CC BY-NC 4.0."""
    check_conversion_target(output_dir, push_to_hub, (checkpoint_path, label_file), overwrite)
    writes, uploads = output_dir is not None, push_to_hub is not None
    with conversion_progress("Converting an original checkpoint", verify, writes, uploads) as progress:
        progress.stage(f"reading {checkpoint_path}")
        state_dict = extract_state_dict(load_checkpoint_file(checkpoint_path, allow_unsafe_pickle))
        progress.stage("building the model")
        config = infer_original_config(state_dict, num_attention_heads, layer_norm_eps, image_size)
        num_classes = config.num_labels
        if dataset is None:
            dataset = guess_dataset(Path(checkpoint_path).name, num_classes)
        check_dataset_classes(dataset, num_classes)
        id2label = resolve_label_names(num_classes, dataset, label_file)
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
            progress.stage("verifying against transformers' Timesformer")
            result.reference = "transformers' TimesformerForVideoClassification with the same weights"
            reference = transformers_timesformer_from_original(state_dict, config)
            result.max_abs_difference = timesformer_difference(model, reference, result.reference, tolerance)
        return finish_conversion(
            result,
            output_dir,
            push_to_hub,
            source=f"original TimeSformer checkpoint `{Path(checkpoint_path).name}`",
            license=RELEASED_WEIGHTS_LICENSE,
            progress=progress,
            sampling_rate=sampling_rate_from_name(Path(checkpoint_path).name, config.num_frames),
            hub_token=hub_token,
            overwrite=overwrite,
        )
