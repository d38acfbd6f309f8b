"""Model cards of converted folders: metadata through huggingface_hub's ModelCard, read back as it parses them."""

import pytest
import torch
from conftest import TINY, tiny_vit
from huggingface_hub import ModelCard
from test_conversion import (
    _load_script,
    _timesformer_folder,
    _timm_layout,
    original_state_dict,
    save_original_checkpoint,
)

from tsf_hf import TsfConfig
from tsf_hf.conversion import (
    build_processors,
    convert_imagenet_vit,
    convert_original_checkpoint,
    convert_transformers_timesformer,
    model_card,
)


def test_released_checkpoint_card_metadata(tmp_path):
    state = original_state_dict("divided_space_time", width=16, depth=1, patch=16, grid=14, frames=8, classes=400)
    path = save_original_checkpoint(tmp_path / "TimeSformer_divST_8x32_224_K400.pyth", state)
    convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=2)
    card = ModelCard.load(tmp_path / "out" / "README.md")
    data = card.data
    assert data.license == "cc-by-nc-4.0"
    assert data.library_name == "transformers" and data.pipeline_tag == "video-classification"
    assert data.tags == ["tsf_hf", "timesformer", "video-classification"]
    assert data.datasets == ["kinetics-400"] and data.base_model is None
    assert data.model_name == "TimeSformer base, Kinetics-400"
    metrics = {(result.metric_type, result.metric_value) for result in data.eval_results}
    assert metrics == {("accuracy", 78.0), ("top_5_accuracy", 93.7)}
    assert {result.task_type for result in data.eval_results} == {"video-classification"}
    assert {result.dataset_name for result in data.eval_results} == {"Kinetics-400"}
    assert all(result.source_url == "https://arxiv.org/abs/2102.05095" for result in data.eval_results)
    assert "78.0 / 93.7" in card.text
    assert f'from_pretrained("{tmp_path / "out"}", trust_remote_code=True)' in card.text


def test_card_without_paper_results_or_licence(tmp_path):
    state = original_state_dict("joint_space_time", depth=1, classes=3)
    path = save_original_checkpoint(tmp_path / "finetuned.pyth", state)
    convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=4)
    data = ModelCard.load(tmp_path / "out" / "README.md").data
    assert data.license == "cc-by-nc-4.0"
    assert data.eval_results is None and data.datasets is None and "model-index" not in data.to_dict()


@pytest.mark.parametrize(
    "name", ["TimeSformer: \"quoted\" 'single' # not a comment", "key: value, [list], {map}: *alias &anchor"]
)
def test_card_metadata_round_trips_any_model_name(tmp_path, name):
    config = TsfConfig(num_frames=8, image_size=224, num_labels=400)
    video_processor, _ = build_processors(config, "k400")
    card = model_card(
        config, "a source: with colon", "k400", "cc-by-nc-4.0", video_processor, repo_id="user/repo", model_name=name
    )
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.model_name == name
    assert loaded.data.to_dict() == card.data.to_dict()
    assert [result.metric_value for result in loaded.data.eval_results] == [78.0, 93.7]
    assert f"# {name}" in loaded.text and 'from_pretrained("user/repo", trust_remote_code=True)' in loaded.text


def test_transformers_card_licence_from_source_card_or_option(tmp_path):
    folder = tmp_path / "timesformer"
    _timesformer_folder(folder)
    convert_transformers_timesformer(folder, tmp_path / "no-card")
    data = ModelCard.load(tmp_path / "no-card" / "README.md").data
    assert data.license is None and "license" not in data.to_dict() and data.base_model is None
    ModelCard("---\nlicense: apache-2.0\n---\n\n# source\n").save(folder / "README.md")
    convert_transformers_timesformer(folder, tmp_path / "from-card")
    assert ModelCard.load(tmp_path / "from-card" / "README.md").data.license == "apache-2.0"
    script = _load_script("convert_transformers_timesformer")
    argv = ["--model_path", str(folder), "--output_dir", str(tmp_path / "option"), "--license", "mit"]
    assert script.main(argv) == 0
    assert ModelCard.load(tmp_path / "option" / "README.md").data.license == "mit"


def test_vit_initialisation_card_claims_no_video_training(tmp_path):
    source = tmp_path / "vit.pth"
    torch.save(_timm_layout(tiny_vit()), source)
    script = _load_script("convert_imagenet_vit")
    argv = ["--vit_path", str(source), "--output_dir", str(tmp_path / "out"), "--num_frames", "4"]
    assert script.main([*argv, "--image_size", "32", "--num_attention_heads", "4", "--dataset", "k400"]) == 0
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.license is None and card.data.datasets is None and card.data.eval_results is None
    assert card.data.tags == ["tsf_hf", "timesformer", "video-classification"]
    assert "not trained on" in card.text and "93.7" not in card.text
    result = convert_imagenet_vit(
        source, tmp_path / "licensed", num_frames=4, image_size=32, num_attention_heads=4, license="apache-2.0"
    )
    assert ModelCard.load(result.output_dir / "README.md").data.license == "apache-2.0"


def test_vit_folder_card_takes_the_source_licence(tmp_path):
    vit = tiny_vit()
    vit.save_pretrained(tmp_path / "vit")
    ModelCard("---\nlicense: apache-2.0\n---\n").save(tmp_path / "vit" / "README.md")
    convert_imagenet_vit(tmp_path / "vit", tmp_path / "out", num_frames=4, image_size=32, num_labels=3)
    assert ModelCard.load(tmp_path / "out" / "README.md").data.license == "apache-2.0"


def test_card_of_a_custom_size_model(tmp_path):
    config = TsfConfig(**TINY, num_labels=3)
    card = model_card(config, "somewhere", output_dir=tmp_path / "x")
    assert card.data.model_name == "TimeSformer (custom size)"
    assert card.data.license is None and card.data.eval_results is None
    assert f'from_pretrained("{tmp_path / "x"}", trust_remote_code=True)' in card.text
