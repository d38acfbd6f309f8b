"""ImageNet ViT weights (timm's layout or a `transformers` ViT) turned into a TimeSformer initialisation, the way the
released models were initialised before video training."""

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from transformers.utils import logging

from ..configuration_tsf import TsfConfig
from ..modeling_tsf import TsfForVideoClassification
from .checkpoint_io import (
    check_state_dict_fits,
    extract_state_dict,
    load_checkpoint_file,
    load_pretrained_weights,
    load_state_dict_strictly,
    require_config_file,
)
from .configs import tsf_config
from .key_maps import block_indices, canonical_vit_state_dict
from .model_folder import ConversionResult, check_conversion_target, finish_conversion
from .progress import conversion_progress
from .verification import check_difference, vit_reference_difference, vit_reference_unavailable
from .zoo import DATASETS, generic_label_names, resolve_label_names


if TYPE_CHECKING:
    from transformers import ViTConfig


logger = logging.get_logger(__name__)

POSITION_RESIZE_MODES = ("bicubic", "bilinear", "nearest", "legacy")


def resize_spatial_position_table(table: torch.Tensor, grid: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
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
    if not config.scheme.frames_are_sequences:
        state["embeddings.time_embeddings"] = torch.zeros(1, config.num_frames, hidden_size)
    num_steps = len(config.attention_steps)
    for index in range(config.num_hidden_layers):
        source, target = f"blocks.{index}.", f"layers.{index}."
        for kind in ("weight", "bias"):
            for step in range(num_steps):
                step_prefix = f"{target}steps.{step}."
                state[f"{step_prefix}norm.{kind}"] = vit_state_dict[f"{source}norm1.{kind}"].clone()
                state[f"{step_prefix}attention.proj.{kind}"] = vit_state_dict[f"{source}attn.proj.{kind}"].clone()
                if f"{source}attn.qkv.{kind}" in vit_state_dict:
                    state[f"{step_prefix}attention.qkv.{kind}"] = vit_state_dict[f"{source}attn.qkv.{kind}"].clone()
                if step < num_steps - 1:
                    shape = (hidden_size, hidden_size) if kind == "weight" else (hidden_size,)
                    state[f"{step_prefix}fc.{kind}"] = torch.zeros(shape)
            state[f"{target}norm.{kind}"] = vit_state_dict[f"{source}norm2.{kind}"].clone()
            for name in ("fc1", "fc2"):
                state[f"{target}mlp.{name}.{kind}"] = vit_state_dict[f"{source}mlp.{name}.{kind}"].clone()
    return state


def vit_config_values(vit_state_dict: Mapping[str, torch.Tensor]) -> dict[str, int | bool]:
    """The architecture fields a ViT's weights determine: width, patch size, channels, depth, MLP width, qkv bias."""
    patch_weight = vit_state_dict["patch_embed.proj.weight"]
    return {
        "hidden_size": vit_state_dict["cls_token"].shape[-1],
        "patch_size": patch_weight.shape[-1],
        "num_channels": patch_weight.shape[1],
        "num_hidden_layers": block_indices(vit_state_dict)[-1] + 1,
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
        require_config_file(source, "vit", token)
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


def vit_image_size(vit_state_dict: Mapping[str, torch.Tensor]) -> int:
    """The frame size a canonical ViT was trained at: its square position grid times its patch size."""
    num_patches = vit_state_dict["pos_embed"].shape[1] - 1
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"the ViT's position table has {num_patches} patch rows, not a square grid")
    return side * vit_state_dict["patch_embed.proj.weight"].shape[-1]


def _vit_config_from_weights(vit_state_dict: Mapping[str, torch.Tensor]) -> "ViTConfig":
    """The `transformers` `ViTConfig` whose weights have these shapes (one head: heads do not change shapes)."""
    from transformers import ViTConfig

    values = vit_config_values(vit_state_dict)
    return ViTConfig(image_size=vit_image_size(vit_state_dict), num_attention_heads=1, **values)


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
    config = tsf_config(
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


def convert_imagenet_vit(
    source: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    num_frames: int = 8,
    image_size: int | tuple[int, int] | None = None,
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
    license: str | None = None,
    overwrite: bool = False,
) -> ConversionResult:
    """Builds a TimeSformer initialised from ImageNet ViT weights (timm checkpoint file or `transformers` ViT folder /
    repo), ready for fine-tuning: any scheme, frames and frame size (`init_from_imagenet_vit`; `image_size` defaults
    to the ViT's own). Classes: the `dataset`'s names, a `label_file` (`num_labels` entries), or `num_labels` generic
    names. Heads and LayerNorm epsilon default to the `transformers` ViT's config, else 12 and 1e-6 (a timm file does
    not record them). `verify` compares with `transformers`' `ViTModel` where the two are equal by construction
    (`vit_reference_difference`) and otherwise skips, saying why in `verification_skipped`
    (`vit_reference_unavailable`). `output_dir` receives the folder atomically (a non-empty folder only with
    `overwrite`, which replaces it). The card's `license` defaults to the one the source folder's or repo's model
    card declares (unset for a checkpoint file)."""
    if num_labels < 1:
        raise ValueError(f"num_labels must be a positive number of classes, got {num_labels}")
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)} or None, got {dataset!r}")
    check_conversion_target(output_dir, push_to_hub, (source, label_file), overwrite)
    writes, uploads = output_dir is not None, push_to_hub is not None
    with conversion_progress("Initialising from an ImageNet ViT", verify, writes, uploads) as progress:
        progress.stage(f"reading {source}")
        vit_state_dict, known = load_imagenet_vit(source, allow_unsafe_pickle, hub_token)
        progress.stage("building the model")
        if dataset is not None:
            num_labels = DATASETS[dataset].num_classes or num_labels
        model = init_from_imagenet_vit(
            vit_state_dict,
            num_frames=num_frames,
            image_size=image_size if image_size is not None else vit_image_size(vit_state_dict),
            attention_type=attention_type,
            id2label=resolve_label_names(num_labels, dataset, label_file),
            num_attention_heads=num_attention_heads or known.get("num_attention_heads", 12),
            layer_norm_eps=layer_norm_eps or known.get("layer_norm_eps", 1e-6),
            position_resize=position_resize,
        )
        result = ConversionResult(model=model, dataset=dataset)
        if verify:
            result.verification_skipped = vit_reference_unavailable(model.config, vit_state_dict)
            if result.verification_skipped is None:
                progress.stage("verifying against transformers' ViT")
                result.reference = "transformers' ViTModel with the same ImageNet weights"
                result.max_abs_difference = vit_reference_difference(model, vit_state_dict)
                check_difference(result.max_abs_difference, tolerance, result.reference)
            else:
                logger.warning("verification skipped: %s", result.verification_skipped)
        return finish_conversion(
            result,
            output_dir,
            push_to_hub,
            source=f"ImageNet ViT `{source}` (initialisation for fine-tuning, not trained on video)",
            license=license,
            progress=progress,
            hub_token=hub_token,
            source_path=None if Path(source).is_file() else source,
            trained_on_dataset=False,
            overwrite=overwrite,
        )
