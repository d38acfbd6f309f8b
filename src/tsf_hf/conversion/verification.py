"""Independent references for converted models: `transformers`' Timesformer and ViT holding the same weights."""

import math
from collections.abc import Mapping

import torch

from ..configuration_tsf import ATTENTION_SCHEMES, TsfConfig
from ..modeling_tsf import TsfForVideoClassification
from .checkpoint_io import load_state_dict_strictly
from .configs import transformers_timesformer_config
from .key_maps import canonical_to_vit_module_names, original_to_transformers_state_dict


class VerificationError(ValueError):
    """The converted model disagrees with its source beyond the tolerance."""


def check_difference(difference: float, tolerance: float, reference: str) -> None:
    """Raises `VerificationError` when `difference` to `reference` is above `tolerance` (or not a number)."""
    if not difference <= tolerance:
        raise VerificationError(
            f"the converted model differs from {reference} by up to {difference:.3e} (tolerance {tolerance:.1e})"
        )


def verification_input(config: TsfConfig, num_frames: int | None = None, seed: int = 0) -> torch.Tensor:
    """A deterministic random video `(1, T, C, H, W)` at the config's table sizes."""
    height, width = config.image_height_width
    generator = torch.Generator().manual_seed(seed)
    frames = num_frames or config.num_frames
    return torch.randn(1, frames, config.num_channels, height, width, generator=generator)


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
    if not ATTENTION_SCHEMES[reference.config.attention_type].frames_are_sequences:
        return reference(pixel_values).logits
    batch_size, num_frames = pixel_values.shape[:2]
    hidden = reference(pixel_values, output_hidden_states=True).hidden_states[-1]
    hidden = hidden.view(batch_size, num_frames, *hidden.shape[1:]).mean(1)
    return reference.classifier(reference.timesformer.layernorm(hidden)[:, 0])


@torch.no_grad()
def max_logit_difference(model: torch.nn.Module, reference_logits: torch.Tensor, pixel_values: torch.Tensor) -> float:
    """Largest absolute difference between `model`'s logits and `reference_logits` on `pixel_values`."""
    return (model(pixel_values).logits - reference_logits).abs().max().item()


def timesformer_difference(
    model: TsfForVideoClassification, reference: torch.nn.Module, description: str, tolerance: float
) -> float:
    """Largest absolute logit difference between `model` and a `transformers` Timesformer `reference` (described as
    `description`) on `verification_input`; raises `VerificationError` above `tolerance`."""
    pixel_values = verification_input(model.config)
    difference = max_logit_difference(model, transformers_timesformer_logits(reference, pixel_values), pixel_values)
    check_difference(difference, tolerance, description)
    return difference


def vit_reference_unavailable(config: TsfConfig, vit_state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Why a model initialised from `vit_state_dict` with `config` has no exact reference in the ViT itself (`None`
    when it has one). Every step but the last starts with a zero extra fc, so a fresh block is its last step: schemes
    whose last step is spatial (`divided_space_time` on a static video, `space_only` on any) reduce to the image ViT,
    and only at the ViT's own grid (a resized position table has no counterpart)."""
    if config.attention_steps[-1] != "space":
        reducible = [name for name, scheme in ATTENTION_SCHEMES.items() if scheme.steps[-1] == "space"]
        return (
            f"a ViT-initialised {config.attention_type} model has no exact ViT reference (only schemes whose last step "
            f"is spatial attention, {' and '.join(reducible)}, reduce to the image ViT)"
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
    vit_config = ViTConfig(
        image_size=config.image_height_width[0],
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
    load_state_dict_strictly(vit, canonical_to_vit_module_names(vit_state_dict))
    pixel_values = verification_input(config, seed=seed)
    if config.scheme.frames_are_sequences:
        frames = pixel_values.flatten(0, 1)
        hidden = vit(frames, output_hidden_states=True).hidden_states[-1]
        expected = vit.layernorm(hidden.view(*pixel_values.shape[:2], *hidden.shape[1:]).mean(1))[:, 0]
    else:  # a static video: every frame the same picture
        pixel_values = pixel_values[:, :1].expand_as(pixel_values).contiguous()
        expected = vit(pixel_values[:, 0]).last_hidden_state[:, 0]
    return (model.tsf(pixel_values).pooler_output - expected).abs().max().item()
