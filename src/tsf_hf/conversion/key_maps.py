"""Key tables between the original TimeSformer layout, `transformers`' Timesformer, tsf_hf and ImageNet ViTs.

Every table is written once: original -> transformers here (the original is also timm's ViT layout), transformers ->
tsf in `modeling_tsf.timesformer_block_keys` (which `from_pretrained` uses to load transformers' checkpoints); the
other directions are composed or inverted from them.
"""

import re
from collections.abc import Mapping

import torch

from ..modeling_tsf import TIMESFORMER_SCHEMES, timesformer_block_keys


ORIGINAL_LAYOUT_SCHEMES = TIMESFORMER_SCHEMES
"""The schemes that have an original (and `transformers`) checkpoint layout."""

# (original suffix, transformers suffix) inside blocks.i / encoder.layer.i
BLOCK_KEYS_ORIGINAL_TO_TRANSFORMERS = {
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
TOP_KEYS_ORIGINAL_TO_ENCODER = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "time_embed": "embeddings.time_embeddings",
    "patch_embed.proj": "embeddings.patch_embeddings.projection",
    "norm": "layernorm",
}


def _top_keys_original_to(encoder_prefix: str) -> dict[str, str]:
    """Original top-level key prefixes -> those of a model whose encoder is at `encoder_prefix`."""
    keys = {key: f"{encoder_prefix}.{name}" for key, name in TOP_KEYS_ORIGINAL_TO_ENCODER.items()}
    return {**keys, "head": "classifier"}


TOP_KEYS_ORIGINAL_TO_TRANSFORMERS = _top_keys_original_to("timesformer")
TOP_KEYS_ORIGINAL_TO_TSF = _top_keys_original_to("tsf")


def block_keys_original_to_tsf(attention_type: str) -> dict[str, str]:
    """Original block sub-keys -> tsf block sub-keys, for the schemes of `ORIGINAL_LAYOUT_SCHEMES`: the original ->
    transformers table composed with the model's own transformers -> tsf table (`timesformer_block_keys`)."""
    to_tsf = timesformer_block_keys(attention_type)
    return {original: to_tsf[name] for original, name in BLOCK_KEYS_ORIGINAL_TO_TRANSFORMERS.items() if name in to_tsf}


