"""TsfConfig at its boundary: typos, aliases, assignment after construction, error types, missing config files."""

import json
import math

import pytest
from conftest import TINY
from transformers import AutoConfig

from tsf_hf import TsfConfig, TsfForVideoClassification


@pytest.mark.parametrize(
    ("build", "unknown", "field"),
    [
        (lambda: TsfConfig(atention_type="axial"), "atention_type", "attention_type"),
        (lambda: TsfConfig.from_variant("base", num_frams=4), "num_frams", "num_frames"),
        (lambda: TsfConfig(hiden_size=64), "hiden_size", "hidden_size"),
        (lambda: TsfConfig(num_label=3), "num_label", "num_labels"),
        (lambda: TsfConfig(depth=4), "depth", "num_hidden_layers"),
        (lambda: TsfConfig(embed_dim=64), "embed_dim", "hidden_size"),
        (lambda: TsfConfig(num_classes=10), "num_classes", "num_labels"),
    ],
)
def test_near_miss_and_alias_keys_raise_naming_both(build, unknown, field):
    with pytest.raises(TypeError, match=f"'{unknown}'.*did you mean '{field}'"):
        build()


def test_near_miss_in_config_json_raises(tmp_path):
    TsfConfig(**TINY).save_pretrained(tmp_path)
    stored = json.loads((tmp_path / "config.json").read_text())
    stored["atention_type"] = stored.pop("attention_type")
    (tmp_path / "config.json").write_text(json.dumps(stored))
    with pytest.raises(TypeError, match="did you mean 'attention_type'"):
        TsfConfig.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="did you mean 'attention_type'"):
        AutoConfig.from_pretrained(tmp_path)


def test_other_unknown_keys_warn_once_and_are_kept(caplog):
    from transformers.utils import logging

    logging.get_logger("transformers").addHandler(caplog.handler)  # transformers' loggers do not propagate
    try:
        first = TsfConfig(**TINY, my_project_tag="clip-v1")
        TsfConfig(**TINY, my_project_tag="clip-v2")
    finally:
        logging.get_logger("transformers").removeHandler(caplog.handler)
    assert first.my_project_tag == "clip-v1"
    assert sum("my_project_tag" in record.getMessage() for record in caplog.records) == 1


def test_saved_config_round_trips_without_unknown_keys(tmp_path, caplog):
    config = TsfConfig(**TINY, attention_type="axial", num_labels=3)
    config.save_pretrained(tmp_path)
    loaded = TsfConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("attention_type", "bogus", ValueError, "attention_type must be one of"),
        ("hidden_size", 30, ValueError, r"hidden_size must be a multiple of num_attention_heads \(4\), got 30"),
        ("num_frames", "eight", TypeError, "num_frames"),
        ("patch_size", 7, ValueError, "divisible by patch_size"),
        ("layer_norm_eps", -1.0, ValueError, "layer_norm_eps"),
        ("num_labels", -1, ValueError, "num_labels must be an integer >= 0"),
    ],
)
def test_assignment_after_construction_is_validated_and_refused(field, value, error, message):
    config = TsfConfig(**TINY)
    before = config.to_dict()
    with pytest.raises(error, match=message):
        setattr(config, field, value)
    assert config.to_dict() == before  # the old value is kept


def test_update_sets_related_fields_together():
    config = TsfConfig(**TINY)
    config.update({"hidden_size": 48, "num_attention_heads": 6})
    assert (config.hidden_size, config.num_attention_heads) == (48, 6)
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        config.update({"hidden_size": 50, "num_attention_heads": 4})
    assert (config.hidden_size, config.num_attention_heads) == (48, 6)


def test_from_pretrained_overrides_are_validated_together(tmp_path):
    TsfConfig().save_pretrained(tmp_path)
    config = TsfConfig.from_pretrained(tmp_path, hidden_size=64, num_attention_heads=4)
    assert (config.hidden_size, config.num_attention_heads) == (64, 4)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_labels": -3}, "num_labels must be >= 0"),
        ({"initializer_range": math.inf}, "initializer_range must be finite"),
        ({"initializer_range": math.nan}, "initializer_range must be finite"),
        ({"layer_norm_eps": 0.0}, "layer_norm_eps must be finite and positive"),
        ({"attention_probs_dropout_prob": math.nan}, r"attention_probs_dropout_prob must be in \[0, 1\)"),
    ],
)
def test_invalid_numbers_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        TsfConfig(**{**TINY, **overrides})


def test_type_errors_are_type_errors():
    with pytest.raises(TypeError, match="qkv_bias"):
        TsfConfig(qkv_bias="yes")


def test_folder_without_config_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        TsfConfig.from_pretrained(tmp_path)
    model = TsfForVideoClassification(TsfConfig(**TINY, num_labels=2))
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        TsfForVideoClassification.from_pretrained(tmp_path)


def test_keys_of_older_transformers_configs_are_not_mistaken_for_typos():
    """A full transformers 4.x `to_dict()` carries keys like `tie_encoder_decoder`, two edits from the inherited
    `is_encoder_decoder`: only TimeSformer's own fields are matched for near misses."""
    config = TsfConfig.from_dict({**TINY, "tie_encoder_decoder": False, "torchscript": False, "pruned_heads": {}})
    assert config.hidden_size == TINY["hidden_size"]
