"""Conversion of original checkpoints, transformers' Timesformer folders and ImageNet ViT weights."""

import argparse
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, VIDEO_PROCESSOR_FILES, perturb_, tiny_vit
from safetensors.torch import load_file, save_file
from transformers import TimesformerConfig, TimesformerForVideoClassification, ViTModel

from tsf_hf import TsfConfig, TsfForVideoClassification, TsfImageProcessor, TsfVideoProcessor
from tsf_hf import conversion
from tsf_hf.conversion import (
    UnsafeCheckpointError,
    VerificationError,
    build_processors,
    canonical_vit_state_dict,
    convert_imagenet_vit,
    convert_original_checkpoint,
    convert_transformers_timesformer,
    extract_state_dict,
    guess_dataset,
    load_checkpoint_file,
    load_label_names,
    read_label_file,
    resize_spatial_position_table,
    transformers_to_tsf_state_dict,
    tsf_to_transformers_state_dict,
)


REPO_ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_BLOCK_SHAPES = {"norm1": 1, "attn.qkv": 3, "attn.proj": 1, "norm2": 1, "mlp.fc1": 4, "mlp.fc2": 0}
DIVIDED_BLOCK_SHAPES = {"temporal_norm1": 1, "temporal_attn.qkv": 3, "temporal_attn.proj": 1, "temporal_fc": 1}


