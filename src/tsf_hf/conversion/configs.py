"""Configs across formats: `TsfConfig` from checkpoint facts with friendly errors, and `transformers`'
`TimesformerConfig` of the same network and back."""

from typing import TYPE_CHECKING, Any

from ..configuration_tsf import TsfConfig


if TYPE_CHECKING:
    from transformers import TimesformerConfig


def tsf_config(**fields: Any) -> TsfConfig:
    """`TsfConfig(**fields)` for a converter: a head count that does not divide the width read from the weights is
    a `ValueError` saying that heads cannot be read from weights (other invalid fields raise as the config does)."""
    hidden_size, heads = fields.get("hidden_size"), fields.get("num_attention_heads")
    if hidden_size is not None and isinstance(heads, int) and heads > 0 and hidden_size % heads:
        raise ValueError(
            f"num_attention_heads must divide the width {hidden_size} the weights have, got {heads} (heads cannot be "
            "read from weights: pass the count the model was trained with)"
        )
    return TsfConfig(**fields)


TIMESFORMER_SHARED_FIELDS = (
    "patch_size",
    "num_channels",
    "num_frames",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "qkv_bias",
    "attention_type",
)
"""Config fields `TsfConfig` and `transformers`' `TimesformerConfig` share, with the same meaning."""


def transformers_timesformer_config(config: TsfConfig) -> "TimesformerConfig":
    """The `transformers` `TimesformerConfig` of the same network as `config` (divided, joint or space-only; square
    frames only, as `transformers`' port requires)."""
    from transformers import TimesformerConfig

    height, width = config.image_height_width
    if height != width:
        raise ValueError(f"transformers' Timesformer supports square frames only, got {height}x{width}")
    return TimesformerConfig(
        image_size=height,
        **{name: getattr(config, name) for name in TIMESFORMER_SHARED_FIELDS},
        id2label=dict(config.id2label),
        label2id=dict(config.label2id),
    )


def tsf_config_from_transformers(source_config: "TimesformerConfig", id2label: dict[int, str]) -> TsfConfig:
    """The `TsfConfig` of the same network as a `transformers` `TimesformerConfig`, with the classes `id2label`."""
    fields = TsfConfig.dict_from_timesformer(source_config.to_dict())
    fields.update(
        id2label={int(index): name for index, name in id2label.items()},
        label2id={name: int(index) for index, name in id2label.items()},
    )
    return tsf_config(**{key: value for key, value in fields.items() if key not in ("architectures", "num_labels")})
