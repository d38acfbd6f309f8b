"""Reduced precision: the bfloat16 CPU attention path, the float32 residual stream, and the logit tolerance of a
bfloat16 model."""

import pytest
import torch
from conftest import TINY, perturb_

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification, attention_tsf
from tsf_hf.attention_tsf import chunked_attention_forward, eager_attention_forward
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface


def tiny_model(attention_type: str, **overrides) -> TsfForVideoClassification:
    config = TsfConfig(**{**TINY, "num_frames": 3, **overrides}, attention_type=attention_type, num_labels=5)
    return perturb_(TsfForVideoClassification._from_config(config, attn_implementation="sdpa"))


def padding_mask(num_groups: int, num_tokens: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive `(groups, 1, 1, tokens)` mask hiding the last key of every odd group."""
    mask = torch.zeros(num_groups, 1, 1, num_tokens, dtype=dtype)
    mask[1::2, ..., -1] = torch.finfo(dtype).min
    return mask


@pytest.mark.parametrize("pairs_per_chunk", [1, 5, 12, 100])
@pytest.mark.parametrize("masked", [False, True])
def test_chunked_attention_equals_eager(pairs_per_chunk, masked, monkeypatch):
    """Chunks of any size (here 3 groups x 4 heads = 12 pairs; 5 leaves a ragged last chunk) give eager's result."""
    num_tokens = 7
    monkeypatch.setattr(attention_tsf, "CHUNKED_ATTENTION_SCORES", pairs_per_chunk * num_tokens * num_tokens)
    torch.manual_seed(0)
    query, key, value = (torch.randn(3, 4, num_tokens, 5, dtype=torch.float64) for _ in range(3))
    mask = padding_mask(3, num_tokens, torch.float64) if masked else None
    module = torch.nn.Module().eval()
    output, weights = chunked_attention_forward(module, query, key, value, mask, scaling=0.3)
    expected, _ = eager_attention_forward(module, query, key, value, mask, scaling=0.3)
    assert weights is None and output.shape == (3, num_tokens, 4, 5)
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-12)