def original_state_dict(
    scheme: str,
    width: int = 32,
    depth: int = 2,
    patch: int = 8,
    grid: int = 4,
    frames: int = 4,
    classes: int = 5,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random weights in the original TimeSformer layout (no prefix); norms near 1 and every extra fc non-zero so
    that each parameter matters."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator) * 0.2

    state = {
        "cls_token": rand(1, 1, width),
        "pos_embed": rand(1, 1 + grid * grid, width),
        "patch_embed.proj.weight": rand(width, 3, patch, patch),
        "patch_embed.proj.bias": rand(width),
        "norm.weight": 1 + rand(width),
        "norm.bias": rand(width),
        "head.weight": rand(classes, width),
        "head.bias": rand(classes),
    }
    if scheme != "space_only":
        state["time_embed"] = rand(1, frames, width)
    names = dict(ORIGINAL_BLOCK_SHAPES, **(DIVIDED_BLOCK_SHAPES if scheme == "divided_space_time" else {}))
    for index in range(depth):
        for name, factor in names.items():
            rows = width * factor if factor else width
            prefix = f"blocks.{index}.{name}"
            if factor == 1 and "norm" in name:
                state[f"{prefix}.weight"] = 1 + rand(width)
            elif name == "mlp.fc2":
                state[f"{prefix}.weight"] = rand(width, 4 * width)
            else:
                state[f"{prefix}.weight"] = rand(rows, width)
            state[f"{prefix}.bias"] = rand(rows)
    return state


def save_original_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """The container of the released `.pyth` files: epoch, `model.`-prefixed model_state, optimizer state, cfg YAML."""
    checkpoint = {
        "epoch": 15,
        "model_state": {f"model.{key}": value for key, value in state.items()},
        "optimizer_state": {
            "state": {0: {"momentum_buffer": torch.zeros(3)}},
            "param_groups": [{"lr": 0.005, "momentum": 0.9, "nesterov": True, "params": [0]}],
        },
        "cfg": "TRAIN:\n  DATASET: kinetics\nMODEL:\n  MODEL_NAME: vit_base_patch16_224\n",
    }
    torch.save(checkpoint, path)
    return path


def random_video(frames: int, size: int, seed: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def layer_norm(x, state, name, eps=1e-6):
    return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps)


def space_only_reference(state: dict, video: torch.Tensor, heads: int) -> torch.Tensor:
    """Space-only TimeSformer written from the paper's description: each frame is a ViT sequence with its own cls;
    after the last block the per-frame states are averaged over frames, then the final norm and the head."""
    batch, frames = video.shape[:2]
    patch = state["patch_embed.proj.weight"].shape[-1]
    x = F.conv2d(video.flatten(0, 1), state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + state["pos_embed"]
    width = x.shape[-1]
    depth = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("blocks."))
    for index in range(depth):
        block = f"blocks.{index}"
        h = layer_norm(x, state, f"{block}.norm1")
        qkv = F.linear(h, state[f"{block}.attn.qkv.weight"], state[f"{block}.attn.qkv.bias"])
        q, k, v = qkv.view(*h.shape[:2], 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-1, -2) * (width // heads) ** -0.5).softmax(-1)
        attended = (weights @ v).transpose(1, 2).reshape(h.shape)
        x = x + F.linear(attended, state[f"{block}.attn.proj.weight"], state[f"{block}.attn.proj.bias"])
        h = layer_norm(x, state, f"{block}.norm2")
        h = F.gelu(F.linear(h, state[f"{block}.mlp.fc1.weight"], state[f"{block}.mlp.fc1.bias"]))
        x = x + F.linear(h, state[f"{block}.mlp.fc2.weight"], state[f"{block}.mlp.fc2.bias"])
    x = x.view(batch, frames, *x.shape[1:]).mean(1)
    return F.linear(layer_norm(x, state, "norm")[:, 0], state["head.weight"], state["head.bias"])


def transformers_reference(state: dict, scheme: str, frames: int, size: int, heads: int) -> torch.nn.Module:
    """transformers' Timesformer built independently of tsf_hf.conversion, with its own key names."""
    width = state["cls_token"].shape[-1]
    config = TimesformerConfig(
        image_size=size,
        patch_size=state["patch_embed.proj.weight"].shape[-1],
        num_frames=frames,
        hidden_size=width,
        num_hidden_layers=1 + max(int(key.split(".")[1]) for key in state if key.startswith("blocks.")),
        num_attention_heads=heads,
        intermediate_size=4 * width,
        attention_type=scheme,
        num_labels=state["head.weight"].shape[0],
        layer_norm_eps=1e-6,
    )
    names = {
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
    top = {
        "cls_token": "timesformer.embeddings.cls_token",
        "pos_embed": "timesformer.embeddings.position_embeddings",
        "time_embed": "timesformer.embeddings.time_embeddings",
        "patch_embed.proj": "timesformer.embeddings.patch_embeddings.projection",
        "norm": "timesformer.layernorm",
        "head": "classifier",
    }
    renamed = {}
    for key, value in state.items():
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            name, kind = rest.rsplit(".", 1)
            renamed[f"timesformer.encoder.layer.{index}.{names[name]}.{kind}"] = value
        else:
            name, _, kind = key.rpartition(".") if key.endswith((".weight", ".bias")) else (key, "", "")
            renamed[top[name] + (f".{kind}" if kind else "")] = value
    model = TimesformerForVideoClassification(config)
    model.load_state_dict(renamed, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------------
# Label data


def test_shipped_label_names_have_the_released_ids():
    k400, k600, ssv2 = load_label_names("k400"), load_label_names("k600"), load_label_names("ssv2")
    assert (len(k400), len(k600), len(ssv2)) == (400, 600, 174)
    for names in (k400, k600, ssv2):
        assert sorted(names) == list(range(len(names)))
        assert len(set(names.values())) == len(names)
    # Kinetics ids are the alphabetical order of the class names; Something-Something-v2 follows labels.json
    assert list(k400.values()) == sorted(k400.values())
    assert list(k600.values()) == sorted(k600.values())
    assert k400[0] == "abseiling" and k400[115] == "eating ice cream" and k400[290] == "sharpening knives"
    assert k400[399] == "zumba" and k600[599] == "zumba"
    # Kinetics-600 keeps 368 of the Kinetics-400 classes unchanged
    assert len(set(k400.values()) & set(k600.values())) == 368
    assert ssv2[0] == "Approaching something with your camera"
    assert ssv2[16] == "Holding something"
    assert ssv2[135] == "Something falling like a rock"
    assert ssv2[151] == "Throwing something"
    assert ssv2[173] == "Wiping something off of something"
    with pytest.raises(ValueError, match="howto100m"):
        load_label_names("howto100m")


@pytest.mark.parametrize(
    "file_name, content",
    [
        ("labels.json", json.dumps(["a", "b", "c"])),
        ("labels.json", json.dumps({"0": "a", "1": "b", "2": "c"})),
        ("labels.json", json.dumps({"a": "0", "b": "1", "c": "2"})),
        ("labels.txt", "a\nb\n\nc\n"),
    ],
)
def test_read_label_file_formats(tmp_path, file_name, content):
    path = tmp_path / file_name
    path.write_text(content)
    assert read_label_file(path, 3) == {0: "a", 1: "b", 2: "c"}


def test_read_label_file_rejects_wrong_count(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("a\nb\n")
    with pytest.raises(ValueError, match="classes 0..2"):
        read_label_file(path, 3)


def test_guess_dataset_from_name_and_head():
    assert guess_dataset("TimeSformer_divST_8x32_224_K400.pyth", 400) == "k400"
    assert guess_dataset("TimeSformer_divST_16x16_448_K600.pyth", 600) == "k600"
    assert guess_dataset("TimeSformer_divST_64_224_SSv2.pyth", 174) == "ssv2"
    assert guess_dataset("TimeSformer_divST_32x32_224_HowTo100M.pyth", 1059) == "howto100m"
    assert guess_dataset("checkpoint_epoch_00015.pyth", 174) == "ssv2"
    assert guess_dataset("my_K400_finetune.pyth", 12) is None  # name says K400 but the head disagrees
    assert guess_dataset("checkpoint_epoch_00015.pyth", 12) is None


# ---------------------------------------------------------------------------------------------------------------------
# Reading checkpoints


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {"epoch": 1, "model_state": {f"model.{k}": v for k, v in s.items()}},
        lambda s: {"model": s},
        lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
        lambda s: {f"module.model.{k}": v for k, v in s.items()},
        lambda s: dict(s),
    ],
    ids=["model_state", "model", "state_dict+module", "bare+module.model", "bare"],
)
def test_extract_state_dict_containers(wrap):
    state = original_state_dict("joint_space_time", depth=1)
    extracted = extract_state_dict(wrap(state))
    assert extracted.keys() == state.keys()
    assert all(extracted[key] is state[key] for key in state)


def test_extract_state_dict_without_weights():
    with pytest.raises(ValueError, match="could not find model weights"):
        extract_state_dict({"epoch": 3, "cfg": "x"})


class _CreatesFileWhenUnpickled:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "created_by_pickle"
    path = tmp_path / "evil.pyth"
    state = original_state_dict("joint_space_time", depth=1)
    torch.save({"model_state": state, "payload": _CreatesFileWhenUnpickled(marker)}, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match="allow_unsafe_pickle"):
        convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=4)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_unsafe_pickle_opt_in(tmp_path):
    path = tmp_path / "with_namespace.pyth"
    state = original_state_dict("joint_space_time", depth=1)
    torch.save({"model_state": state, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_file(path)
    loaded = load_checkpoint_file(path, allow_unsafe_pickle=True)
    assert loaded["args"].lr == 0.1


def test_truncated_and_foreign_files(tmp_path):
    path = save_original_checkpoint(tmp_path / "full.pyth", original_state_dict("joint_space_time", depth=1))
    truncated = tmp_path / "truncated.pyth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or not a checkpoint"):
        load_checkpoint_file(truncated)
    text = tmp_path / "notes.pyth"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint|truncated or not a checkpoint"):
        load_checkpoint_file(text)
    with pytest.raises(FileNotFoundError):
        load_checkpoint_file(tmp_path / "missing.pyth")
    with pytest.raises(ValueError, match="not a TimeSformer checkpoint"):
        torch.save({"model_state": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "other.pyth")
        convert_original_checkpoint(tmp_path / "other.pyth")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda s: s.pop("blocks.1.norm2.weight"),
            r"missing keys.*blocks.1.norm2.weight \(-> tsf.layers.1.norm.weight\)",
        ),
        (lambda s: s.__setitem__("blocks.0.extra.weight", torch.zeros(2)), "unexpected keys.*blocks.0.extra.weight"),
        (
            lambda s: s.__setitem__("blocks.1.mlp.fc1.weight", torch.zeros(64, 32)),
            "mis-shaped.*blocks.1.mlp.fc1.weight",
        ),
    ],
    ids=["missing", "unexpected", "mis-shaped"],
)
def test_strict_loading_names_bad_keys(tmp_path, edit, expected):
    state = original_state_dict("divided_space_time")
    edit(state)
    path = save_original_checkpoint(tmp_path / "bad.pyth", state)
    with pytest.raises(ValueError, match=expected):
        convert_original_checkpoint(path, num_attention_heads=4)


# ---------------------------------------------------------------------------------------------------------------------
# Original checkpoints


@pytest.mark.parametrize("scheme", ["divided_space_time", "joint_space_time", "space_only"])
def test_original_checkpoint_matches_independent_reference(tmp_path, scheme):
    state = original_state_dict(scheme)
    path = save_original_checkpoint(tmp_path / "checkpoint_epoch_00015.pyth", state)
    result = convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=4, verify=True, tolerance=1e-5)
    assert result.max_abs_difference <= 1e-5
    model = TsfForVideoClassification.from_pretrained(tmp_path / "out").eval()
    assert model.config.attention_type == scheme
    assert model.config.id2label == {i: f"LABEL_{i}" for i in range(5)}
    video = random_video(4, 32)
    with torch.no_grad():
        logits = model(video).logits
        if scheme == "space_only":
            expected = space_only_reference(state, video, heads=4)
        else:
            expected = transformers_reference(state, scheme, 4, 32, heads=4)(video).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def _reference_logits(state: dict, scheme: str, video: torch.Tensor, heads: int) -> torch.Tensor:
    if scheme == "space_only":
        return space_only_reference(state, video, heads=heads)
    frames, size = video.shape[1], video.shape[-1]
    return transformers_reference(state, scheme, frames, size, heads=heads)(video).logits