ORIGINAL_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$")
"""A block weight in the original (and timm's ViT) layout: `blocks.<index>.<module>.<weight|bias>`."""
_TOP_KEY = re.compile(r"^(.+?)(?:\.(weight|bias))?$")
_TSF_BLOCK_KEY = re.compile(r"^tsf\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_TRANSFORMERS_BLOCK_KEY = re.compile(r"^timesformer\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def block_indices(state_dict: Mapping[str, torch.Tensor]) -> list[int]:
    """The block indices present in an original-layout (or timm ViT) state dict, sorted."""
    return sorted({int(match.group(1)) for key in state_dict if (match := ORIGINAL_BLOCK_KEY.match(key))})


def inverted(table: Mapping[str, str]) -> dict[str, str]:
    """`{target: source}` of a `{source: target}` table."""
    return {target: source for source, target in table.items()}


def rename_keys(
    state_dict: Mapping[str, torch.Tensor],
    top_keys: Mapping[str, str],
    block_keys: Mapping[str, str],
    block_pattern: re.Pattern,
    block_template: str,
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Renames keys by table: block keys matching `block_pattern` (groups: index, module, weight/bias) through
    `block_keys` into `block_template`, other keys (module, optional weight/bias) through `top_keys`. Returns the
    renamed dict, new name -> source name, and the source keys without an entry."""
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
    return rename_keys(
        state_dict,
        TOP_KEYS_ORIGINAL_TO_TSF,
        block_keys_original_to_tsf(attention_type),
        ORIGINAL_BLOCK_KEY,
        "tsf.layers.{index}",
    )


def tsf_key_to_original(key: str, attention_type: str) -> str | None:
    """The original-layout name of a `TsfForVideoClassification` key (for error messages), or `None`."""
    block = _TSF_BLOCK_KEY.match(key)
    if block:
        index, name, kind = block.groups()
        inverse = inverted(block_keys_original_to_tsf(attention_type))
        return f"blocks.{index}.{inverse[name]}.{kind}" if name in inverse else None
    name, kind = _TOP_KEY.match(key).groups()
    inverse = inverted(TOP_KEYS_ORIGINAL_TO_TSF)
    return inverse[name] + (f".{kind}" if kind else "") if name in inverse else None


def original_to_transformers_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames an original-layout state dict to `transformers`' `TimesformerForVideoClassification` keys."""
    renamed, _, unknown = rename_keys(
        state_dict,
        TOP_KEYS_ORIGINAL_TO_TRANSFORMERS,
        BLOCK_KEYS_ORIGINAL_TO_TRANSFORMERS,
        ORIGINAL_BLOCK_KEY,
        "timesformer.encoder.layer.{index}",
    )
    if unknown:
        raise ValueError(f"keys without a transformers Timesformer equivalent: {unknown}")
    return renamed


def _transformers_to_tsf_tables(attention_type: str) -> tuple[dict[str, str], dict[str, str]]:
    """(top-level, block) key tables from `transformers`' Timesformer names to tsf names."""
    top_keys = {hf: TOP_KEYS_ORIGINAL_TO_TSF[orig] for orig, hf in TOP_KEYS_ORIGINAL_TO_TRANSFORMERS.items()}
    return top_keys, timesformer_block_keys(attention_type)


def transformers_to_tsf_state_dict(
    state_dict: Mapping[str, torch.Tensor], attention_type: str
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Renames a `transformers` `TimesformerForVideoClassification` state dict to `TsfForVideoClassification` keys.
    Returns `(renamed, {tsf key: transformers key}, unknown transformers keys)`."""
    top_keys, block_keys = _transformers_to_tsf_tables(attention_type)
    return rename_keys(state_dict, top_keys, block_keys, _TRANSFORMERS_BLOCK_KEY, "tsf.layers.{index}")


def tsf_to_transformers_state_dict(
    state_dict: Mapping[str, torch.Tensor], attention_type: str
) -> dict[str, torch.Tensor]:
    """Renames a `TsfForVideoClassification` state dict to `transformers`' `TimesformerForVideoClassification` keys
    (the inverse of `transformers_to_tsf_state_dict`), for the schemes of `ORIGINAL_LAYOUT_SCHEMES`. Keys without an
    equivalent raise a `ValueError` naming them."""
    top_keys, block_keys = _transformers_to_tsf_tables(attention_type)
    renamed, _, unknown = rename_keys(
        state_dict, inverted(top_keys), inverted(block_keys), _TSF_BLOCK_KEY, "timesformer.encoder.layer.{index}"
    )
    if unknown:
        raise ValueError(
            f"keys without a transformers Timesformer equivalent for {attention_type!r}: {sorted(unknown)}"
        )
    return renamed


# ImageNet ViT key tables, into timm's names (also the original TimeSformer's), which are the canonical ones
_VIT_DROPPED_PREFIXES = ("head.", "pre_logits.", "pooler.", "classifier.")
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
    renamed, _, unknown = rename_keys(stripped, _VIT_TOP_KEYS, _VIT_BLOCK_KEYS, _VIT_BLOCK_KEY, "blocks.{index}")
    if unknown:
        raise ValueError(f"unexpected keys for an ImageNet ViT (timm or transformers layout): {sorted(unknown)}")
    for index in block_indices(renamed):
        prefix = f"blocks.{index}.attn"
        for kind in ("weight", "bias"):
            parts = {name: renamed.pop(f"{prefix}.{name}.{kind}", None) for name in _QKV_PARTS}
            absent = [_QKV_PARTS[name] for name, part in parts.items() if part is None]
            if not absent:
                renamed[f"{prefix}.qkv.{kind}"] = torch.cat(list(parts.values()), dim=0)
            elif len(absent) < len(parts):
                raise ValueError(f"block {index} has some of the query/key/value {kind}s but lacks {absent}")
    required = (
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.0.mlp.fc1.weight",
        "norm.weight",
    )
    missing = [key for key in required if key not in renamed]
    if missing:
        raise ValueError(f"not an ImageNet ViT checkpoint: missing {missing} (found e.g. {sorted(renamed)[:8]})")
    return renamed


def canonical_to_vit_module_names(vit_state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical (timm) ViT weights under the module names of `transformers`' in-memory `ViTModel` (the inverse of
    the in-memory table of `canonical_vit_state_dict`, the fused qkv split into query, key and value)."""
    split = {}
    for key, value in vit_state_dict.items():
        block = ORIGINAL_BLOCK_KEY.match(key)
        if block and block.group(2) == "attn.qkv":
            for name, part in zip(_QKV_PARTS, value.chunk(3, dim=0)):
                split[f"blocks.{block.group(1)}.attn.{name}.{block.group(3)}"] = part
        else:
            split[key] = value
    renamed, _, _ = rename_keys(
        split,
        inverted(_VIT_TOP_KEYS_TRANSFORMERS),
        inverted(_VIT_BLOCK_KEYS_TRANSFORMERS_MODULE),
        ORIGINAL_BLOCK_KEY,
        "layers.{index}",
    )
    return renamed
