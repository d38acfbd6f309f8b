"""TsfModel / TsfForVideoClassification: parity, schemes, backends, grouping, training, errors."""

import itertools
import math
import re

import pytest
import torch
import torch.nn.functional as F
from transformers import TimesformerConfig, TimesformerForVideoClassification

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification, TsfModel
from tsf_hf.modeling_tsf import STEP_GROUPINGS, TokenGrouper


TINY = dict(
    image_size=32,
    patch_size=8,
    num_frames=4,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
)


def tiny_config(**overrides) -> TsfConfig:
    return TsfConfig(**{**TINY, "num_labels": 3, **overrides})


def randomise(model: torch.nn.Module, std: float = 0.2, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights everywhere (the original init leaves fc layers and the time table at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return model.eval()


def transformers_to_tsf(state_dict: dict, attention_type: str) -> dict:
    """Key mapping from transformers' Timesformer to tsf (independent of tsf_hf.conversion)."""
    spatial_step = "1" if attention_type == "divided_space_time" else "0"
    rules = [
        (r"^timesformer\.", "tsf."),
        (r"encoder\.layer\.(\d+)\.temporal_layernorm", r"layers.\1.steps.0.norm"),
        (r"encoder\.layer\.(\d+)\.temporal_attention\.attention\.qkv", r"layers.\1.steps.0.attention.qkv"),
        (r"encoder\.layer\.(\d+)\.temporal_attention\.output\.dense", r"layers.\1.steps.0.attention.proj"),
        (r"encoder\.layer\.(\d+)\.temporal_dense", r"layers.\1.steps.0.fc"),
        (r"encoder\.layer\.(\d+)\.layernorm_before", rf"layers.\1.steps.{spatial_step}.norm"),
        (r"encoder\.layer\.(\d+)\.attention\.attention\.qkv", rf"layers.\1.steps.{spatial_step}.attention.qkv"),
        (r"encoder\.layer\.(\d+)\.attention\.output\.dense", rf"layers.\1.steps.{spatial_step}.attention.proj"),
        (r"encoder\.layer\.(\d+)\.layernorm_after", r"layers.\1.norm"),
        (r"encoder\.layer\.(\d+)\.intermediate\.dense", r"layers.\1.mlp.fc1"),
        (r"encoder\.layer\.(\d+)\.output\.dense", r"layers.\1.mlp.fc2"),
    ]
    converted = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key, count=1)
        converted[key] = value
    return converted


# ----------------------------------------------------------------------------------------------------------- config


def test_config_defaults_are_the_papers_base_model():
    config = TsfConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert (config.num_frames, config.image_size, config.patch_size) == (8, 224, 16)
    assert config.attention_type == "divided_space_time"
    assert config.layer_norm_eps == 1e-6 and config.position_embedding_interpolation == "nearest"
    assert config.model_type == "tsf"


@pytest.mark.parametrize("variant, frames, size", [("base", 8, 224), ("hr", 16, 448), ("large", 96, 224)])
@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_variants_combine_with_every_attention_type(variant, frames, size, attention_type):
    config = TsfConfig.from_variant(variant, attention_type=attention_type)
    assert (config.num_frames, config.image_size, config.attention_type) == (frames, size, attention_type)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"attention_type": "divided"}, "attention_type"),
        ({"hidden_size": 100}, "hidden_size"),
        ({"image_size": 225}, "image_size"),
        ({"image_size": (224, 100)}, "image_size"),
        ({"image_size": (224, 224, 3)}, "image_size"),
        ({"num_frames": 0}, "num_frames"),
        ({"drop_path_rate": 1.5}, "drop_path_rate"),
        ({"position_embedding_interpolation": "area"}, "position_embedding_interpolation"),
        ({"hidden_act": "swishy"}, "hidden_act"),
    ],
)
def test_invalid_config_names_field_value_and_allowed(overrides, field):
    with pytest.raises(Exception) as error:
        TsfConfig(**overrides)
    message = str(error.value)
    assert field in message and repr(next(iter(overrides.values())))[:8] in message
    assert "must be" in message or "expected" in message


def test_config_type_checks_and_float_rates():
    assert TsfConfig(drop_path_rate=0.1).drop_path_rate == 0.1
    with pytest.raises(Exception, match="num_frames"):
        TsfConfig(num_frames="eight")
    with pytest.raises(ValueError, match="variant"):
        TsfConfig.from_variant("huge")


