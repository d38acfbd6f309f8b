"""The analytical MAC counter: the paper's figures, and agreement with torch's own count of the model's matmuls."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from conftest import TINY
from transformers import TimesformerForVideoClassification

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification
from tsf_hf.conversion import transformers_timesformer_config
from tsf_hf.flops import attention_step_groups, count_macs, main


def tiny_config(attention_type: str, **overrides) -> TsfConfig:
    return TsfConfig(**{**TINY, "attention_type": attention_type, "num_labels": 5, **overrides})


@pytest.mark.parametrize(
    "variant, gmacs, tflops_3_views",
    [("base", 195.8, 0.59), ("hr", 1702.7, 5.11), ("large", 2379.9, 7.14)],
)
def test_paper_costs_of_divided_attention(variant, gmacs, tflops_3_views):
    count = count_macs(TsfConfig.from_variant(variant), num_labels=400, per_group_qkv=True)
    assert round(count.total / 1e9, 1) == gmacs
    # the paper's "TFLOPs" column: multiply-accumulates summed over 3 views
    assert round(3 * count.total / 1e12, 2) == tflops_3_views


def test_breakdown_of_base_model():
    config = TsfConfig.from_variant("base")
    count, original = count_macs(config, num_labels=400), count_macs(config, num_labels=400, per_group_qkv=True)
    tokens = 196 * 8
    assert count.patch_embedding == original.patch_embedding == tokens * 3 * 16 * 16 * 768
    # temporal step: 196 groups of 8 patches; spatial step: 8 groups of cls + 196 patches
    assert count.attention == original.attention == 12 * (196 * 8 * 8 + 8 * 197 * 197) * 2 * 768
    # qkv once per token (cls once), or on each of the spatial step's 8 cls copies; proj always on the groups
    assert count.qkv == 12 * (tokens + 1 + tokens) * 768 * 3 * 768
    assert original.qkv == 12 * (tokens + 8 * 197) * 768 * 3 * 768
    assert count.proj == original.proj == original.qkv // 3
    assert count.fc == original.fc == 12 * tokens * 768 * 768
    assert count.mlp == original.mlp == 12 * (1 + tokens) * 2 * 768 * 3072
    assert count.head == 768 * 400
    assert count.flops == 2 * count.total
    assert count.as_dict()["total"] == count.total


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
@pytest.mark.parametrize("num_frames, height, width", [(4, 32, 32), (3, 40, 24), (1, 8, 16), (5, 24, 56)])
def test_count_equals_torch_flop_counter(attention_type, num_frames, height, width):
    """torch counts 2 FLOPs per MAC of every conv, linear and (eager) attention matmul the model runs; odd grids
    and frame counts exercise the padded groups of sparse local/global attention."""
    config = tiny_config(attention_type)
    model = TsfForVideoClassification(config).eval()
    model.set_attn_implementation("eager")
    batch_size = 2
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(batch_size, num_frames, 3, height, width))
    expected = count_macs(config, num_frames, (height, width))
    assert counter.get_total_flops() == batch_size * expected.flops


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_per_group_qkv_count_what_transformers_runs(attention_type):
    """transformers' port, like the original, normalises and projects (qkv) every group's copy of cls."""
    config = tiny_config(attention_type)
    model = TimesformerForVideoClassification(transformers_timesformer_config(config)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 4, 3, 32, 32))
    assert counter.get_total_flops() == 2 * count_macs(config, per_group_qkv=True).flops


def test_cropped_frames_are_counted_after_the_crop():
    config = tiny_config("divided_space_time", crop_to_patch_multiple=True)
    assert count_macs(config, 4, (37, 45)).total == count_macs(config, 4, (32, 40)).total
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        count_macs(tiny_config("divided_space_time"), 4, (37, 45))


def test_defaults_come_from_the_config():
    config = tiny_config("axial", num_frames=6, image_size=(16, 40))
    assert count_macs(config) == count_macs(config, 6, (16, 40), num_labels=5)
    assert count_macs(config, num_labels=0).head == 0


def test_sparse_groups_pad_odd_axes():
    local = attention_step_groups("local", num_frames=3, grid_height=5, grid_width=4)
    assert (local.tokens, local.num_groups, local.group_size) == (1 + 3 * 5 * 4, 4, 1 + 3 * 3 * 2)
    global_ = attention_step_groups("global", num_frames=3, grid_height=5, grid_width=1)
    assert (global_.tokens, global_.num_groups, global_.group_size) == (1 + 3 * 5, 4, 1 + 2 * 3 * 1)
    assert global_.grouped_tokens == 4 * 7


def test_rejects_bad_arguments():
    with pytest.raises(TypeError, match="TsfConfig"):
        count_macs({"hidden_size": 768})
    with pytest.raises(ValueError, match="num_frames"):
        count_macs(tiny_config("joint_space_time"), num_frames=0)
    with pytest.raises(ValueError, match="step must be one of"):
        attention_step_groups("diagonal", 4, 2, 2)


def test_command_line(capsys):
    main(["--variant", "hr", "--views", "3", "--per_group_qkv"])
    output = capsys.readouterr().out
    assert "1702.686 GMACs" in output and "5.108 TMACs" in output
    main(["--variant", "hr"])
    assert "1702.686 GMACs" not in capsys.readouterr().out