# HR: a 785-row spatial table (448 px, patch 16). Joint attends over every token of the clip, so it keeps 2 frames
# (2 x 784 tokens); space-only has no temporal table (its frames are independent 785-token sequences).
HR_CASES = [("divided_space_time", 16, 16), ("joint_space_time", 8, 2), ("space_only", 8, 2)]


@pytest.mark.parametrize("scheme, width, frames", HR_CASES, ids=[case[0] for case in HR_CASES])
def test_original_hr_checkpoint(tmp_path, scheme, width, frames):
    """HR shape: 448 px, patch 16 -> 28x28 grid, 785-row spatial table; Kinetics-400 head."""
    state = original_state_dict(scheme, width=width, depth=1, patch=16, grid=28, frames=frames, classes=400)
    assert state["pos_embed"].shape[1] == 785
    path = save_original_checkpoint(tmp_path / "TimeSformer_divST_16x16_448_K400.pyth", state)
    result = convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=2, verify=True, tolerance=1e-5)
    config = result.model.config
    assert (config.attention_type, config.image_size, config.patch_size) == (scheme, 448, 16)
    assert result.dataset == "k400" and config.id2label[290] == "sharpening knives"
    video = random_video(frames, 448)
    with torch.no_grad():
        expected = _reference_logits(state, scheme, video, heads=2)
        torch.testing.assert_close(result.model(video).logits, expected, atol=1e-5, rtol=0)
    if scheme != "divided_space_time":
        return
    assert config.num_frames == 16
    processor = TsfVideoProcessor.from_pretrained(tmp_path / "out")
    assert (processor.num_frames, processor.sampling_strategy, processor.sampling_rate) == (16, "dense", 16)
    assert processor.clip_alignment == "start"
    assert processor.crop_size == {"height": 448, "width": 448} and processor.size == {"shortest_edge": 448}
    assert processor.num_spatial_crops == 3 and tuple(processor.train_short_side_range) == (448, 512)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "Kinetics-400" in card and "79.7 / 94.4" in card
    assert 'clip_alignment="start"' in card and 'clip_alignment="center"' in card