def test_config_round_trip_with_rectangular_image_size(tmp_path):
    config = TsfConfig.from_variant("hr", attention_type="axial", image_size=(448, 224), num_labels=5)
    config.save_pretrained(tmp_path)
    reloaded = TsfConfig.from_pretrained(tmp_path)
    assert reloaded.image_height_width == (448, 224) and reloaded.attention_type == "axial"
    assert reloaded.num_labels == 5


# -------------------------------------------------------------------------------------------- Table 1 parameters


@pytest.mark.parametrize(
    "attention_type, millions",
    [
        ("space_only", 85.9),
        ("joint_space_time", 85.9),
        ("divided_space_time", 121.4),
        ("sparse_local_global", 121.4),
        ("axial", 156.8),
    ],
)
def test_parameter_counts_match_table_1(attention_type, millions):
    with torch.device("meta"):
        model = TsfForVideoClassification(TsfConfig(attention_type=attention_type, num_labels=174))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


# ------------------------------------------------------------------------------- parity with transformers' port


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_parity_with_transformers_timesformer(attention_type):
    kwargs = {**TINY, "num_labels": 3, "attention_type": attention_type}
    reference = randomise(TimesformerForVideoClassification(TimesformerConfig(**kwargs)), std=0.1)
    model = TsfForVideoClassification(TsfConfig(**kwargs, attn_implementation="eager")).eval()
    model.load_state_dict(transformers_to_tsf(reference.state_dict(), attention_type), strict=True)
    pixel_values = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(pixel_values, output_hidden_states=True)
        for implementation in ("eager", "sdpa"):
            model.set_attn_implementation(implementation)
            actual = model(pixel_values, output_hidden_states=True)
            torch.testing.assert_close(actual.logits, expected.logits, atol=1e-5, rtol=0)
            assert len(actual.hidden_states) == len(expected.hidden_states) == 3
            for ours, theirs in zip(actual.hidden_states, expected.hidden_states):
                torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    assert expected.logits.abs().max() > 0.1  # not a trivially small output


# ---------------------------------------------------------------------- space_only against REFERENCE semantics


