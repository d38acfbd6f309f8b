"""Save / reload, the Auto classes, and loading a saved folder through remote code where tsf_hf is absent."""

import json
import os
import subprocess
import sys
import sysconfig

import pytest
import torch
from conftest import TINY, perturb_
from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification, TsfModel


def tiny_model(attention_type: str = "divided_space_time") -> TsfForVideoClassification:
    config = TsfConfig(
        **TINY,
        attention_type=attention_type,
        id2label={0: "left", 1: "right", 2: "up"},
        label2id={"left": 0, "right": 1, "up": 2},
    )
    torch.manual_seed(0)
    return perturb_(TsfForVideoClassification(config))  # real values in the extra linears and time table


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_save_reload_and_auto_classes(attention_type, tmp_path):
    model = tiny_model(attention_type)
    pixel_values = torch.randn(1, 4, 3, 32, 32)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_tsf.TsfConfig",
        "AutoModel": "modeling_tsf.TsfModel",
        "AutoModelForVideoClassification": "modeling_tsf.TsfForVideoClassification",
    }
    assert all((tmp_path / name).exists() for name in ("configuration_tsf.py", "modeling_tsf.py", "grouping_tsf.py"))

    assert isinstance(AutoConfig.from_pretrained(tmp_path), TsfConfig)
    reloaded = AutoModelForVideoClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is TsfForVideoClassification
    for name, parameter in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], parameter), name
    with torch.no_grad():
        assert torch.equal(reloaded(pixel_values).logits, model(pixel_values).logits)
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is TsfModel
    with torch.no_grad():
        assert torch.equal(base(pixel_values).pooler_output, model.tsf(pixel_values).pooler_output)


def test_base_checkpoint_loads_into_head_with_new_classifier(tmp_path):
    model = tiny_model()
    model.tsf.save_pretrained(tmp_path)
    head = TsfForVideoClassification.from_pretrained(tmp_path, num_labels=5)
    for name, parameter in model.tsf.state_dict().items():
        assert torch.equal(head.tsf.state_dict()[name], parameter), name
    assert head.classifier.out_features == 5


def test_attn_implementation_is_selected_the_usual_way(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    for implementation in ("eager", "sdpa", "flex_attention"):
        model = AutoModelForVideoClassification.from_pretrained(tmp_path, attn_implementation=implementation)
        assert model.config._attn_implementation == implementation


REMOTE_CODE_SCRIPT = """
import sys
sys.path = [p for p in sys.path if p and "site-packages" not in p and "/src" not in p] + [{site_packages!r}]
try:
    import tsf_hf
except ImportError:
    pass
else:
    raise SystemExit("tsf_hf must not be importable here")
import json, torch
from transformers import AutoModel, AutoModelForVideoClassification
folder = sys.argv[1]
model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
pixel_values = torch.load(sys.argv[2])
with torch.no_grad():
    logits = model(pixel_values).logits
    pooled = base(pixel_values).pooler_output
torch.save({{"logits": logits, "pooled": pooled, "module": type(model).__module__}}, sys.argv[3])
"""


def test_remote_code_load_without_tsf_hf(tmp_path):
    model = tiny_model("sparse_local_global")
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    pixel_values = torch.randn(2, 5, 3, 24, 40)
    torch.save(pixel_values, tmp_path / "inputs.pt")
    script = tmp_path / "load.py"
    script.write_text(REMOTE_CODE_SCRIPT.format(site_packages=sysconfig.get_paths()["purelib"]))
    # `python -S` skips .pth files, so the editable install of tsf_hf is not on the path
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    environment.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, "-S", str(script), str(folder), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = torch.load(tmp_path / "out.pt")
    assert result["module"].startswith("transformers_modules.")
    with torch.no_grad():
        torch.testing.assert_close(result["logits"], model(pixel_values).logits, atol=1e-6, rtol=0)
        torch.testing.assert_close(result["pooled"], model.tsf(pixel_values).pooler_output, atol=1e-6, rtol=0)


def timesformer_folder(tmp_path, attention_type: str, with_head: bool = True):
    """A perturbed transformers Timesformer saved as transformers saves it, and its config."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification, TimesformerModel

    config = TimesformerConfig(**TINY, attention_type=attention_type, num_labels=3)
    torch.manual_seed(0)
    source = perturb_((TimesformerForVideoClassification if with_head else TimesformerModel)(config))
    source.save_pretrained(tmp_path)
    return source


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
def test_timesformer_folder_loads_exactly(tmp_path, attention_type):
    """A transformers Timesformer folder loads into tsf with its config translated and its weights renamed (logits
    equal to the source's within 1e-5), through the tsf class and through AutoModelForVideoClassification with a tsf
    config."""
    source = timesformer_folder(tmp_path, attention_type)
    pixel_values = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        model = TsfForVideoClassification.from_pretrained(tmp_path).eval()
        assert model.config.attention_type == attention_type and model.config.model_type == "tsf"
        assert model.config.id2label == source.config.id2label
        if attention_type == "space_only":  # transformers' space_only gives per-frame logits: compare the blocks
            expected = source(pixel_values, output_hidden_states=True).hidden_states[-1]
            actual = model(pixel_values, output_hidden_states=True).hidden_states[-1]
        else:
            expected, actual = source(pixel_values).logits, model(pixel_values).logits
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
        auto = AutoModelForVideoClassification.from_pretrained(tmp_path, config=TsfConfig.from_pretrained(tmp_path))
        assert type(auto) is TsfForVideoClassification
        assert all(torch.equal(a, b) for a, b in zip(auto.state_dict().values(), model.state_dict().values()))
        encoder = TsfModel.from_pretrained(tmp_path)
        torch.testing.assert_close(encoder.eval()(pixel_values).pooler_output, model.tsf(pixel_values).pooler_output)


def test_timesformer_base_model_folder_gives_a_new_head_only(tmp_path):
    timesformer_folder(tmp_path, "divided_space_time", with_head=False)
    model, info = TsfForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]


def test_timesformer_folder_that_does_not_fill_the_model_is_refused(tmp_path):
    """Never random encoder weights: a checkpoint missing encoder weights raises, naming the converter script."""
    from safetensors.torch import load_file, save_file

    timesformer_folder(tmp_path, "divided_space_time")
    weights = load_file(tmp_path / "model.safetensors")
    del weights["timesformer.encoder.layer.1.temporal_dense.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"do not fill the tsf model.*layers\.1\.steps\.0\.fc\.weight.*convert_transformers_timesformer"):
        TsfForVideoClassification.from_pretrained(tmp_path)