# L: 96 frames (a 96-row temporal table for divided and joint). Joint attends over all 96 x N tokens, so it keeps a
# 2x2 grid; space-only has no temporal table: its 96 frames are averaged after the last block.
LONG_RANGE_CASES = [("divided_space_time", 14), ("joint_space_time", 2), ("space_only", 2)]


@pytest.mark.parametrize("scheme, grid", LONG_RANGE_CASES, ids=[case[0] for case in LONG_RANGE_CASES])
def test_original_long_range_checkpoint(tmp_path, scheme, grid):
    """L shape: 96 frames; Kinetics-600 head."""
    state = original_state_dict(scheme, width=16, depth=1, patch=16, grid=grid, frames=96, classes=600)
    if scheme != "space_only":
        assert state["time_embed"].shape[1] == 96
    path = save_original_checkpoint(tmp_path / "TimeSformer_divST_96x4_224_K600.pyth", state)
    result = convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=2, verify=True, tolerance=1e-5)
    assert result.model.config.attention_type == scheme and result.dataset == "k600"
    video = random_video(96, 16 * grid)
    with torch.no_grad():
        expected = _reference_logits(state, scheme, video, heads=2)
        torch.testing.assert_close(result.model(video).logits, expected, atol=1e-5, rtol=0)
    if scheme != "divided_space_time":
        return
    assert result.model.config.num_frames == 96
    processor = TsfVideoProcessor.from_pretrained(tmp_path / "out")
    assert (processor.num_frames, processor.sampling_rate, processor.clip_alignment) == (96, 4, "start")
    assert "82.2 / 95.6" in (tmp_path / "out" / "README.md").read_text()


def test_original_ssv2_checkpoint_folder(tmp_path):
    state = original_state_dict("divided_space_time", width=16, depth=1, patch=16, grid=14, frames=8, classes=174)
    path = save_original_checkpoint(tmp_path / "TimeSformer_divST_8_224_SSv2.pyth", state)
    result = convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=2)
    out = tmp_path / "out"
    assert result.dataset == "ssv2"
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"]["135"] == "Something falling like a rock"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_tsf.TsfConfig",
        "AutoModel": "modeling_tsf.TsfModel",
        "AutoModelForVideoClassification": "modeling_tsf.TsfForVideoClassification",
    }
    expected_files = {
        "README.md",
        "config.json",
        "model.safetensors",
        "video_preprocessor_config.json",
        "preprocessor_config.json",
        "configuration_tsf.py",
        "modeling_tsf.py",
        "image_processing_tsf.py",
    } | VIDEO_PROCESSOR_FILES
    assert expected_files <= {p.name for p in out.iterdir()}
    for processor in (TsfVideoProcessor.from_pretrained(out), TsfImageProcessor.from_pretrained(out)):
        assert processor.sampling_strategy == "segment" and processor.channel_order == "bgr"
        assert processor.train_flip is False and processor.num_frames == 8
        assert list(processor.image_mean) == [0.45] * 3 and list(processor.image_std) == [0.225] * 3
    card = (out / "README.md").read_text()
    assert "Something-Something-v2" in card and "59.5" in card and "trust_remote_code=True" in card


def test_howto100m_and_unknown_dataset_processors():
    config = TsfConfig(num_frames=32, image_size=224)
    video, image = build_processors(config, "howto100m", None)
    assert (video.sampling_strategy, video.sampling_rate, video.num_temporal_clips) == ("dense", 32, 12)
    assert image.num_temporal_clips == 12
    # the original evaluation's clip placement (evenly spaced starts from frame 0), not the processor's default
    assert video.clip_alignment == image.clip_alignment == "start"
    assert TsfVideoProcessor().clip_alignment == "center"
    video, _ = build_processors(config, None, None)
    assert (video.sampling_strategy, video.num_spatial_crops, video.channel_order) == ("uniform", 1, "rgb")
    assert video.clip_alignment == "center"


