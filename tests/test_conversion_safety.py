"""Nothing lost when converting: output folders that never replace their inputs or a user's files unasked, atomic
writes that survive full disks and kill -9, and clear errors for wrong input."""

import errno
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import transformers.modeling_utils
from conftest import tiny_vit
from safetensors import SafetensorError
from safetensors.torch import save_file
from test_conversion import (
    CONVERTED_FOLDER_FILES,
    REPO_ROOT,
    _load_script,
    _timesformer_folder,
    _timm_layout,
    original_state_dict,
    save_original_checkpoint,
)
from transformers import ViTConfig, ViTModel
from transformers.utils import logging as transformers_logging

from tsf_hf import TsfForVideoClassification
from tsf_hf.conversion import (
    clean_leftovers,
    convert_imagenet_vit,
    convert_original_checkpoint,
    convert_transformers_timesformer,
    load_checkpoint_file,
    read_label_file,
)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` by relative path, with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def leftovers(target: Path) -> list[str]:
    return sorted(path.name for path in target.parent.iterdir() if path.name.startswith(f".{target.name}.tsf_hf-"))


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines of a script's stderr (progress bars redraw with carriage returns)."""
    return [line for line in re.split(r"[\r\n]", stderr) if line.startswith("error:")]


def checkpoint(tmp_path: Path, name: str = "checkpoint.pyth", classes: int = 5) -> Path:
    return save_original_checkpoint(tmp_path / name, original_state_dict("divided_space_time", classes=classes))


def convert_script(argv: list[str]) -> int:
    return _load_script("convert_original_checkpoint").main([str(arg) for arg in argv])


def previous_folder(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A complete earlier conversion (3 classes) at `tmp_path / "out"` plus a user's note; and its snapshot."""
    out = tmp_path / "out"
    convert_original_checkpoint(checkpoint(tmp_path, "earlier.pyth", classes=3), out, num_attention_heads=4)
    (out / "notes.txt").write_text("the user's own notes")
    return out, snapshot(out)


# ---------------------------------------------------------------------------------------------------------------------
# Output folders that would lose work are refused


@pytest.mark.parametrize("spelling", ["same", "inside", "symlink", "relative", "trailing-dot"])
def test_output_dir_at_or_inside_the_source_folder_is_refused(tmp_path, monkeypatch, capsys, spelling):
    folder = tmp_path / "timesformer"
    _timesformer_folder(folder)
    (tmp_path / "link").symlink_to(folder)
    monkeypatch.chdir(tmp_path)
    output_dir = {
        "same": folder,
        "inside": folder / "converted",
        "symlink": "link",
        "relative": "./link/../timesformer",
        "trailing-dot": "timesformer/.",
    }[spelling]
    before = snapshot(folder)
    script = _load_script("convert_transformers_timesformer")
    for extra in ([], ["--overwrite"]):
        assert script.main(["--model_path", str(folder), "--output_dir", str(output_dir), *extra]) == 1
        assert "is or lies inside the input" in capsys.readouterr().err
    assert snapshot(folder) == before and not (folder / "converted").exists()
    with pytest.raises(ValueError, match="inside the input"):
        convert_transformers_timesformer(folder, output_dir, overwrite=True)


def test_output_dir_holding_an_input_is_refused_even_with_overwrite(tmp_path):
    path = checkpoint(tmp_path)
    labels = tmp_path / "labels" / "names.txt"
    labels.parent.mkdir()
    labels.write_text("a\nb\nc\nd\ne\n")
    with pytest.raises(ValueError, match="holds the input"):
        convert_original_checkpoint(path, tmp_path, num_attention_heads=4, overwrite=True)
    with pytest.raises(ValueError, match="holds the input"):
        convert_original_checkpoint(path, labels.parent, num_attention_heads=4, label_file=labels, overwrite=True)
    assert path.is_file() and labels.read_text() == "a\nb\nc\nd\ne\n"
    with pytest.raises(ValueError, match="inside the input"):
        convert_original_checkpoint(path, path, num_attention_heads=4)


def test_non_empty_output_dir_needs_overwrite_which_replaces_the_whole_folder(tmp_path, capsys):
    path = checkpoint(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "pytorch_model.bin").write_bytes(b"another model's weights")
    (out / "README.md").write_text("my own notes")
    argv = ["--checkpoint_path", path, "--output_dir", out, "--num_attention_heads", "4"]
    assert convert_script(argv) == 1
    refusal = f"error: output_dir {out} exists and is not empty; pass overwrite=True (--overwrite) to replace the"
    assert error_lines(capsys.readouterr().err) == [f"{refusal} whole folder"]
    assert snapshot(out) == {"README.md": b"my own notes", "pytorch_model.bin": b"another model's weights"}
    assert convert_script([*argv, "--overwrite"]) == 0
    assert set(snapshot(out)) == CONVERTED_FOLDER_FILES  # the stale weights and the old README are gone
    assert "my own notes" not in (out / "README.md").read_text()
    assert leftovers(out) == []
    assert TsfForVideoClassification.from_pretrained(out).config.num_labels == 5


def test_empty_existing_folder_is_used_and_a_file_is_refused(tmp_path):
    path = checkpoint(tmp_path)
    (tmp_path / "empty").mkdir()
    result = convert_original_checkpoint(path, tmp_path / "empty", num_attention_heads=4)
    assert set(snapshot(result.output_dir)) == CONVERTED_FOLDER_FILES
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        convert_original_checkpoint(path, tmp_path / "file", num_attention_heads=4, overwrite=True)


def test_empty_output_dir_is_refused(tmp_path, monkeypatch, capsys):
    path = checkpoint(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert convert_script(["--checkpoint_path", path, "--output_dir", "", "--overwrite"]) == 1
    assert error_lines(capsys.readouterr().err) == ["error: output_dir must name a folder, got an empty path"]
    assert list(work.iterdir()) == []
    with pytest.raises(ValueError, match="empty path"):
        convert_original_checkpoint(path, " ", num_attention_heads=4)


# ---------------------------------------------------------------------------------------------------------------------
# Atomic writes: failures and interruptions leave the previous folder or none


@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, "No space left on device"), SafetensorError("Error while serializing: StorageFull")],
    ids=["ENOSPC", "SafetensorError"],
)
@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_full_disk_leaves_no_partial_folder(tmp_path, monkeypatch, capsys, failure, existing):
    path = checkpoint(tmp_path)
    out, before = previous_folder(tmp_path) if existing else (tmp_path / "nested" / "out", None)

    def full_disk(*args, **kwargs):
        raise failure

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_disk)
    argv = ["--checkpoint_path", path, "--output_dir", out, "--num_attention_heads", "4", "--overwrite"]
    assert convert_script(argv) == 1
    stderr = capsys.readouterr().err
    assert error_lines(stderr) == [f"error: could not write {out}: {failure}"] and "Traceback" not in stderr
    if existing:
        assert snapshot(out) == before and leftovers(out) == []
    else:
        assert not (tmp_path / "nested").exists()  # nor the parent folder created for it


def test_write_failure_from_the_operating_system(tmp_path):
    """A real failed write (the file-size limit makes the kernel refuse the weights), in a fresh process whose
    progress bars are off: stderr is exactly one error line and nothing is left behind."""
    path = checkpoint(tmp_path)
    out = tmp_path / "out"

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    script = REPO_ROOT / "conversion" / "convert_original_checkpoint.py"
    completed = subprocess.run(
        [sys.executable, script, "--checkpoint_path", path, "--output_dir", out, "--num_attention_heads", "4"],
        env=dict(os.environ, HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONDONTWRITEBYTECODE="1"),
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout == ""
    assert re.fullmatch(rf"error: could not write {re.escape(str(out))}: .*\n", completed.stderr), completed.stderr
    assert list(tmp_path.iterdir()) == [path]


# The converter script, run in a child that pauses (and tells the test so) at a chosen point of the write, so that the
# test can kill it there with SIGKILL.
PAUSING_CONVERTER = textwrap.dedent(
    """
    import os, runpy, sys, time
    from pathlib import Path

    marker, pause_at, script, *argv = sys.argv[1:]

    def pause():
        Path(marker).touch()
        time.sleep(600)

    if pause_at == "weights":  # the weights file is written, the rest of the folder is not
        import transformers.modeling_utils as modeling_utils

        real_save = modeling_utils.safe_save_file

        def save_then_pause(*args, **kwargs):
            real_save(*args, **kwargs)
            pause()

        modeling_utils.safe_save_file = save_then_pause
    elif pause_at == "swap":  # the old folder is moved aside, the new one not yet in its place
        real_rename = os.rename

        def rename_then_pause(source, destination):
            real_rename(source, destination)
            if ".tsf_hf-replaced-" in str(destination):
                pause()

        os.rename = rename_then_pause
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name="__main__")
    """
)


def start_converter(tmp_path: Path, pause_at: str, argv: list) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / f"paused-{pause_at}"
    script = REPO_ROOT / "conversion" / "convert_original_checkpoint.py"
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSING_CONVERTER, marker, pause_at, script, *map(str, argv)],
        env=dict(os.environ, HF_HUB_DISABLE_PROGRESS_BARS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, marker


def kill_when(process: subprocess.Popen, ready) -> None:
    """SIGKILLs `process` as soon as `ready()` holds (polled every millisecond), then reaps it."""
    deadline = time.monotonic() + 300
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the converter ended before the kill point: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, "the converter never reached the kill point"
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_kill_while_writing_leaves_no_partial_target(tmp_path, existing):
    path = checkpoint(tmp_path)
    out, before = previous_folder(tmp_path) if existing else (tmp_path / "out", None)
    argv = ["--checkpoint_path", path, "--output_dir", out, "--num_attention_heads", "4", "--overwrite"]
    process, marker = start_converter(tmp_path, "weights", argv)
    kill_when(process, marker.exists)
    if existing:
        assert snapshot(out) == before
    else:
        assert not out.exists()
    (incomplete,) = leftovers(out)  # the interrupted write, named after its target and hidden
    assert incomplete.startswith(f".{out.name}.tsf_hf-incomplete-{process.pid}-")
    assert "model.safetensors" in os.listdir(out.parent / incomplete)
    assert convert_script(argv) == 0  # the next run cleans up and completes
    assert leftovers(out) == [] and set(snapshot(out)) == CONVERTED_FOLDER_FILES


@pytest.mark.slow
def test_kill_between_moving_the_old_folder_aside_and_the_new_one_in(tmp_path, capsys):
    path = checkpoint(tmp_path)
    out, before = previous_folder(tmp_path)
    argv = ["--checkpoint_path", path, "--output_dir", out, "--num_attention_heads", "4", "--overwrite"]
    process, marker = start_converter(tmp_path, "swap", argv)
    kill_when(process, marker.exists)
    assert not out.exists()  # no partial target: the complete old folder waits beside it, and so does the new one
    (replaced,) = [name for name in leftovers(out) if "-replaced-" in name]
    assert snapshot(out.parent / replaced) == before
    clean_leftovers(out)  # what the next write to `out` does first: the old folder goes back
    assert snapshot(out) == before and leftovers(out) == []
    assert convert_script(argv[:-1]) == 1  # and without --overwrite it is kept
    assert "not empty" in capsys.readouterr().err and snapshot(out) == before


@pytest.mark.slow
def test_kill_at_the_first_sign_of_writing(tmp_path):
    """A kill at whatever point the write has reached when its temporary folder appears: the target is the complete
    previous folder, or (had the write finished first) the complete new one; never anything in between."""
    path = checkpoint(tmp_path)
    out, before = previous_folder(tmp_path)
    argv = ["--checkpoint_path", path, "--output_dir", out, "--num_attention_heads", "4", "--overwrite"]
    process, _ = start_converter(tmp_path, "nowhere", argv)
    kill_when(process, lambda: any("-incomplete-" in name for name in leftovers(out)))
    clean_leftovers(out)
    after = snapshot(out)
    assert after == before or (set(after) == CONVERTED_FOLDER_FILES and "notes.txt" not in after)
    assert leftovers(out) == []


def test_leftovers_of_live_processes_are_left_alone(tmp_path):
    out = tmp_path / "out"
    live = tmp_path / f".out.tsf_hf-incomplete-{os.getpid()}-abc"
    live.mkdir()
    unrelated = tmp_path / ".out.other"
    unrelated.mkdir()
    clean_leftovers(out)
    assert live.exists() and unrelated.exists()


# ---------------------------------------------------------------------------------------------------------------------
# Clear errors for wrong input


def test_text_file_as_checkpoint(tmp_path, capsys):
    text = tmp_path / "notes.pyth"
    text.write_text("epoch 15, top-1 78.0\n")  # `e` is also a pickle opcode: torch.load failed with KeyError: 101
    with pytest.raises(ValueError, match=r"notes.pyth is not a PyTorch checkpoint .* nor a safetensors file"):
        load_checkpoint_file(text)
    assert convert_script(["--checkpoint_path", text, "--output_dir", tmp_path / "out"]) == 1
    stderr = capsys.readouterr().err
    assert len(error_lines(stderr)) == 1 and "KeyError" not in stderr and "Traceback" not in stderr


def test_safetensors_file_with_a_pickle_name_loads_as_safetensors(tmp_path):
    state = original_state_dict("joint_space_time", depth=1)
    save_file(state, tmp_path / "weights.pyth")
    loaded = load_checkpoint_file(tmp_path / "weights.pyth")
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[key], state[key]) for key in state)
    result = convert_original_checkpoint(tmp_path / "weights.pyth", num_attention_heads=4)
    assert result.model.config.attention_type == "joint_space_time"
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes((tmp_path / "weights.pyth").read_bytes()[:2000])
    with pytest.raises(ValueError, match="not a readable safetensors file") as caught:
        load_checkpoint_file(corrupt)
    assert "weights_only" not in str(caught.value)


def test_bad_label_file_json_names_the_file_and_the_error(tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text('{"0": "cat",, "1": "dog"}')
    with pytest.raises(ValueError, match=r"label file .*labels.json is not valid JSON: Expecting .* line 1 column"):
        read_label_file(labels, 2)
    argv = ["--checkpoint_path", checkpoint(tmp_path), "--output_dir", tmp_path / "out", "--label_file", labels]
    assert convert_script([*argv, "--num_attention_heads", "4"]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert str(labels) in line and "not valid JSON" in line


def test_folders_without_their_config_say_so(tmp_path, capsys):
    folder = tmp_path / "timesformer"
    _timesformer_folder(folder)
    (folder / "config.json").unlink()
    script = _load_script("convert_transformers_timesformer")
    assert script.main(["--model_path", str(folder), "--output_dir", str(tmp_path / "out")]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert line == (
        f"error: {folder} has no config.json: a transformers timesformer folder or repo holds its config beside its "
        "weights (save_pretrained writes both)"
    )
    vit = tmp_path / "vit"
    tiny_vit().save_pretrained(vit)
    with pytest.raises(ValueError, match="holds a 'vit' model"):
        convert_transformers_timesformer(vit)
    (vit / "config.json").unlink()
    with pytest.raises(ValueError, match=r"has no config\.json"):
        convert_imagenet_vit(vit)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--image_size", "32", "32", "32"], "--image_size takes 1 value (square frames) or 2 (height width), got 3"),
        (["--image_size", "0"], "must be a positive integer, got 0"),
        (["--num_labels", "-3"], "must be a positive integer, got -3"),
        (["--num_frames", "0"], "must be a positive integer, got 0"),
    ],
)
def test_bad_numbers_are_refused_by_the_parser(tmp_path, capsys, argv, message):
    script = _load_script("convert_imagenet_vit")
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(["--vit_path", "vit.pth", "--output_dir", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="num_labels must be a positive number of classes, got -3"):
        convert_imagenet_vit("vit.pth", num_labels=-3)


def test_heads_that_do_not_divide_the_width_are_refused(tmp_path, capsys):
    path = checkpoint(tmp_path)
    argv = ["--checkpoint_path", path, "--output_dir", tmp_path / "out", "--num_attention_heads", "5"]
    assert convert_script(argv) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert "num_attention_heads must divide the width 32 the weights have, got 5" in line
    torch.save(_timm_layout(tiny_vit()), tmp_path / "vit.pth")
    with pytest.raises(ValueError, match="must divide the width 32"):
        convert_imagenet_vit(tmp_path / "vit.pth", num_attention_heads=3)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "convert_original_checkpoint",
            ["heads per attention: not recorded in the weights", "LayerNorm epsilon: not recorded in the weights"],
        ),
        ("convert_imagenet_vit", ["a timm file does not record heads", "default: the ViT's own"]),
        ("convert_transformers_timesformer", ["--license"]),
    ],
)
def test_help_shows_defaults_and_what_weights_cannot_tell(capsys, name, expected):
    with pytest.raises(SystemExit):
        _load_script(name).parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Example: python conversion/" in text  # the description keeps its example
    assert "(default: 0.0001)" in text and "(default: False)" in text
    assert "--output_dir OUTPUT_DIR folder to write the tsf_hf model folder to --overwrite" in text  # required: none
    for phrase in expected:
        assert phrase in text
    if name == "convert_original_checkpoint":
        assert "(default: 12)" in text and "(default: 1e-06)" in text


def test_vit_initialisation_defaults_to_the_vits_own_frame_size(tmp_path, capsys):
    config = ViTConfig(
        image_size=48, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64
    )
    torch.manual_seed(0)
    vit = ViTModel(config, add_pooling_layer=False)
    vit.save_pretrained(tmp_path / "vit")
    script = _load_script("convert_imagenet_vit")
    argv = ["--vit_path", tmp_path / "vit", "--output_dir", tmp_path / "out", "--num_frames", "2", "--verify"]
    assert script.main([str(arg) for arg in argv]) == 0
    assert "verification skipped" not in capsys.readouterr().out
    model = TsfForVideoClassification.from_pretrained(tmp_path / "out")
    assert model.config.image_size == 48
    assert torch.equal(model.tsf.embeddings.position_embeddings, vit.embeddings.position_embeddings)
    torch.save(_timm_layout(tiny_vit()), tmp_path / "vit.pth")
    result = convert_imagenet_vit(tmp_path / "vit.pth", num_attention_heads=4, num_labels=2)
    assert result.model.config.image_size == 32


# ---------------------------------------------------------------------------------------------------------------------
# Progress


def test_progress_bar_obeys_the_ecosystem_switch(tmp_path, capsys):
    path = checkpoint(tmp_path)
    convert_original_checkpoint(path, tmp_path / "shown", num_attention_heads=4, verify=True)
    shown = capsys.readouterr().err
    assert "Converting an original checkpoint" in shown and "verifying against transformers' Timesformer" in shown
    transformers_logging.disable_progress_bar()
    try:
        convert_original_checkpoint(path, tmp_path / "hidden", num_attention_heads=4, verify=True)
    finally:
        transformers_logging.enable_progress_bar()
    assert "Converting" not in capsys.readouterr().err
