"""TsfModel / TsfForVideoClassification: parity, schemes, backends, grouping, training, errors."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY
from transformers import TimesformerConfig, TimesformerForVideoClassification

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification, TsfModel
from tsf_hf.conversion import transformers_to_tsf_state_dict
from tsf_hf.grouping_tsf import STEP_GROUPINGS, TokenGrouper




def tiny_config(**overrides) -> TsfConfig:
    return TsfConfig(**{**TINY, "num_labels": 3, **overrides})


def randomise(model: torch.nn.Module, std: float = 0.2, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights everywhere (the original init leaves fc layers and the time table at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return model.eval()


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
    wrong_type = isinstance(overrides.get("image_size"), tuple) and len(overrides["image_size"]) != 2
    with pytest.raises(TypeError if wrong_type else ValueError) as error:
        TsfConfig(**overrides)
    message = str(error.value)
    assert field in message and repr(next(iter(overrides.values())))[:8] in message
    assert "must be" in message or "expected" in message


def test_config_type_checks_and_float_rates():
    assert TsfConfig(drop_path_rate=0.1).drop_path_rate == 0.1
    with pytest.raises(TypeError, match="num_frames"):
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
    state_dict, _, unknown = transformers_to_tsf_state_dict(reference.state_dict(), attention_type)
    assert not unknown
    model.load_state_dict(state_dict, strict=True)
    pixel_values = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(pixel_values, output_hidden_states=True)
        for implementation in ("eager", "sdpa"):
            model.set_attn_implementation(implementation)
            actual = model(pixel_values, output_hidden_states=True)
            # eager runs the same products in the same order: bit for bit; sdpa's fused kernel rounds differently
            tolerance = 0.0 if implementation == "eager" else 1e-6
            torch.testing.assert_close(actual.logits, expected.logits, atol=tolerance, rtol=0)
            assert len(actual.hidden_states) == len(expected.hidden_states) == 3
            for ours, theirs in zip(actual.hidden_states, expected.hidden_states):
                torch.testing.assert_close(ours, theirs, atol=tolerance if implementation == "eager" else 1e-6, rtol=0)
    assert expected.logits.abs().max() > 0.1  # not a trivially small output


# ------------------------------------------------------- the official schemes against a from-scratch reference


def reference_logits(model: TsfForVideoClassification, pixel_values: torch.Tensor) -> torch.Tensor:
    """The original network's semantics written out from the paper and the original code's documented behaviour,
    with plain tensor ops on the state dict: frames independent with their own cls (space-only, averaged over frames
    before the final norm), all tokens together (joint), or time then space with the shared cls averaged over frames
    and `temporal_fc` (divided). Position tables resized with nearest only when the token count differs."""
    state = model.state_dict()
    config = model.config
    attention_type = config.attention_type
    heads, width, patch = config.num_attention_heads, config.hidden_size, config.patch_size
    batch_size, num_frames, _, height, width_px = pixel_values.shape
    rows, cols = height // patch, width_px // patch
    num_patches = rows * cols

    def layer_norm(t, name):
        return F.layer_norm(t, (width,), state[name + ".weight"], state[name + ".bias"], eps=config.layer_norm_eps)

    def linear(t, name):
        return F.linear(t, state[name + ".weight"], state[name + ".bias"])

    def attention(t, name):  # t: (sequences, tokens, width)
        q, k, v = linear(t, name + ".qkv").view(*t.shape[:2], 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width // heads), -1)
        return linear((weights @ v).transpose(1, 2).reshape(t.shape), name + ".proj")

    # embeddings: per frame, (b t) order as in the original
    frames = pixel_values.flatten(0, 1)
    x = F.conv2d(frames, state["tsf.embeddings.patch_embeddings.projection.weight"],
                 state["tsf.embeddings.patch_embeddings.projection.bias"], stride=patch).flatten(2).transpose(1, 2)
    position = state["tsf.embeddings.position_embeddings"]
    if 1 + num_patches != position.shape[1]:
        side = int(math.isqrt(position.shape[1] - 1))
        table = position[:, 1:].transpose(1, 2).reshape(1, width, side, side)
        table = F.interpolate(table, size=(rows, cols), mode="nearest").flatten(2).transpose(1, 2)
        position = torch.cat([position[:, :1], table], 1)
    x = torch.cat([state["tsf.embeddings.cls_token"].expand(x.shape[0], -1, -1), x], 1) + position
    if attention_type != "space_only":
        cls = x[:batch_size, :1]
        time = state["tsf.embeddings.time_embeddings"]
        if num_frames != time.shape[1]:
            time = F.interpolate(time.transpose(1, 2), size=num_frames, mode="nearest").transpose(1, 2)
        patches = x[:, 1:].reshape(batch_size, num_frames, num_patches, width).transpose(1, 2) + time[:, None]
        x = torch.cat([cls, patches.reshape(batch_size, num_patches * num_frames, width)], 1)

    for i in range(config.num_hidden_layers):
        prefix = f"tsf.layers.{i}."
        if attention_type in ("space_only", "joint_space_time"):
            x = x + attention(layer_norm(x, prefix + "steps.0.norm"), prefix + "steps.0.attention")
        else:
            cls, patches = x[:, :1], x[:, 1:]
            temporal = patches.reshape(batch_size * num_patches, num_frames, width)
            temporal = attention(layer_norm(temporal, prefix + "steps.0.norm"), prefix + "steps.0.attention")
            patches = patches + linear(temporal.reshape(batch_size, -1, width), prefix + "steps.0.fc")
            spatial = patches.reshape(batch_size, num_patches, num_frames, width).transpose(1, 2)
            spatial = torch.cat([cls.expand(-1, num_frames, -1).reshape(-1, 1, width),
                                 spatial.reshape(-1, num_patches, width)], 1)
            spatial = attention(layer_norm(spatial, prefix + "steps.1.norm"), prefix + "steps.1.attention")
            cls_update = spatial[:, 0].reshape(batch_size, num_frames, width).mean(1, keepdim=True)
            patch_update = spatial[:, 1:].reshape(batch_size, num_frames, num_patches, width).transpose(1, 2)
            x = torch.cat([cls + cls_update, patches + patch_update.reshape(batch_size, -1, width)], 1)
        x = x + linear(F.gelu(linear(layer_norm(x, prefix + "norm"), prefix + "mlp.fc1")), prefix + "mlp.fc2")
    if attention_type == "space_only":
        x = x.view(batch_size, num_frames, *x.shape[1:]).mean(1)
    return linear(layer_norm(x, "tsf.layernorm")[:, 0], "classifier")


@pytest.mark.parametrize("attention_type", ["space_only", "joint_space_time", "divided_space_time"])
def test_official_schemes_match_the_reference_at_any_clip_shape(attention_type):
    """Frame counts and grids other than the tables' (resized tables), and the tables' own, batch of two."""
    model = randomise(TsfForVideoClassification(tiny_config(attention_type=attention_type)), std=0.2)
    for frames, height, width in [(4, 32, 32), (7, 24, 40), (1, 16, 24), (3, 48, 16), (6, 40, 40), (2, 16, 48)]:
        pixel_values = torch.randn(2, frames, 3, height, width)
        with torch.no_grad():
            actual, expected = model(pixel_values).logits, reference_logits(model, pixel_values)
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0, msg=f"{frames}x{height}x{width}")
    assert expected.abs().max() > 0.1


def test_space_only_averages_frames_before_final_norm():
    model = randomise(TsfForVideoClassification(tiny_config(attention_type="space_only")), std=0.3)
    pixel_values = torch.randn(2, 4, 3, 32, 32) * torch.tensor([0.1, 1.0, 3.0, 10.0])[:, None, None, None]
    with torch.no_grad():
        output = model(pixel_values, output_hidden_states=True)
        expected = reference_logits(model, pixel_values)
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
        for implementation in ("eager", "sdpa", "flex_attention", "tsf_chunked"):
            model.set_attn_implementation(implementation)
            with torch.no_grad():
                results[implementation] = model(pixel_values).logits
        assert torch.isfinite(results["eager"]).all()
        for implementation in ("sdpa", "flex_attention", "tsf_chunked"):
            torch.testing.assert_close(results[implementation], results["eager"], atol=1e-6, rtol=0)


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
        base, _ = step(hidden_states, grid)
        coordinates = grid_coordinates(*grid)
        for source in range(num_tokens):
            perturbed = hidden_states.clone()
            perturbed[0, 1 + source] += torch.randn(32, dtype=torch.float64)  # not a constant: LayerNorm hides those
            out, _ = step(perturbed, grid)
            changed = ((out - base)[0, 1:].abs().amax(-1) > 1e-13).tolist()
            expected = [
                target == source or expected_same_group(step_name, coordinates[source], coordinates[target], *grid)
                for target in range(num_tokens)
            ]
            assert changed == expected, (step_name, grid, coordinates[source])


def reference_step(step, hidden_states: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """One attention step computed group by group from the group definitions (no reshapes shared with the model):
    cls joins every group of steps that attend to it and gets the mean of its copies' updates; padding does not
    exist here, so uneven groups are simply smaller."""
    frames, rows, cols = grid
    heads, head_dim = step.attention.num_heads, step.attention.head_dim
    coordinates = grid_coordinates(frames, rows, cols)
    groups: dict = {}
    for index, coordinate in enumerate(coordinates):
        members = [i for i, other in enumerate(coordinates) if expected_same_group(step.name, coordinate, other, *grid)]
        groups.setdefault(tuple(members), None)
    output = hidden_states.clone()
    attends_cls = STEP_GROUPINGS[step.name].attends_cls
    for batch in range(hidden_states.shape[0]):
        cls_updates = []
        for members in groups:
            rows_in = [1 + member for member in members]
            sequence = hidden_states[batch, ([0] if attends_cls else []) + rows_in]
            q, k, v = step.attention.qkv(step.norm(sequence)).view(len(sequence), 3, heads, head_dim).permute(1, 2, 0, 3)
            attended = (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), -1) @ v).transpose(0, 1)
            update = step.attention.proj(attended.reshape(len(sequence), -1))
            if step.fc is not None:
                update = step.fc(update)
            if attends_cls:
                cls_updates.append(update[0])
                update = update[1:]
            output[batch, rows_in] = hidden_states[batch, rows_in] + update
        if attends_cls:
            output[batch, 0] = hidden_states[batch, 0] + torch.stack(cls_updates).mean(0)
    return output


@pytest.mark.parametrize("step_name", list(STEP_GROUPINGS))
@pytest.mark.parametrize("grid", [(4, 4, 4), (3, 5, 3), (2, 3, 5), (5, 1, 3)])
def test_each_step_matches_a_group_by_group_reference(step_name, grid):
    """Values, not only visibility: cls copies and their averaging, the extra fc, and odd sizes (masked padding in
    the model) against unpadded per-group attention, batch of two, float64."""
    config = TsfConfig(**{**TINY, "num_hidden_layers": 1}, attention_type=STEP_OF_SCHEME[step_name])
    layer = randomise(TsfModel(config), std=0.3).layers[0].double()
    step = next(step for step in layer.steps if step.name == step_name)
    hidden_states = torch.randn(2, 1 + grid[0] * grid[1] * grid[2], 32, dtype=torch.float64)
    with torch.no_grad():
        expected = reference_step(step, hidden_states, grid)
        for implementation in ("eager", "sdpa", "tsf_chunked"):
            config._attn_implementation = implementation
            actual, _ = step(hidden_states, grid)
            torch.testing.assert_close(actual, expected, atol=1e-10, rtol=0)
    if not STEP_GROUPINGS[step_name].attends_cls:
        assert torch.equal(actual[:, 0], hidden_states[:, 0])


@pytest.mark.parametrize("grid", [(3, 3, 5), (1, 1, 1), (5, 4, 4)])
def test_sparse_local_global_odd_grids_use_masked_padding(grid):
    """Odd frame counts, rows or columns pad the last half-block / parity group with masked tokens: every backend
    agrees and padded keys get exactly zero weight (values against unpadded groups: the group-by-group test)."""
    frames, rows, cols = grid
    model = randomise(TsfModel(TsfConfig(**TINY, attention_type="sparse_local_global")), std=0.1)
    pixel_values = torch.randn(1, frames, 3, rows * 8, cols * 8)
    outputs = {}
    for implementation in ("eager", "sdpa", "flex_attention", "tsf_chunked"):
        model.set_attn_implementation(implementation)
        with torch.no_grad():
            outputs[implementation] = model(pixel_values, output_attentions=implementation == "eager")
    for implementation in ("sdpa", "flex_attention", "tsf_chunked"):
        torch.testing.assert_close(outputs[implementation].last_hidden_state, outputs["eager"].last_hidden_state)
    weights = outputs["eager"].attentions[0]["global"]
    grouper = TokenGrouper(STEP_GROUPINGS["global"], *grid)
    real = grouper.key_padding_mask(1, torch.device("cpu"))
    assert (real is None) == (grid == (1, 1, 1))  # a single position per axis is not split, so not padded
    if real is not None:  # padded keys get exactly zero weight
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
    for name in plain:  # the recomputed forward is the same computation: gradients equal bit for bit
        assert torch.equal(checkpointed[name], plain[name]), name


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


def test_drop_path_drops_whole_groups_of_a_step_as_the_original():
    """The time step's residual is dropped per (video, patch) group before `temporal_fc`: a dropped group's tokens
    all receive exactly fc's bias, a kept group's tokens none of them."""
    config = TsfConfig(**{**TINY, "num_hidden_layers": 2}, drop_path_rate=0.5)
    layer = randomise(TsfModel(config), std=0.3).layers[1].train()
    step = layer.steps[0]
    hidden_states = torch.randn(2, 1 + 16 * 4, 32)
    torch.manual_seed(0)
    with torch.no_grad():
        output, _ = step(hidden_states, (4, 4, 4))
    got_bias_only = torch.isclose(output[:, 1:] - hidden_states[:, 1:], step.fc.bias, atol=1e-6).all(-1)
    per_group = got_bias_only.view(2, 16, 4)  # (video, patch, frame)
    assert torch.equal(per_group.all(-1), per_group.any(-1))  # all or none of a group's frames
    assert 0 < per_group.all(-1).sum() < 32


def test_patch_embedding_keeps_pytorchs_default_init():
    model = TsfModel(TsfConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64))
    weight = model.embeddings.patch_embeddings.projection.weight
    bound = 1 / math.sqrt(weight[0].numel())  # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound


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


def test_labels_must_be_a_tensor():
    model = TsfForVideoClassification(tiny_config())
    with pytest.raises(TypeError, match="labels must be a tensor"):
        model(torch.randn(2, 4, 3, 32, 32), labels=[0, 1])


def test_labels_with_wrong_batch_size_raise():
    model = TsfForVideoClassification(tiny_config())
    with pytest.raises(ValueError, match="labels has 3 rows for 2 videos"):
        model(torch.randn(2, 4, 3, 32, 32), labels=torch.tensor([0, 1, 2]))


def labelled_model(**overrides) -> TsfForVideoClassification:
    return TsfForVideoClassification(tiny_config(**{"num_labels": 4, **overrides})).eval()


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (torch.tensor([0.0, 1.0]), ValueError, r"shape \(2, 4\), got \(2,\).*class indices .* must be integers"),
        (torch.tensor([0, 4]), ValueError, r"labels\[1\] is 4, outside the 4 classes \[0, 3\]"),
        (torch.tensor([-1, 0]), ValueError, r"labels\[0\] is -1"),
        (torch.tensor([[0], [1]]), ValueError, r"shape \(2,\)"),
        (torch.tensor([True, False]), ValueError, "class indices .* must be integers"),
    ],
)
def test_bad_single_label_targets_raise_before_the_loss(labels, error, message):
    model = labelled_model()
    with pytest.raises(error, match=message):
        model(torch.randn(2, 4, 3, 32, 32), labels=labels)
    assert model.config.problem_type is None  # a malformed call leaves the problem type unset


def test_float_labels_do_not_switch_the_problem_type_for_good():
    model = labelled_model()
    pixel_values = torch.randn(2, 4, 3, 32, 32)
    with pytest.raises(ValueError, match=r"multi_label_classification must have shape \(2, 4\)"):
        model(pixel_values, labels=torch.tensor([1.0, 0.0]))
    with pytest.raises(TypeError, match=r"integer class indices of shape \(2,\), got dtype torch.float32"):
        labelled_model(problem_type="single_label_classification")(pixel_values, labels=torch.tensor([1.0, 0.0]))
    assert model.config.problem_type is None
    loss = model(pixel_values, labels=torch.tensor([1, 3])).loss  # correct labels still work
    assert torch.isfinite(loss) and model.config.problem_type == "single_label_classification"


def test_int32_and_ignored_labels_give_the_int64_loss():
    model = labelled_model()
    pixel_values = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values, labels=torch.tensor([1, 3, 2])).loss
        assert torch.equal(model(pixel_values, labels=torch.tensor([1, 3, 2], dtype=torch.int32)).loss, expected)
        logits = model(pixel_values).logits
        ignored = model(pixel_values, labels=torch.tensor([1, -100, 2])).loss
    torch.testing.assert_close(ignored, F.cross_entropy(logits[[0, 2]], torch.tensor([1, 2])), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.ones(2, 3), r"must have shape \(2, 4\)"),
        (torch.full((2, 4), 2.0), r"targets in \[0, 1\]"),
        (torch.full((2, 4), math.nan), "NaN or infinite"),
    ],
)
def test_bad_multi_label_targets_raise(labels, message):
    model = labelled_model(problem_type="multi_label_classification")
    with pytest.raises(ValueError, match=message):
        model(torch.randn(2, 4, 3, 32, 32), labels=labels)


def test_multi_hot_targets_use_the_multi_label_loss():
    model = labelled_model()
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    with torch.no_grad():
        output = model(torch.randn(2, 4, 3, 32, 32), labels=targets)
    torch.testing.assert_close(output.loss, F.binary_cross_entropy_with_logits(output.logits, targets), rtol=0, atol=1e-6)
    assert model.config.problem_type == "multi_label_classification"


def test_regression_labels_are_checked():
    model = labelled_model(num_labels=1)
    with pytest.raises(ValueError, match=r"regression must have shape \(2, 1\), got \(2, 1, 1\)"):
        model(torch.randn(2, 4, 3, 32, 32), labels=torch.ones(2, 1, 1))
    assert torch.isfinite(model(torch.randn(2, 4, 3, 32, 32), labels=torch.tensor([0.5, 1.5])).loss)


def test_input_on_another_device_names_both_devices():
    model = TsfModel(TsfConfig(**TINY))
    with pytest.raises(ValueError, match=r"pixel_values are on device meta but the model is on cpu"):
        model(torch.randn(1, 4, 3, 32, 32, device="meta"))
    with torch.device("meta"):
        meta_model = TsfModel(TsfConfig(**TINY))
    with pytest.raises(ValueError, match=r"device cpu but the model is on meta"):
        meta_model(torch.randn(1, 4, 3, 32, 32))