def test_label_file_and_explicit_dataset(tmp_path):
    state = original_state_dict("joint_space_time", depth=1, classes=3)
    path = save_original_checkpoint(tmp_path / "finetuned.pyth", state)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    result = convert_original_checkpoint(path, num_attention_heads=4, label_file=labels)
    assert result.model.config.id2label == {0: "cat", 1: "dog", 2: "bird"}
    assert result.model.config.label2id["dog"] == 1
    with pytest.raises(ValueError, match="'k400' has 400 classes"):
        convert_original_checkpoint(path, num_attention_heads=4, dataset="k400")


def test_verification_failure_writes_nothing(tmp_path, monkeypatch):
    path = save_original_checkpoint(tmp_path / "c.pyth", original_state_dict("divided_space_time", depth=1))
    real = conversion.transformers_timesformer_logits
    monkeypatch.setattr(conversion, "transformers_timesformer_logits", lambda *args: real(*args) + 1e-3)
    with pytest.raises(VerificationError, match="tolerance 1.0e-04"):
        convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=4, verify=True)
    assert not (tmp_path / "out").exists()


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "conversion" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_original_conversion_script(tmp_path, capsys):
    script = _load_script("convert_original_checkpoint")
    path = save_original_checkpoint(tmp_path / "c.pyth", original_state_dict("divided_space_time", depth=1))
    argv = ["--checkpoint_path", str(path), "--output_dir", str(tmp_path / "out"), "--num_attention_heads", "4"]
    assert script.main(argv + ["--verify", "--tolerance", "1e-5"]) == 0
    assert "max |logit difference|" in capsys.readouterr().out
    assert (tmp_path / "out" / "model.safetensors").is_file()
    evil = tmp_path / "evil.pyth"
    torch.save({"model_state": {}, "payload": _CreatesFileWhenUnpickled(tmp_path / "marker")}, evil)
    assert script.main(["--checkpoint_path", str(evil), "--output_dir", str(tmp_path / "out2")]) == 1
    assert "--allow_unsafe_pickle" in capsys.readouterr().err
    assert not (tmp_path / "marker").exists()


# ---------------------------------------------------------------------------------------------------------------------
# transformers' Timesformer folders


@pytest.mark.parametrize("scheme", ["divided_space_time", "joint_space_time"])
def test_transformers_folder_conversion(tmp_path, scheme):
    config = TimesformerConfig(
        **TINY,
        attention_type=scheme,
        id2label={0: "left", 1: "right", 2: "up"},
        label2id={"left": 0, "right": 1, "up": 2},
    )
    torch.manual_seed(0)
    source = perturb_(TimesformerForVideoClassification(config))
    folder = tmp_path / "timesformer-tiny-finetuned-k400"
    source.save_pretrained(folder)
    script = _load_script("convert_transformers_timesformer")
    assert script.main(["--model_path", str(folder), "--output_dir", str(tmp_path / "out"), "--verify"]) == 0
    model = TsfForVideoClassification.from_pretrained(tmp_path / "out", attn_implementation="eager").eval()
    assert model.config.id2label == {0: "left", 1: "right", 2: "up"}
    video = random_video(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(video).logits, source(video).logits, atol=1e-6, rtol=0)


def _timesformer_folder(folder: Path, scheme: str = "divided_space_time") -> TimesformerForVideoClassification:
    config = TimesformerConfig(**{**TINY, "num_hidden_layers": 1}, attention_type=scheme, num_labels=3)
    torch.manual_seed(0)
    source = perturb_(TimesformerForVideoClassification(config))
    source.save_pretrained(folder)
    return source


def _edit_safetensors(path: Path, edit) -> None:
    weights = load_file(path)
    edit(weights)
    save_file(weights, path)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda w: w.pop("timesformer.encoder.layer.0.temporal_dense.weight"),
            r"missing keys.*timesformer.encoder.layer.0.temporal_dense.weight",
        ),
        (lambda w: w.pop("classifier.bias"), r"missing keys.*classifier.bias"),
        (
            lambda w: w.__setitem__("timesformer.encoder.layer.0.bogus.weight", torch.zeros(2)),
            r"unexpected keys.*timesformer.encoder.layer.0.bogus.weight",
        ),
        (
            lambda w: w.__setitem__("timesformer.embeddings.time_embeddings", torch.zeros(1, 8, 32)),
            r"mis-shaped keys.*timesformer.embeddings.time_embeddings: checkpoint \(1, 8, 32\), model \(1, 4, 32\)",
        ),
    ],
    ids=["missing-temporal-dense", "missing-classifier", "unexpected", "mis-shaped"],
)
def test_transformers_folder_is_loaded_strictly(tmp_path, edit, expected):
    folder = tmp_path / "timesformer"
    _timesformer_folder(folder)
    _edit_safetensors(folder / "model.safetensors", edit)
    with pytest.raises(ValueError, match=expected):
        convert_transformers_timesformer(folder, tmp_path / "out", verify=True)
    assert not (tmp_path / "out").exists()
    script = _load_script("convert_transformers_timesformer")
    assert script.main(["--model_path", str(folder), "--output_dir", str(tmp_path / "out"), "--verify"]) == 1