def reference_space_only_logits(model: TsfForVideoClassification, pixel_values: torch.Tensor) -> torch.Tensor:
    """Written from the paper's description: every frame is a ViT sequence with its own cls; after the last block
    all tokens are averaged over frames, then final norm, cls, head."""
    state = {key: value for key, value in model.state_dict().items()}
    config = model.config
    batch_size, num_frames = pixel_values.shape[:2]
    heads, width = config.num_attention_heads, config.hidden_size
    frames = pixel_values.flatten(0, 1)
    x = F.conv2d(frames, state["tsf.embeddings.patch_embeddings.projection.weight"],
                 state["tsf.embeddings.patch_embeddings.projection.bias"], stride=config.patch_size)
    x = x.flatten(2).transpose(1, 2)
    cls = state["tsf.embeddings.cls_token"].expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], 1) + state["tsf.embeddings.position_embeddings"]

    def layer_norm(t, name):
        return F.layer_norm(t, (width,), state[name + ".weight"], state[name + ".bias"], eps=config.layer_norm_eps)

    for i in range(config.num_hidden_layers):
        prefix = f"tsf.layers.{i}."
        h = layer_norm(x, prefix + "steps.0.norm")
        qkv = F.linear(h, state[prefix + "steps.0.attention.qkv.weight"], state[prefix + "steps.0.attention.qkv.bias"])
        q, k, v = qkv.view(h.shape[0], h.shape[1], 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width // heads), -1)
        out = (attention @ v).transpose(1, 2).reshape(h.shape)
        x = x + F.linear(out, state[prefix + "steps.0.attention.proj.weight"], state[prefix + "steps.0.attention.proj.bias"])
        h = layer_norm(x, prefix + "norm")
        h = F.gelu(F.linear(h, state[prefix + "mlp.fc1.weight"], state[prefix + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[prefix + "mlp.fc2.weight"], state[prefix + "mlp.fc2.bias"])
    x = x.view(batch_size, num_frames, *x.shape[1:]).mean(1)
    x = layer_norm(x, "tsf.layernorm")
    return F.linear(x[:, 0], state["classifier.weight"], state["classifier.bias"])


def test_space_only_averages_frames_before_final_norm():
    model = randomise(TsfForVideoClassification(tiny_config(attention_type="space_only")), std=0.3)
    pixel_values = torch.randn(2, 4, 3, 32, 32) * torch.tensor([0.1, 1.0, 3.0, 10.0])[:, None, None, None]
    with torch.no_grad():
        output = model(pixel_values, output_hidden_states=True)
        expected = reference_space_only_logits(model, pixel_values)
        # averaging per-frame logits instead would give something else
        per_frame = model(pixel_values.flatten(0, 1)[:, None]).logits.view(2, 4, -1).mean(1)
    assert output.logits.shape == (2, 3)
    torch.testing.assert_close(output.logits, expected, atol=1e-5, rtol=0)
    assert (per_frame - expected).abs().max() > 1e-3
    assert output.hidden_states[0].shape == (2 * 4, 1 + 16, 32)
    assert "tsf.embeddings.time_embeddings" not in model.state_dict()


def test_space_only_is_blind_to_frame_order():
    model = randomise(TsfForVideoClassification(tiny_config(attention_type="space_only")), std=0.1)
    pixel_values = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).logits, model(pixel_values.flip(1)).logits, atol=1e-5, rtol=0)


# -------------------------------------------------------------------------------------- backends and input sizes


SHAPES = [(4, 32, 32), (1, 32, 32), (3, 24, 40), (6, 16, 16)]


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_backends_agree_for_every_scheme(attention_type):
    model = randomise(TsfForVideoClassification(tiny_config(attention_type=attention_type)), std=0.1)
    for frames, height, width in SHAPES:
        pixel_values = torch.randn(2, frames, 3, height, width)
        results = {}
        for implementation in ("eager", "sdpa", "flex_attention"):
            model.set_attn_implementation(implementation)
            with torch.no_grad():
                results[implementation] = model(pixel_values).logits
        assert torch.isfinite(results["eager"]).all()
        for implementation in ("sdpa", "flex_attention"):
            torch.testing.assert_close(results[implementation], results["eager"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_frame_count_and_grid_come_from_the_input(attention_type):
    model = randomise(TsfModel(TsfConfig(**TINY, attention_type=attention_type)), std=0.1)
    for frames, height, width in [(1, 8, 8), (5, 40, 24), (8, 32, 32)]:
        with torch.no_grad():
            output = model(torch.randn(2, frames, 3, height, width))
        patches = (height // 8) * (width // 8)
        tokens = 1 + patches if attention_type == "space_only" else 1 + patches * frames
        assert output.last_hidden_state.shape == (2, tokens, 32)
        assert torch.isfinite(output.last_hidden_state).all()


def test_position_tables_resize_with_legacy_nearest():
    model = randomise(TsfModel(TsfConfig(**TINY)), std=1.0)
    embeddings = model.embeddings
    table = embeddings.position_embeddings[0, 1:].view(4, 4, -1)
    resized = embeddings.spatial_table(6, 3).view(6, 3, -1)
    for row, col in itertools.product(range(6), range(3)):
        torch.testing.assert_close(resized[row, col], table[row * 4 // 6, col * 4 // 3])
    # equal patch count, other grid: the stored table as it is (as the original)
    assert torch.equal(embeddings.spatial_table(2, 8), embeddings.position_embeddings[:, 1:])
    time_table = embeddings.temporal_table(7)[0]
    for frame in range(7):
        torch.testing.assert_close(time_table[frame], embeddings.time_embeddings[0, frame * 4 // 7])
    assert torch.equal(embeddings.temporal_table(4), embeddings.time_embeddings)


def test_bilinear_position_interpolation_is_selectable():
    model = randomise(TsfModel(TsfConfig(**TINY, position_embedding_interpolation="bilinear")), std=1.0)
    table = model.embeddings.position_embeddings[:, 1:].view(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(table, size=(8, 8), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.embeddings.spatial_table(8, 8), expected)


def test_token_order_is_patch_major_frame_minor():
    """Token 1 + n*T + t holds patch n of frame t: changing frame 2 changes only those embeddings."""
    model = randomise(TsfModel(TsfConfig(**TINY)), std=0.1)
    pixel_values = torch.randn(1, 4, 3, 32, 32)
    changed = pixel_values.clone()
    changed[:, 2] += 1.0
    with torch.no_grad():
        before = model(pixel_values, output_hidden_states=True).hidden_states[0]
        after = model(changed, output_hidden_states=True).hidden_states[0]
    differs = (before - after).abs().amax(-1)[0] > 1e-6
    expected = torch.zeros(1 + 16 * 4, dtype=torch.bool)
    expected[1 + torch.arange(16) * 4 + 2] = True
    assert torch.equal(differs, expected)


# ----------------------------------------------------------------------------- which token sees which, per step


def grid_coordinates(frames: int, rows: int, cols: int) -> list[tuple[int, int, int]]:
    """(t, h, w) of patch token n*T + t, n = h*cols + w."""
    return [(t, n // cols, n % cols) for n in range(rows * cols) for t in range(frames)]


def expected_same_group(step: str, a: tuple, b: tuple, frames: int, rows: int, cols: int) -> bool:
    (ta, ha, wa), (tb, hb, wb) = a, b
    half_rows, half_cols = (rows + 1) // 2, (cols + 1) // 2
    return {
        "time": (ha, wa) == (hb, wb),
        "space": ta == tb,
        "joint": True,
        "local": (ha < half_rows, wa < half_cols) == (hb < half_rows, wb < half_cols),
        "global": (ta % 2, ha % 2, wa % 2) == (tb % 2, hb % 2, wb % 2),
        "width": (ta, ha) == (tb, hb),
        "height": (ta, wa) == (tb, wb),
    }[step]


STEP_OF_SCHEME = {
    "time": "divided_space_time",
    "space": "divided_space_time",
    "joint": "joint_space_time",
    "local": "sparse_local_global",
    "global": "sparse_local_global",
    "width": "axial",
    "height": "axial",
}


@pytest.mark.parametrize("step_name", list(STEP_GROUPINGS))
@pytest.mark.parametrize("grid", [(4, 4, 4), (3, 5, 3), (1, 2, 6)])
def test_each_step_attends_exactly_within_its_groups(step_name, grid):
    config = TsfConfig(**{**TINY, "num_hidden_layers": 1}, attention_type=STEP_OF_SCHEME[step_name])
    layer = randomise(TsfModel(config), std=0.1).layers[0].double()  # float64: unchanged means exactly equal
    step = next(step for step in layer.steps if step.name == step_name)
    frames, rows, cols = grid
    num_tokens = frames * rows * cols
    hidden_states = torch.randn(1, 1 + num_tokens, 32, dtype=torch.float64)
    with torch.no_grad():
        base, _ = layer.attention_step(step, hidden_states, grid)
        coordinates = grid_coordinates(*grid)
        for source in range(num_tokens):
            perturbed = hidden_states.clone()
            perturbed[0, 1 + source] += torch.randn(32, dtype=torch.float64)  # not a constant: LayerNorm hides those
            out, _ = layer.attention_step(step, perturbed, grid)
            changed = ((out - base)[0, 1:].abs().amax(-1) > 1e-13).tolist()
            expected = [
                target == source or expected_same_group(step_name, coordinates[source], coordinates[target], *grid)
                for target in range(num_tokens)
            ]
            assert changed == expected, (step_name, grid, coordinates[source])


@pytest.mark.parametrize("step_name", list(STEP_GROUPINGS))
def test_cls_is_averaged_over_groups_and_left_out_of_time_steps(step_name):
    """Reference: copy cls into every group, attend, project; cls update = mean of the copies' updates."""
    config = TsfConfig(**{**TINY, "num_hidden_layers": 1}, attention_type=STEP_OF_SCHEME[step_name])
    layer = randomise(TsfModel(config), std=0.3).layers[0]
    step = next(step for step in layer.steps if step.name == step_name)
    grid = (4, 4, 4)
    hidden_states = torch.randn(1, 65, 32)
    changed_cls = hidden_states.clone()
    changed_cls[:, 0] += torch.randn(32)
    with torch.no_grad():
        out, weights = layer.attention_step(step, hidden_states, grid, output_attentions=True)
        out_changed_cls, _ = layer.attention_step(step, changed_cls, grid, output_attentions=True)
        if not STEP_GROUPINGS[step_name].attends_cls:
            assert torch.equal(out[:, 0], hidden_states[:, 0])
            assert torch.equal(out_changed_cls[:, 1:], out[:, 1:])
            return
        grouper = TokenGrouper(STEP_GROUPINGS[step_name], *grid)
        cls_copies = hidden_states[:, :1].expand(grouper.num_groups, 1, 32)
        groups = torch.cat([cls_copies, grouper.group(hidden_states[:, 1:])], 1)
        heads, head_dim = 4, 8
        q, k, v = step.attention.qkv(step.norm(groups)).view(grouper.num_groups, -1, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        attended = (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), -1) @ v).transpose(1, 2).flatten(2)
        update = step.attention.proj(attended)
        if step.fc is not None:
            update = step.fc(update)
        torch.testing.assert_close(out[:, :1], hidden_states[:, :1] + update[:, :1].mean(0, keepdim=True), atol=1e-5, rtol=0)
        expected_patches = hidden_states[:, 1:] + grouper.ungroup(update[:, 1:], 1)
        torch.testing.assert_close(out[:, 1:], expected_patches, atol=1e-5, rtol=0)
        assert not torch.equal(out_changed_cls[:, 1:], out[:, 1:])  # every patch sees cls
        assert weights.shape == (grouper.num_groups, 4, 1 + grouper.num_tokens, 1 + grouper.num_tokens)


@pytest.mark.parametrize("grid", [(3, 3, 5), (1, 1, 1), (5, 4, 4)])
def test_sparse_local_global_odd_grids_use_masked_padding(grid):
    """Odd frame counts, rows or columns: the last half-block / parity group is padded and the padding masked,
    so results equal an unpadded computation over the real members of each group."""
    frames, rows, cols = grid
    model = randomise(TsfModel(TsfConfig(**TINY, attention_type="sparse_local_global")), std=0.1)
    pixel_values = torch.randn(1, frames, 3, rows * 8, cols * 8)
    outputs = {}
    for implementation in ("eager", "sdpa", "flex_attention"):
        model.set_attn_implementation(implementation)
        with torch.no_grad():
            outputs[implementation] = model(pixel_values, output_attentions=implementation == "eager")
    for implementation in ("sdpa", "flex_attention"):
        torch.testing.assert_close(outputs[implementation].last_hidden_state, outputs["eager"].last_hidden_state)
    weights = outputs["eager"].attentions[0]["global"]
    grouper = TokenGrouper(STEP_GROUPINGS["global"], *grid)
    real = F.pad(grouper.key_padding_mask(torch.device("cpu")), (1, 0), value=True)
    # padded keys get exactly zero weight
    assert torch.all(weights[~real[:, None, None, :].expand_as(weights)] == 0)


# ----------------------------------------------------------------------------------------- outputs and loss


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_outputs_hidden_states_and_labelled_attentions(attention_type):
    model = randomise(TsfForVideoClassification(tiny_config(attention_type=attention_type)), std=0.1)
    model.set_attn_implementation("sdpa")
    with torch.no_grad():
        output = model(torch.randn(2, 4, 3, 32, 32), output_hidden_states=True, output_attentions=True)
    assert len(output.hidden_states) == 3 and len(output.attentions) == 2
    for layer_attentions in output.attentions:
        assert tuple(layer_attentions) == model.config.attention_steps
        for weights in layer_attentions.values():
            torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    if attention_type == "divided_space_time":
        assert output.attentions[0]["time"].shape == (2 * 16, 4, 4, 4)
        assert output.attentions[0]["space"].shape == (2 * 4, 4, 17, 17)


def test_views_dimension_averages_logits():
    model = randomise(TsfForVideoClassification(tiny_config()), std=0.1)
    views = torch.randn(2, 3, 4, 3, 32, 32)
    with torch.no_grad():
        averaged = model(views).logits
        separate = model(views.flatten(0, 1)).logits.view(2, 3, -1).mean(1)
    torch.testing.assert_close(averaged, separate)


@pytest.mark.parametrize(
    "num_labels, labels, problem_type",
    [
        (3, torch.tensor([0, 2]), "single_label_classification"),
        (3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "multi_label_classification"),
        (1, torch.tensor([0.5, -1.0]), "regression"),
    ],
)
def test_labels_give_the_standard_losses(num_labels, labels, problem_type):
    model = randomise(TsfForVideoClassification(tiny_config(num_labels=num_labels)), std=0.1)
    output = model(torch.randn(2, 4, 3, 32, 32), labels=labels)
    assert model.config.problem_type == problem_type
    logits = output.logits
    expected = {
        "single_label_classification": lambda: F.cross_entropy(logits, labels),
        "multi_label_classification": lambda: F.binary_cross_entropy_with_logits(logits, labels),
        "regression": lambda: F.mse_loss(logits.squeeze(-1), labels),
    }[problem_type]()
    torch.testing.assert_close(output.loss, expected)


# ------------------------------------------------------------------------------------------- init and training


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_init_zeroes_extra_linears_and_time_table(attention_type):
    model = TsfForVideoClassification(tiny_config(attention_type=attention_type))
    for layer in model.tsf.layers:
        for step in layer.steps[:-1]:
            assert torch.count_nonzero(step.fc.weight) == 0 and torch.count_nonzero(step.fc.bias) == 0
        assert layer.steps[-1].fc is None
    if attention_type != "space_only":
        assert torch.count_nonzero(model.tsf.embeddings.time_embeddings) == 0
    assert 0.0 < model.tsf.embeddings.position_embeddings.std() < 0.04


def test_drop_path_schedule_is_linear_in_depth():
    model = TsfModel(TsfConfig(**{**TINY, "num_hidden_layers": 5}, drop_path_rate=0.1))
    rates = [layer.drop_path.drop_prob for layer in model.layers]
    assert rates == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1])


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_gradient_checkpointing_gives_the_same_gradients(attention_type):
    model = randomise(TsfForVideoClassification(tiny_config(attention_type=attention_type)), std=0.1).train()
    pixel_values, labels = torch.randn(2, 4, 3, 32, 32), torch.tensor([0, 2])

    def gradients():
        model.zero_grad()
        model(pixel_values, labels=labels).loss.backward()
        return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}

    plain = gradients()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert all(layer.gradient_checkpointing for layer in model.tsf.layers)
    checkpointed = gradients()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_every_scheme_trains(attention_type):
    torch.manual_seed(0)
    model = TsfForVideoClassification(tiny_config(attention_type=attention_type, drop_path_rate=0.1)).train()
    pixel_values, labels = torch.randn(4, 4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_drop_path_is_identity_in_eval_and_random_in_training():
    model = randomise(TsfForVideoClassification(tiny_config(drop_path_rate=0.5)), std=0.1)
    pixel_values = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(pixel_values).logits, model(pixel_values).logits)
        model.train()
        torch.manual_seed(0)
        first = model(pixel_values).logits
        torch.manual_seed(1)
        assert not torch.equal(first, model(pixel_values).logits)


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "pixel_values, error, message",
    [
        (torch.randn(4, 3, 32, 32), ValueError, r"4-D tensor of shape \(4, 3, 32, 32\)"),
        (torch.randn(1, 3, 4, 32, 32), ValueError, r"looks like \(batch_size, num_channels, num_frames"),
        (torch.randn(1, 4, 1, 32, 32), ValueError, "must have 3 channels"),
        (torch.randn(1, 4, 3, 30, 32), ValueError, r"multiples of patch_size \(8\), got 30x32"),
        (torch.randn(1, 0, 3, 32, 32), ValueError, "at least one video and one frame"),
        (torch.randn(1, 4, 3, 4, 32), ValueError, "at least 8x8"),
        (torch.randint(0, 255, (1, 4, 3, 32, 32), dtype=torch.uint8), TypeError, "floating-point.*uint8"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_bad_input_raises_a_clear_error(pixel_values, error, message):
    model = TsfModel(TsfConfig(**TINY))
    with pytest.raises(error, match=message):
        model(pixel_values)


def test_crop_to_patch_multiple_crops_like_the_original_conv():
    model = randomise(TsfModel(TsfConfig(**TINY, crop_to_patch_multiple=True)), std=0.1)
    pixel_values = torch.randn(1, 4, 3, 37, 35)
    with torch.no_grad():
        torch.testing.assert_close(
            model(pixel_values).last_hidden_state, model(pixel_values[..., :32, :32]).last_hidden_state
        )


def test_classifier_names_the_views_layout_for_wrong_rank():
    model = TsfForVideoClassification(tiny_config())
    with pytest.raises(ValueError, match=r"num_views.*7-D"):
        model(torch.randn(1, 1, 1, 4, 3, 32, 32))


def test_unknown_forward_arguments_are_rejected():
    model = TsfForVideoClassification(tiny_config())
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        model(torch.randn(1, 4, 3, 32, 32), interpolate_pos_encoding=True)


def test_labels_with_wrong_batch_size_raise():
    model = TsfForVideoClassification(tiny_config())
    with pytest.raises(ValueError, match="labels has 3 rows for 2 videos"):
        model(torch.randn(2, 4, 3, 32, 32), labels=torch.tensor([0, 1, 2]))
