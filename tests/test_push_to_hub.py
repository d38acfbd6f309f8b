"""Uploading converted folders to the Hub (a loopback mock) and loading them back where tsf_hf is not installed."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from conftest import VIDEO_PROCESSOR_FILES, tiny_vit
from hub_mock import mock_hub  # noqa: F401  (pytest fixture)
from test_conversion import (
    CONVERTED_FOLDER_FILES,
    _timesformer_folder,
    original_state_dict,
    random_video,
    save_original_checkpoint,
)
from tsf_hf.conversion import (
    convert_imagenet_vit,
    convert_original_checkpoint,
    convert_transformers_timesformer,
    push_folder_to_hub,
)


# Runs in a fresh interpreter where importing tsf_hf fails, so everything must come from the repo's remote code.
LOAD_WITHOUT_PACKAGE = textwrap.dedent(
    """
    import os
    import sys
    sys.modules["tsf_hf"] = None  # the package is installed here: make every import of it fail
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification, AutoVideoProcessor

    repo, video_path, logits_path = sys.argv[1:4]
    model = AutoModelForVideoClassification.from_pretrained(repo, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
    assert type(AutoModel.from_pretrained(repo, trust_remote_code=True)).__name__ == "TsfModel"
    assert AutoConfig.from_pretrained(repo, trust_remote_code=True).model_type == "tsf"
    processor = AutoVideoProcessor.from_pretrained(repo, trust_remote_code=True)
    frames = np.random.default_rng(0).integers(0, 256, size=(12, 40, 48, 3), dtype=np.uint8)
    pixel_values = processor(frames, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape[-4:] == (4, 3, 32, 32), pixel_values.shape
    with torch.no_grad():
        torch.save(model(torch.load(video_path)).logits, logits_path)
    model.save_pretrained("resaved")  # the remote-code copy saves as transformers does: no model card of tsf_hf
    assert os.path.isfile("resaved/model.safetensors") and not os.path.exists("resaved/README.md")
    print("loaded", type(model).__name__, type(processor).__name__)
    """
)


def test_push_converted_checkpoint_and_load_with_remote_code(tmp_path, mock_hub):
    state = original_state_dict("divided_space_time", classes=3)
    path = save_original_checkpoint(tmp_path / "checkpoint.pyth", state)
    result = convert_original_checkpoint(
        path, tmp_path / "out", num_attention_heads=4, verify=True, push_to_hub="tiny-tsf"
    )
    assert result.repo_id == "testuser/tiny-tsf"
    files = mock_hub.files("testuser/tiny-tsf")
    assert set(files) == CONVERTED_FOLDER_FILES
    config = json.loads(files["config.json"])
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForVideoClassification"}
    assert json.loads(files["video_preprocessor_config.json"])["auto_map"] == {
        "AutoVideoProcessor": "video_processing_tsf.TsfVideoProcessor"
    }
    assert "testuser/tiny-tsf" in files["README.md"].decode()
    assert ("POST", "/api/models/testuser/tiny-tsf/commit/main") in mock_hub.requests

    video = random_video(4, 32)
    torch.save(video, tmp_path / "video.pt")
    with torch.no_grad():
        expected = result.model(video).logits
    arguments = ["testuser/tiny-tsf", tmp_path / "video.pt", tmp_path / "logits.pt"]
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PACKAGE, *arguments],
        env=mock_hub.environment(tmp_path / "child"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "loaded TsfForVideoClassification TsfVideoProcessor" in completed.stdout
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, atol=0, rtol=0)


def test_mock_hub_serves_uploads_and_reports_missing_files(tmp_path, mock_hub):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    api = HfApi()
    repo_id = api.create_repo("plain", exist_ok=True).repo_id
    api.upload_folder(folder_path=folder, repo_id=repo_id)
    assert mock_hub.files(repo_id) == {"a.txt": b"hello"}
    downloaded = hf_hub_download(repo_id, "a.txt", cache_dir=tmp_path / "cache")
    assert open(downloaded).read() == "hello"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt", cache_dir=tmp_path / "cache")


def test_mock_hub_supports_transformers_push_and_reload_in_process(tmp_path, mock_hub):
    from tsf_hf import TsfConfig, TsfForVideoClassification, TsfVideoProcessor

    config = TsfConfig(
        image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=64,
    )
    model = TsfForVideoClassification(config).eval()
    model.push_to_hub("toy")
    TsfVideoProcessor(num_frames=4).push_to_hub("toy")
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md"} <= set(
        mock_hub.files("testuser/toy")
    )
    reloaded = TsfForVideoClassification.from_pretrained("testuser/toy").eval()
    assert TsfVideoProcessor.from_pretrained("testuser/toy").num_frames == 4
    video = random_video(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(video).logits, model(video).logits, atol=0, rtol=0)


def test_convert_from_hub_repos_reads_weights_strictly(tmp_path, mock_hub):
    # uploaded with huggingface_hub's own client (transformers' push_to_hub keeps one client per process)
    source = _timesformer_folder(tmp_path / "timesformer")
    push_folder_to_hub(tmp_path / "timesformer", "tiny-timesformer")
    result = convert_transformers_timesformer(
        "testuser/tiny-timesformer", tmp_path / "out", verify=True, tolerance=1e-6
    )
    assert ModelCard.load(tmp_path / "out" / "README.md").data.base_model == "testuser/tiny-timesformer"
    video = random_video(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(result.model(video).logits, source(video).logits, atol=1e-6, rtol=0)
    vit = tiny_vit()
    vit.save_pretrained(tmp_path / "vit")
    push_folder_to_hub(tmp_path / "vit", "tiny-vit")
    result = convert_imagenet_vit("testuser/tiny-vit", num_frames=4, image_size=32, num_labels=3, verify=True)
    assert result.max_abs_difference <= 1e-5
    assert result.model.config.num_attention_heads == vit.config.num_attention_heads
    (tmp_path / "timesformer" / "model.safetensors").unlink()
    push_folder_to_hub(tmp_path / "timesformer", "config-only")
    with pytest.raises(ValueError, match="testuser/config-only holds no weights"):
        convert_transformers_timesformer("testuser/config-only")