def test_transformers_folder_bin_and_sharded(tmp_path):
    folder = tmp_path / "timesformer"
    source = _timesformer_folder(folder)
    video = random_video(4, 32)
    with torch.no_grad():
        expected = source(video).logits
    # pytorch_model.bin, read with weights_only: a pickle payload in it is refused without running
    (folder / "model.safetensors").unlink()
    torch.save(source.state_dict(), folder / "pytorch_model.bin")
    result = convert_transformers_timesformer(folder, verify=True, tolerance=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(result.model(video).logits, expected, atol=1e-6, rtol=0)
    marker = tmp_path / "created_by_pickle"
    torch.save({**source.state_dict(), "payload": _CreatesFileWhenUnpickled(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError):
        convert_transformers_timesformer(folder)
    assert not marker.exists()
    # sharded safetensors with an index
    (folder / "pytorch_model.bin").unlink()
    sharded = tmp_path / "sharded"
    source.save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    result = convert_transformers_timesformer(sharded, verify=True, tolerance=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(result.model(video).logits, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("scheme", ["divided_space_time", "joint_space_time", "space_only"])
def test_tsf_to_transformers_state_dict_round_trip(scheme):
    config = TsfConfig(**TINY, attention_type=scheme, num_labels=3)
    torch.manual_seed(0)
    model = perturb_(TsfForVideoClassification(config))
    state = model.state_dict()
    converted = tsf_to_transformers_state_dict(state, scheme)
    reference = TimesformerForVideoClassification(TimesformerConfig(**TINY, attention_type=scheme, num_labels=3)).eval()
    reference.load_state_dict(converted, strict=True)
    back, sources, unknown = transformers_to_tsf_state_dict(converted, scheme)
    assert unknown == [] and back.keys() == state.keys()
    assert all(back[key] is state[key] for key in state)
    assert sources["tsf.layers.1.steps.0.attention.qkv.weight"] in converted
    video = random_video(4, 32)
    with torch.no_grad():  # space-only: transformers' per-frame states averaged, as the original does
        expected = conversion.transformers_timesformer_logits(reference, video)
        torch.testing.assert_close(model(video).logits, expected, atol=1e-5, rtol=0)
    if scheme == "divided_space_time":
        assert converted["timesformer.encoder.layer.0.temporal_dense.weight"] is state["tsf.layers.0.steps.0.fc.weight"]
    with pytest.raises(ValueError, match="tsf.layers.0.extra.weight"):
        tsf_to_transformers_state_dict({**state, "tsf.layers.0.extra.weight": torch.zeros(1)}, scheme)


def test_tsf_to_transformers_refuses_schemes_transformers_lacks():
    with pytest.raises(ValueError, match="'axial'"):
        tsf_to_transformers_state_dict({}, "axial")


# ---------------------------------------------------------------------------------------------------------------------
# ImageNet ViT initialisation


def _timm_layout(vit: ViTModel) -> dict[str, torch.Tensor]:
    """The ViT's weights under timm's names, written independently of tsf_hf.conversion."""
    state = vit.state_dict()
    timm = {
        "cls_token": state["embeddings.cls_token"],
        "pos_embed": state["embeddings.position_embeddings"],
        "patch_embed.proj.weight": state["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": state["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": state["layernorm.weight"],
        "norm.bias": state["layernorm.bias"],
        "head.weight": torch.zeros(1000, 32),
        "head.bias": torch.zeros(1000),
    }
    for index in range(vit.config.num_hidden_layers):
        layer = f"layers.{index}."
        for kind in ("weight", "bias"):
            block = f"blocks.{index}."
            timm[f"{block}attn.qkv.{kind}"] = torch.cat(
                [state[f"{layer}attention.{p}_proj.{kind}"] for p in ("q", "k", "v")]
            )
            timm[f"{block}attn.proj.{kind}"] = state[f"{layer}attention.o_proj.{kind}"]
            timm[f"{block}norm1.{kind}"] = state[f"{layer}layernorm_before.{kind}"]
            timm[f"{block}norm2.{kind}"] = state[f"{layer}layernorm_after.{kind}"]
            timm[f"{block}mlp.fc1.{kind}"] = state[f"{layer}mlp.fc1.{kind}"]
            timm[f"{block}mlp.fc2.{kind}"] = state[f"{layer}mlp.fc2.{kind}"]
    return timm


@pytest.mark.parametrize("layout", ["timm", "transformers"])
def test_vit_init_divided_equals_vit_on_static_video(tmp_path, layout):
    vit = tiny_vit(layer_norm_eps=1e-12 if layout == "transformers" else 1e-6)
    if layout == "timm":
        source = tmp_path / "vit_base_patch16_224.pth"
        torch.save(_timm_layout(vit), source)
        kwargs = {"num_attention_heads": 4}
    else:
        source = tmp_path / "vit"
        vit.save_pretrained(source)
        kwargs = {}
    result = convert_imagenet_vit(
        source, tmp_path / "out", num_frames=4, image_size=32, num_labels=3, verify=True, tolerance=1e-5, **kwargs
    )
    model = result.model
    assert result.max_abs_difference <= 1e-5 and result.verification_skipped is None
    assert model.config.layer_norm_eps == vit.config.layer_norm_eps
    frame = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    static = frame.unsqueeze(1).expand(1, 4, 3, 32, 32)
    moving = random_video(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            model.tsf(static).pooler_output, vit(frame).last_hidden_state[:, 0], atol=1e-5, rtol=0
        )
        # first block, moving video: every patch token equals the per-frame ViT's (token 1 + n*T + t)
        ours = model.tsf(moving, output_hidden_states=True).hidden_states[1][:, 1:]
        theirs = vit(moving[0], output_hidden_states=True).hidden_states[1][:, 1:]
        torch.testing.assert_close(ours.view(16, 4, 32).transpose(0, 1), theirs, atol=1e-5, rtol=0)
    reloaded = TsfForVideoClassification.from_pretrained(tmp_path / "out")
    assert reloaded.config.num_labels == 3


def test_vit_init_space_only_equals_frame_averaged_vit(tmp_path):
    vit = tiny_vit()
    source = tmp_path / "vit.pth"
    torch.save({"model": _timm_layout(vit)}, source)
    model = convert_imagenet_vit(
        source, num_frames=4, image_size=32, attention_type="space_only", num_attention_heads=4, num_labels=3
    ).model
    video = random_video(4, 32)
    with torch.no_grad():
        hidden = vit(video[0], output_hidden_states=True).hidden_states[-1]  # (T, 1+N, D), before the final norm
        expected = vit.layernorm(hidden.mean(0, keepdim=True))
        logits = model(video).logits
        torch.testing.assert_close(model.tsf(video).pooler_output, expected[:, 0], atol=1e-5, rtol=0)
        torch.testing.assert_close(logits, model.classifier(expected[:, 0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("scheme", ["divided_space_time", "sparse_local_global", "axial", "joint_space_time"])
def test_vit_init_copies_spatial_attention_into_every_step(scheme):
    vit_state = _timm_layout(tiny_vit())
    model = conversion.init_from_imagenet_vit(
        canonical_vit_state_dict(vit_state), num_frames=6, image_size=32, attention_type=scheme, num_attention_heads=4
    )
    state = model.state_dict()
    torch.testing.assert_close(state.get("tsf.embeddings.time_embeddings"), torch.zeros(1, 6, 32))
    for index in range(2):
        steps = model.tsf.layers[index].steps
        for step_index, step in enumerate(steps):
            torch.testing.assert_close(step.attention.qkv.weight, vit_state[f"blocks.{index}.attn.qkv.weight"])
            torch.testing.assert_close(step.attention.proj.bias, vit_state[f"blocks.{index}.attn.proj.bias"])
            torch.testing.assert_close(step.norm.weight, vit_state[f"blocks.{index}.norm1.weight"])
            if step_index < len(steps) - 1:
                assert step.fc.weight.abs().max() == 0 and step.fc.bias.abs().max() == 0
    assert model.config.num_labels == 400


def test_position_table_resize_2d_and_legacy():
    # a 2x2 grid whose rows hold (row, col): a 2-D resize keeps the layout, the legacy 1-D resize does not
    rows_cols = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    table = torch.cat([torch.full((1, 2), -1.0), rows_cols]).unsqueeze(0)  # (1, 1 + 4, 2)
    resized = resize_spatial_position_table(table, (4, 4), mode="nearest")
    assert resized.shape == (1, 17, 2) and resized[0, 0].tolist() == [-1.0, -1.0]
    grid = resized[0, 1:].view(4, 4, 2)
    assert grid[..., 0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert grid[..., 1].tolist() == [[0, 0, 1, 1]] * 4
    legacy = resize_spatial_position_table(table, (4, 4), mode="legacy")[0, 1:]
    expected = F.interpolate(rows_cols.T.unsqueeze(0), size=16, mode="nearest")[0].T
    torch.testing.assert_close(legacy, expected)
    assert not torch.equal(legacy, resized[0, 1:])
    smooth = resize_spatial_position_table(table, (3, 5), mode="bicubic")
    assert smooth.shape == (1, 16, 2)
    with pytest.raises(ValueError, match="legacy"):
        resize_spatial_position_table(table, (4, 4), mode="area")


def test_vit_init_at_another_resolution_and_script(tmp_path, capsys):
    vit = tiny_vit()
    source = tmp_path / "vit.pth"
    torch.save(_timm_layout(vit), source)
    script = _load_script("convert_imagenet_vit")
    argv = ["--vit_path", str(source), "--output_dir", str(tmp_path / "out"), "--num_frames", "2"]
    argv += ["--image_size", "64", "--num_attention_heads", "4", "--dataset", "k400"]
    assert script.main(argv) == 0
    model = TsfForVideoClassification.from_pretrained(tmp_path / "out")
    assert model.tsf.embeddings.position_embeddings.shape == (1, 1 + 64, 32)
    assert model.config.id2label[0] == "abseiling"
    processor = TsfVideoProcessor.from_pretrained(tmp_path / "out")
    assert (processor.num_frames, processor.crop_size["height"], processor.sampling_strategy) == (2, 64, "dense")
    expected = resize_spatial_position_table(vit.state_dict()["embeddings.position_embeddings"], (8, 8), "bicubic")
    torch.testing.assert_close(model.tsf.embeddings.position_embeddings.data, expected)
    assert math.isclose(model.config.layer_norm_eps, 1e-6)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda w: w.pop("encoder.layer.1.layernorm_after.bias"), r"missing keys.*blocks.1.norm2.bias"),
        (
            lambda w: w.pop("encoder.layer.0.attention.attention.key.weight"),
            r"block 0 has some of the query/key/value weights but lacks \['key'\]",
        ),
        (
            lambda w: w.__setitem__("encoder.layer.0.attention.attention.bogus.weight", torch.zeros(2)),
            r"unexpected keys.*encoder.layer.0.attention.attention.bogus.weight",
        ),
        (
            lambda w: w.__setitem__("embeddings.position_embeddings", torch.zeros(1, 10, 32)),
            r"mis-shaped keys.*pos_embed: checkpoint \(1, 10, 32\), model \(1, 17, 32\)",
        ),
        (
            lambda w: w.__setitem__("encoder.layer.1.intermediate.dense.weight", torch.zeros(48, 32)),
            r"mis-shaped keys.*blocks.1.mlp.fc1.weight: checkpoint \(48, 32\), model \(64, 32\)",
        ),
    ],
    ids=["missing", "missing-key-projection", "unexpected", "mis-shaped-table", "mis-shaped-mlp"],
)
def test_vit_folder_is_loaded_strictly(tmp_path, edit, expected):
    folder = tmp_path / "vit"
    tiny_vit().save_pretrained(folder)
    _edit_safetensors(folder / "model.safetensors", edit)
    with pytest.raises(ValueError, match=expected):
        convert_imagenet_vit(folder, tmp_path / "out", num_frames=4, image_size=32, num_labels=3)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda w: w.pop("blocks.1.norm2.bias"), r"missing keys.*blocks.1.norm2.bias"),
        (lambda w: w.pop("blocks.0.attn.qkv.bias"), r"missing keys.*blocks.0.attn.qkv.bias"),
        (
            lambda w: w.__setitem__("blocks.1.attn.proj.weight", torch.zeros(32, 16)),
            r"mis-shaped keys.*blocks.1.attn.proj.weight: checkpoint \(32, 16\), model \(32, 32\)",
        ),
    ],
    ids=["missing", "missing-bias", "mis-shaped"],
)
def test_vit_file_is_loaded_strictly(tmp_path, edit, expected):
    state = _timm_layout(tiny_vit())
    edit(state)
    torch.save(state, tmp_path / "vit.pth")
    with pytest.raises(ValueError, match=expected):
        conversion.load_imagenet_vit(tmp_path / "vit.pth")


@pytest.mark.parametrize(
    "attention_type, image_size, reason",
    [
        ("joint_space_time", 32, "joint_space_time model has no exact ViT reference"),
        ("sparse_local_global", 32, "sparse_local_global model has no exact ViT reference"),
        ("axial", 32, "axial model has no exact ViT reference"),
        ("divided_space_time", 64, "64x64 frames differ from the ViT's grid"),
        ("space_only", 48, "48x48 frames differ from the ViT's grid"),
    ],
)
def test_vit_verification_skipped_without_exact_reference(tmp_path, capsys, attention_type, image_size, reason):
    source = tmp_path / "vit.pth"
    torch.save(_timm_layout(tiny_vit()), source)
    script = _load_script("convert_imagenet_vit")
    argv = ["--vit_path", str(source), "--output_dir", str(tmp_path / "out"), "--num_frames", "4", "--verify"]
    argv += ["--image_size", str(image_size), "--attention_type", attention_type, "--num_attention_heads", "4"]
    assert script.main(argv) == 0
    output = capsys.readouterr().out
    assert "verification skipped" in output and reason in output and "max |difference|" not in output
    assert (tmp_path / "out" / "model.safetensors").is_file()
    result = convert_imagenet_vit(
        source, num_frames=4, image_size=image_size, attention_type=attention_type, num_attention_heads=4, verify=True
    )
    assert result.max_abs_difference is None and reason in result.verification_skipped
    with pytest.raises(ValueError, match=reason):
        conversion.vit_reference_difference(result.model, canonical_vit_state_dict(_timm_layout(tiny_vit())))


def test_vit_unknown_keys_are_errors():
    state = _timm_layout(tiny_vit())
    state["dist_token"] = torch.zeros(1, 1, 32)
    with pytest.raises(ValueError, match="dist_token"):
        canonical_vit_state_dict(state)