def test_chunked_attention_in_bfloat16_is_as_close_as_torch_kernel():
    """In bfloat16 the chunked path's error against float64 stays within a small multiple of PyTorch's fused
    kernel's (both round to bfloat16; the chunked path also rounds scores and probabilities)."""
    torch.manual_seed(0)
    query, key, value = (torch.randn(8, 12, 197, 64, dtype=torch.bfloat16) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(query.double(), key.double(), value.double())
    fused = torch.nn.functional.scaled_dot_product_attention(query, key, value)
    chunked, _ = chunked_attention_forward(torch.nn.Module().eval(), query, key, value, None, scaling=64**-0.5)
    fused_error = (fused.double() - expected).abs().max().item()
    chunked_error = (chunked.transpose(1, 2).double() - expected).abs().max().item()
    assert chunked_error < 4 * fused_error and chunked_error < 2e-2


def count_chunked_calls(monkeypatch) -> list:
    """Records the query shape of every call of the registered `tsf_chunked` backend."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[1].shape)
        return chunked_attention_forward(*args, **kwargs)

    monkeypatch.setitem(AttentionInterface._global_mapping, "tsf_chunked", counting)
    return calls


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_bfloat16_cpu_inference_uses_chunked_attention(attention_type, monkeypatch):
    """sdpa in bfloat16 on CPU runs every attention step through the chunked path, masks of padded groups
    included, and stays close to the float32 model."""
    calls = count_chunked_calls(monkeypatch)
    torch.manual_seed(0)
    model = tiny_model(attention_type)
    pixel_values = torch.randn(2, 3, 3, 24, 40)  # odd frames, rows and columns: padded sparse groups
    with torch.no_grad():
        expected = model(pixel_values).logits
        assert calls == []  # float32 keeps PyTorch's kernel
        logits = model.to(torch.bfloat16)(pixel_values.bfloat16()).logits
    steps = len(model.config.attention_steps) * model.config.num_hidden_layers
    assert len(calls) == steps
    torch.testing.assert_close(logits.float(), expected, rtol=0, atol=3e-2)


def test_chunked_attention_is_not_used_for_training_or_gradients(monkeypatch):
    calls = count_chunked_calls(monkeypatch)
    torch.manual_seed(0)
    model = tiny_model("divided_space_time").to(torch.bfloat16)
    pixel_values = torch.randn(1, 3, 3, 32, 32, dtype=torch.bfloat16)
    model(pixel_values).logits.float().sum().backward()  # eval mode, gradients wanted
    model.train()
    with torch.no_grad():
        model(pixel_values)
    assert calls == []
    with torch.inference_mode():
        model.eval()(pixel_values)
    assert calls


@pytest.mark.parametrize("residual_in_fp32", [True, False])
def test_residual_stream_precision(residual_in_fp32):
    """With `residual_in_fp32`, a bfloat16 model carries its tokens between and within blocks in float32 while its
    norms, attention and MLPs run in bfloat16; without it everything is bfloat16."""
    torch.manual_seed(0)
    model = tiny_model("divided_space_time", residual_in_fp32=residual_in_fp32).to(torch.bfloat16)
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = (inputs[0].dtype, output.dtype)

        return hook

    layer = model.tsf.layers[0]
    layer.steps[0].norm.register_forward_hook(record("norm"))
    layer.mlp.fc1.register_forward_hook(record("mlp"))
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 3, 32, 32, dtype=torch.bfloat16), output_hidden_states=True)
    residual_dtype = torch.float32 if residual_in_fp32 else torch.bfloat16
    assert {hidden.dtype for hidden in outputs.hidden_states} == {residual_dtype}
    assert seen == {"norm": (torch.bfloat16, torch.bfloat16), "mlp": (torch.bfloat16, torch.bfloat16)}
    assert outputs.logits.dtype == torch.bfloat16


def test_residual_in_fp32_changes_nothing_in_float32():
    torch.manual_seed(0)
    model = tiny_model("divided_space_time")
    pixel_values = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values).logits
        model.config.residual_in_fp32 = False
        assert torch.equal(model(pixel_values).logits, expected)


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_base_model_bfloat16_logits_within_tolerance(attention_type):
    """The full-size base model (8x224, random weights) cast to bfloat16 gives logits within 2e-2 of float32 on a
    normalised random clip, closer than with a bfloat16 residual stream."""
    torch.manual_seed(0)
    config = TsfConfig.from_variant("base", attention_type=attention_type, num_labels=400)
    model = TsfForVideoClassification._from_config(config, attn_implementation="sdpa").eval()
    pixel_values = torch.randn(1, 8, 3, 224, 224)
    with torch.inference_mode():
        expected = model(pixel_values).logits
        logits = model.to(torch.bfloat16)(pixel_values.bfloat16()).logits
    torch.testing.assert_close(logits.float(), expected, rtol=0, atol=2e-2)
    model.config.residual_in_fp32 = False
    with torch.inference_mode():
        bfloat16_residual_logits = model(pixel_values.bfloat16()).logits
    error = (logits.float() - expected).abs().max()
    assert error < (bfloat16_residual_logits.float() - expected).abs().max()


def test_chunked_backend_is_selectable_and_trains_like_eager():
    """`attn_implementation="tsf_chunked"` is a registered backend: selectable by name, and in training (gradients,
    attention dropout) it gives eager's loss and gradients."""
    assert "tsf_chunked" in ALL_ATTENTION_FUNCTIONS.valid_keys()
    torch.manual_seed(0)
    config = TsfConfig(**{**TINY, "num_frames": 3}, attention_type="sparse_local_global", num_labels=5)
    model = perturb_(TsfForVideoClassification._from_config(config, attn_implementation="tsf_chunked")).double()
    assert model.config._attn_implementation == "tsf_chunked"
    pixel_values = torch.randn(2, 3, 3, 24, 40, dtype=torch.float64)  # odd grid: masked padding
    labels = torch.tensor([1, 4])
    gradients = {}
    for implementation in ("eager", "tsf_chunked"):
        model.set_attn_implementation(implementation)
        model.zero_grad()
        loss = model(pixel_values, labels=labels).loss
        loss.backward()
        gradients[implementation] = [parameter.grad.clone() for parameter in model.parameters()]
    for chunked, eager in zip(gradients["tsf_chunked"], gradients["eager"]):
        torch.testing.assert_close(chunked, eager, rtol=0, atol=1e-12)


def test_chunked_backend_applies_attention_dropout():
    """In training with `attention_probs_dropout_prob`, the chunked backend drops probabilities as eager does: the
    same random stream gives the same result."""
    config = TsfConfig(**TINY, attention_probs_dropout_prob=0.5, num_labels=3)
    torch.manual_seed(0)
    model = perturb_(TsfForVideoClassification(config)).double().train()
    pixel_values = torch.randn(1, 4, 3, 32, 32, dtype=torch.float64)
    logits = {}
    for implementation in ("eager", "tsf_chunked"):
        model.set_attn_implementation(implementation)
        torch.manual_seed(1)
        logits[implementation] = model(pixel_values).logits
    model.eval()
    torch.testing.assert_close(logits["tsf_chunked"], logits["eager"], rtol=0, atol=1e-12)
