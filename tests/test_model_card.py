"""Model cards through huggingface_hub's ModelCard, read back as it parses them: the cards of converted folders, and
the card `save_pretrained` / `push_to_hub` of a tsf model write where the folder or the Hub repo has none."""

import pytest
import torch
from conftest import TINY, tiny_vit
from hub_mock import mock_hub  # noqa: F401  (pytest fixture)
from huggingface_hub import HfApi, ModelCard
from test_conversion import (
    _load_script,
    _timesformer_folder,
    _timm_layout,
    original_state_dict,
    save_original_checkpoint,
)

from tsf_hf import TsfConfig, TsfForVideoClassification, TsfModel
from tsf_hf.conversion import (
    build_processors,
    convert_imagenet_vit,
    convert_original_checkpoint,
    convert_transformers_timesformer,
    model_card,
)
from tsf_hf.model_cards import CARD_TAGS


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


def tiny_classifier() -> TsfForVideoClassification:
    return TsfForVideoClassification(TsfConfig(**TINY, id2label={0: "walk: fast", 1: "run"}))


def test_save_pretrained_writes_a_card_where_the_folder_has_none(tmp_path):
    folder = tmp_path / "my-model"
    tiny_classifier().save_pretrained(folder)
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "video-classification"
    assert card.data.tags == CARD_TAGS and card.data.model_name == "my-model"
    assert card.data.base_model is None and card.data.license is None  # loaded from nowhere, no licence known
    assert "- Classes (2): `walk: fast`, `run`." in card.text
    assert f'AutoModelForVideoClassification.from_pretrained("{folder}", trust_remote_code=True)' in card.text
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]  # no temporary file left
    reloaded = TsfForVideoClassification.from_pretrained(folder)  # a local folder is no Hub base model
    reloaded.save_pretrained(tmp_path / "again")
    assert ModelCard.load(tmp_path / "again" / "README.md").data.base_model is None
    encoder = TsfModel(TsfConfig(**TINY))
    encoder.add_model_tags(["kinetics-features"])
    encoder.save_pretrained(tmp_path / "encoder")
    card = ModelCard.load(tmp_path / "encoder" / "README.md")
    assert card.data.pipeline_tag is None and "Classes" not in card.text
    assert card.data.tags == [*CARD_TAGS, "kinetics-features"]
    assert f'AutoModel.from_pretrained("{tmp_path / "encoder"}", trust_remote_code=True)' in card.text


def test_save_pretrained_never_replaces_a_card(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "README.md").write_text("my own notes")
    tiny_classifier().save_pretrained(folder)
    assert (folder / "README.md").read_text() == "my own notes"
    tiny_classifier().save_pretrained(tmp_path / "other", is_main_process=False)
    assert not (tmp_path / "other" / "README.md").exists()  # only the main process writes


def test_push_to_hub_writes_a_card_where_the_repo_has_none(tmp_path, mock_hub):  # noqa: F811
    tiny_classifier().push_to_hub("toy-card", tags=["my-tag"])
    card = ModelCard(mock_hub.files("testuser/toy-card")["README.md"].decode())
    assert card.data.tags == [*CARD_TAGS, "my-tag"] and card.data.model_name == "toy-card"
    assert card.data.pipeline_tag == "video-classification" and card.data.base_model is None
    assert 'AutoVideoProcessor.from_pretrained("testuser/toy-card", trust_remote_code=True)' in card.text
    reloaded = TsfForVideoClassification.from_pretrained("testuser/toy-card")
    reloaded.push_to_hub("toy-card-2")
    assert ModelCard(mock_hub.files("testuser/toy-card-2")["README.md"].decode()).data.base_model == (
        "testuser/toy-card"
    )
    reloaded.save_pretrained(tmp_path / "pushed", push_to_hub=True, repo_id="toy-card-3")
    card = ModelCard(mock_hub.files("testuser/toy-card-3")["README.md"].decode())
    assert card.data.base_model == "testuser/toy-card" and '"testuser/toy-card-3"' in card.text
    assert (tmp_path / "pushed" / "README.md").read_text() == str(card)


def test_push_to_hub_keeps_the_repo_card(tmp_path, mock_hub):  # noqa: F811
    api = HfApi()
    repo_id = api.create_repo("own-card").repo_id
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n\n# My model\n", path_in_repo="README.md", repo_id=repo_id
    )
    tiny_classifier().push_to_hub("own-card")
    card = ModelCard(mock_hub.files(repo_id)["README.md"].decode())
    assert card.data.license == "mit" and card.text.strip() == "# My model"
    assert "model.safetensors" in mock_hub.files(repo_id)
