"""Attention backends of the tsf models: the eager reference, the `"tsf_chunked"` backend (registered with
transformers' `AttentionInterface`), the rule that picks a step's backend, and the padding mask each backend reads."""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_utils import AttentionInterface
from transformers.utils.generic import is_flash_attention_requested


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention. q, k, v: `(groups, heads, tokens, head_dim)`; returns `(groups, tokens, heads,
    head_dim)` and the weights `(groups, heads, tokens, tokens)`."""
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    softmax_dtype = torch.promote_types(query.dtype, torch.float32)  # at least float32 for half precisions
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=softmax_dtype).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


CHUNKED_ATTENTION_SCORES = 1 << 21
"""Score elements per chunk of `chunked_attention_forward` (4 MiB in bfloat16: the chunk stays in cache)."""


def chunked_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """The `"tsf_chunked"` attention backend: softmax attention computed a few (group, head) pairs at a time, so each
    chunk's scores stay in cache and every product is a plain batched matmul. On CPU in bfloat16 it is several times
    faster than PyTorch's fused kernel (which runs at a fraction of the bfloat16 matmul rate there). Same arguments
    and output layout as `eager_attention_forward` (`attention_mask` additive, `(groups, 1, 1, tokens)`); returns no
    weights."""
    num_groups, num_heads, num_tokens, head_dim = query.shape
    pairs_per_chunk = max(1, CHUNKED_ATTENTION_SCORES // (num_tokens * num_tokens))
    heads_per_chunk = min(num_heads, pairs_per_chunk)
    groups_per_chunk = max(1, pairs_per_chunk // num_heads) if heads_per_chunk == num_heads else 1
    masks = None if attention_mask is None else attention_mask.expand(-1, num_heads, -1, -1)  # (G, H, 1, keys)
    no_mask = query.new_zeros(())
    output = query.new_empty(num_groups, num_tokens, num_heads, head_dim)  # the layout callers read: no copy after
    for first_group in range(0, num_groups, groups_per_chunk):
        groups = slice(first_group, first_group + groups_per_chunk)
        for first_head in range(0, num_heads, heads_per_chunk):
            heads = slice(first_head, first_head + heads_per_chunk)
            chunk_query, chunk_key = query[groups, heads], key[groups, heads]  # (groups, heads, tokens, head_dim)
            bias = no_mask if masks is None else masks[groups, heads].reshape(-1, 1, masks.shape[-1])
            # scores = scaling * q k^T (+ mask), the scaling applied inside the product
            scores = torch.baddbmm(bias, chunk_query.flatten(0, 1), chunk_key.flatten(0, 1).transpose(1, 2), alpha=scaling)
            probabilities = F.dropout(scores.softmax(-1), p=dropout, training=dropout > 0)
            attended = torch.bmm(probabilities, value[groups, heads].flatten(0, 1))
            output[groups, :, heads] = attended.view(chunk_query.shape).transpose(1, 2)
    return output, None


AttentionInterface.register("tsf_chunked", chunked_attention_forward)


def attention_backend(requested: str, query: torch.Tensor, module: nn.Module, output_attentions: bool) -> str:
    """The attention backend a step runs, from the model's `attn_implementation`. The one rule that departs from it:
    `"sdpa"` (the default) runs as `"tsf_chunked"` for bfloat16 inference on CPU outside `torch.compile`, where the
    chunked backend is several times faster than PyTorch's fused kernel (compiled graphs keep the fused kernel).
    Returning attention weights always takes `"eager"`, whatever the backend, as only it computes them."""
    if output_attentions:
        return "eager"
    if (
        requested == "sdpa"
        and query.device.type == "cpu"
        and query.dtype == torch.bfloat16
        and not module.training
        and not (torch.is_grad_enabled() and query.requires_grad)
        and not torch.compiler.is_compiling()
    ):
        return "tsf_chunked"
    return requested


def attention_mask_for(
    implementation: str, key_padding_mask: torch.Tensor, num_queries: int, dtype: torch.dtype
) -> torch.Tensor | object:
    """The mask each attention backend expects, from a `(groups, tokens)` key padding mask (True = real token)."""
    if is_flash_attention_requested(requested_attention_implementation=implementation):
        return key_padding_mask.to(torch.int32)
    if implementation == "flex_attention":
        from torch.nn.attention.flex_attention import create_block_mask

        def real_key(batch_index, head_index, query_index, key_index):
            return key_padding_mask[batch_index, key_index]

        return create_block_mask(
            real_key, key_padding_mask.shape[0], None, num_queries, key_padding_mask.shape[1], device=key_padding_mask.device
        )
    additive = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return additive.masked_fill(~key_padding_mask, torch.finfo(dtype).min)[:, None, None, :]


__all__ = ["attention_backend", "attention_mask_for", "chunked_attention_forward", "eager_attention_forward"]
