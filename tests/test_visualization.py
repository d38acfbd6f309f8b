"""Attention rollout and temporal attention maps, and the figures drawn from them: size, layout, labels, colour
scale, contrast and files."""

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification, TsfModel, TsfVideoProcessor
from tsf_hf.visualization import (
    _frame_labels,
    _prediction,
    attention_rollout,
    contrast_limits,
    heat_colours,
    overlay_attention,
    render_attention,
    rollout_maps,
    save_overlay,
    scale_to_limits,
    temporal_attention,
    visualize_attention,
)


def tiny_config(attention_type: str = "divided_space_time", image_size: int = 32, layers: int = 2) -> TsfConfig:
    return TsfConfig(
        image_size=image_size,
        patch_size=8,
        num_frames=4,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        attention_type=attention_type,
        num_labels=3,
    )


def random_attention(groups: int, tokens: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(groups, 2, tokens, tokens, generator=generator).softmax(-1)


def test_divided_rollout_matches_a_brute_force_construction():
    """Full token matrices built by hand for the divided scheme: time groups are patch positions (row-major) over
    the frames; space groups are frames, holding cls then the positions; token (r, c, t) is 1 + (r * cols + c) * T
    + t."""
    frames, rows, cols = 2, 2, 2
    size = 1 + frames * rows * cols

    def token(r, c, t):
        return 1 + (r * cols + c) * frames + t

    generator = torch.Generator().manual_seed(0)
    attentions = [
        {
            "time": random_attention(rows * cols, frames, generator),
            "space": random_attention(frames, 1 + rows * cols, generator),
        }
        for _ in range(2)
    ]
    product = torch.eye(size)
    for layer in attentions:
        time, space = layer["time"].mean(1), layer["space"].mean(1)
        time_matrix = torch.zeros(size, size)
        time_matrix[0, 0] = 1
        space_matrix = torch.zeros(size, size)
        for r in range(rows):
            for c in range(cols):
                for t in range(frames):
                    for u in range(frames):
                        time_matrix[token(r, c, t), token(r, c, u)] = time[r * cols + c, t, u]
        for t in range(frames):
            space_matrix[0, 0] += space[t, 0, 0] / frames
            for r in range(rows):
                for c in range(cols):
                    space_matrix[token(r, c, t), 0] = space[t, 1 + r * cols + c, 0]
                    space_matrix[0, token(r, c, t)] = space[t, 0, 1 + r * cols + c] / frames
                    for r2 in range(rows):
                        for c2 in range(cols):
                            value = space[t, 1 + r * cols + c, 1 + r2 * cols + c2]
                            space_matrix[token(r, c, t), token(r2, c2, t)] = value
        for matrix in (time_matrix, space_matrix):
            product = (0.5 * matrix + 0.5 * torch.eye(size)) @ product
    rollout = attention_rollout(tuple(attentions), tiny_config(), (frames, rows, cols))
    torch.testing.assert_close(rollout[0], product[0])
    torch.testing.assert_close(rollout.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_rollout_is_a_distribution_for_every_scheme(attention_type):
    torch.manual_seed(0)
    model = TsfForVideoClassification(tiny_config(attention_type, image_size=24)).eval()  # 3x3 grid: odd, padded
    pixel_values = torch.randn(2, 3, 3, 24, 24)
    with torch.no_grad():
        attentions = model(pixel_values=pixel_values, output_attentions=True).attentions
    rollout = attention_rollout(attentions, model.config, (3, 3, 3))
    assert rollout.shape == (2, 1 + 27) and (rollout >= 0).all()
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2))
    maps = rollout_maps(rollout, (3, 3, 3))
    assert maps.shape == (2, 3, 3, 3)
    torch.testing.assert_close(maps.sum(dim=(1, 2, 3)), torch.ones(2))


def test_visualize_attention_files(tmp_path, small_video):
    torch.manual_seed(0)
    model = TsfForVideoClassification(tiny_config()).eval()
    processor = TsfVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    maps = visualize_attention(model, processor, str(small_video), tmp_path / "rollout.gif")
    assert maps.shape == (4, 4, 4) and maps.sum().item() == pytest.approx(1.0, abs=1e-5)
    with Image.open(tmp_path / "rollout.gif") as gif:
        assert gif.n_frames == 4 and gif.width >= 224 and gif.height >= 224  # one upscaled, labelled frame each
    temporal = visualize_attention(
        model, processor, str(small_video), tmp_path / "temporal.png", method="temporal", query_frame=1
    )
    torch.testing.assert_close(temporal.sum(0), torch.ones(4, 4))
    with Image.open(tmp_path / "temporal.png") as figure:
        assert figure.width >= 4 * 224 and np.asarray(figure).std() > 5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rollout.gif", "temporal.png"]  # no temporary left
    with pytest.raises(ValueError, match="'time' step"):
        joint = TsfForVideoClassification(tiny_config("joint_space_time")).eval()
        visualize_attention(joint, processor, str(small_video), tmp_path / "x.png", method="temporal")


def test_visualize_attention_refuses_bad_arguments(tmp_path, small_video):
    model = TsfForVideoClassification(tiny_config()).eval()
    processor = TsfVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    with pytest.raises(ValueError, match=r"image suffix .* got '.*attention\.mp4'"):
        visualize_attention(model, processor, str(small_video), tmp_path / "attention.mp4")
    copy = tmp_path / "video.gif"
    copy.write_bytes(small_video.read_bytes())
    with pytest.raises(ValueError, match="is the input video"):
        visualize_attention(model, processor, str(copy), copy)
    assert copy.read_bytes() == small_video.read_bytes()
    with pytest.raises(ValueError, match="layout must be one of"):
        visualize_attention(model, processor, str(small_video), tmp_path / "x.png", layout="grid")
    with pytest.raises(ValueError, match=r"layer must be in \[-2, 2\), got 2"):
        visualize_attention(model, processor, str(small_video), tmp_path / "x.png", method="temporal", layer=2)
    with pytest.raises(ValueError, match="must be finite"):
        overlay_attention(np.zeros((1, 8, 8, 3), dtype=np.uint8), np.full((1, 2, 2), np.nan))


def random_frames(count: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def find_block(image: np.ndarray, block: np.ndarray) -> tuple[int, int] | None:
    """Top-left corner where `block` appears exactly in `image`, or None."""
    height, width = block.shape[:2]
    for top, left in np.argwhere((image == block[0, 0]).all(-1)):
        if (image[top : top + height, left : left + width].shape == block.shape) and np.array_equal(
            image[top : top + height, left : left + width], block
        ):
            return int(top), int(left)
    return None


@pytest.mark.parametrize(("size", "factor"), [(32, 7), (24, 10), (224, 1), (300, 1)])
def test_frames_are_upscaled_to_the_minimum_size(size, factor):
    frames = random_frames(2, size)
    maps = np.random.default_rng(1).random((2, 2, 2))
    [figure] = render_attention(frames, maps, layout="side_by_side")
    image = np.asarray(figure)
    corners = [find_block(image, np.kron(frame, np.ones((factor, factor, 1), dtype=np.uint8))) for frame in frames]
    assert None not in corners  # each frame appears, upscaled by a whole factor (nearest), unchanged
    (top0, left0), (top1, left1) = corners
    assert top0 == top1 and left1 > left0 + 2 * size * factor  # frame 1 and its overlay to the right of frame 0's
    assert size * factor >= 224


def test_layouts_and_columns_shape_the_figure():
    frames, maps = random_frames(8, 32), np.random.default_rng(1).random((8, 4, 4))
    [overlay] = render_attention(frames, maps)  # 4 per row: 2 rows of 224 px frames
    [side_by_side] = render_attention(frames, maps, layout="side_by_side")  # 2 pairs per row: 4 rows
    [one_row] = render_attention(frames, maps, columns=8)
    assert overlay.width >= 4 * 224 and overlay.width < 5 * 224
    assert side_by_side.width >= 4 * 224 and side_by_side.width < 5 * 224
    assert one_row.width >= 8 * 224 and one_row.height < overlay.height
    assert 224 < overlay.height - one_row.height < 2 * 224  # one more row of frames
    assert 2 * 224 < side_by_side.height - overlay.height < 3 * 224  # two more
    animated = render_attention(frames, maps, layout="side_by_side", animated=True)
    assert len(animated) == 8 and {image.size for image in animated} == {animated[0].size}
    assert 2 * 224 <= animated[0].width < 3 * 224
    with pytest.raises(ValueError, match="expected maps"):
        render_attention(frames, maps[:3])
    with pytest.raises(ValueError, match="expected 8 frame labels, got 2"):
        render_attention(frames, maps, frame_labels=["a", "b"])


def legend_bar(image: np.ndarray) -> np.ndarray:
    """The longest run of pixels on one row, below the frames, that follow the heat scale: their positions on it."""
    scale = heat_colours(np.linspace(0, 1, 1001)).astype(np.int32)
    best = np.zeros(0)
    for row in image[image.shape[0] // 2 :].astype(np.int32):
        distance = ((row[:, None, :] - scale[None]) ** 2).sum(-1)
        on_scale = distance.min(-1) <= 3
        positions = distance.argmin(-1) / 1000
        start = None
        for x in range(len(row) + 1):
            if x < len(row) and on_scale[x]:
                start = x if start is None else start
            elif start is not None:
                if x - start > len(best):
                    best = positions[start:x]
                start = None
    return best


def test_legend_is_the_colour_scale_with_its_values():
    frames = np.full((4, 32, 32, 3), 128, dtype=np.uint8)
    maps = np.random.default_rng(0).random((4, 4, 4))
    [figure] = render_attention(frames, maps)
    bar = legend_bar(np.asarray(figure))
    assert len(bar) >= 200  # a bar of the whole scale, from its lowest colour to its highest, in order
    assert bar[0] <= 0.01 and bar[-1] >= 0.99 and (np.diff(bar) >= 0).all()
    # the scale's values are written under it: the picture of maps twice as large differs only there
    [scaled] = render_attention(frames, maps * 2)
    different_rows = np.nonzero((np.asarray(figure) != np.asarray(scaled)).any(axis=(1, 2)))[0]
    assert len(different_rows) > 0 and different_rows.min() > figure.height - 60


def test_frame_labels_and_title_are_drawn():
    frames, maps = random_frames(4, 32), np.random.default_rng(1).random((4, 4, 4))
    [plain] = render_attention(frames, maps, title=["Predicted: right (0.97)"])
    [other] = render_attention(frames, maps, title=["Predicted: left (0.51)"])
    [relabelled] = render_attention(frames, maps, title=["Predicted: right (0.97)"], frame_labels=list("abcd"))
    plain, other, relabelled = (np.asarray(image) for image in (plain, other, relabelled))
    title_rows = np.nonzero((plain != other).any(axis=(1, 2)))[0]
    label_rows = np.nonzero((plain != relabelled).any(axis=(1, 2)))[0]
    assert len(title_rows) and len(label_rows)
    assert title_rows.max() < label_rows.min()  # the title above the frame labels
    # labels are drawn between the title and the frames: dark text on the white band above the first frame
    band = plain[label_rows.min() : label_rows.max() + 1]
    assert (band.min(-1) < 100).sum() > 20


def test_visualize_attention_names_the_prediction(tmp_path, small_video):
    torch.manual_seed(0)
    model = TsfForVideoClassification(tiny_config()).eval()
    processor = TsfVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    visualize_attention(model, processor, str(small_video), tmp_path / "a.png")
    model.config.id2label = {0: "walking", 1: "running", 2: "jumping"}
    model.config.label2id = {name: index for index, name in model.config.id2label.items()}
    visualize_attention(model, processor, str(small_video), tmp_path / "b.png")
    visualize_attention(model, processor, str(small_video), tmp_path / "c.png", show_prediction=False)
    visualize_attention(TsfModel(tiny_config()).eval(), processor, str(small_video), tmp_path / "d.png")
    first, renamed, without, encoder = (np.asarray(Image.open(tmp_path / f"{name}.png")) for name in "abcd")
    assert first.shape == renamed.shape and without.shape[0] < first.shape[0]  # one title line fewer
    assert encoder.shape == without.shape  # a model without a head predicts nothing
    logits = SimpleNamespace(logits=torch.tensor([[0.0, 2.0, 0.0]]))
    assert _prediction(model, logits) == "Predicted: running (0.79)"  # softmax
    model.config.problem_type = "multi_label_classification"
    assert _prediction(model, logits) == "Predicted: running (0.88)"  # sigmoid
    model.config.problem_type = "regression"
    assert _prediction(model, logits) == "Predicted value: 0, 2, 0"
    differing_rows = np.nonzero((first != renamed).any(axis=(1, 2)))[0]
    assert len(differing_rows) and differing_rows.max() < 80  # only the prediction line changed


def test_frames_are_labelled_with_index_and_time_when_the_rate_is_known(small_video):
    processor = TsfVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    [metadata] = processor(str(small_video), return_metadata=True)["video_metadata"]  # 40 frames at 30 fps
    assert _frame_labels(metadata, 4) == ["frame 0, 0.00 s", "frame 10, 0.33 s", "frame 20, 0.67 s", "frame 30, 1.00 s"]
    frames = np.zeros((40, 8, 8, 3), dtype=np.uint8)
    [metadata] = processor(frames, return_metadata=True)["video_metadata"]  # frames without a frame rate
    assert _frame_labels(metadata, 4) == ["frame 0", "frame 10", "frame 20", "frame 30"]


def test_percentile_contrast_ignores_a_hot_outlier():
    rng = np.random.default_rng(0)
    maps = 1.0 + 0.01 * rng.random((8, 4, 4))  # near-uniform, as a fresh model's rollout
    maps[3, 1, 2] = 100.0  # one hot token
    low, high = contrast_limits(maps)
    assert high < 1.02 and low > 0.99
    outlier = np.ravel_multi_index((3, 1, 2), maps.shape)
    others = np.delete(scale_to_limits(maps, (low, high)).reshape(-1), outlier)
    assert others.std() > 0.2 and others.max() > 0.9 and others.min() < 0.1  # the rest keeps its full contrast
    assert np.delete((maps / maps.max()).reshape(-1), outlier).std() < 1e-4  # what scaling by the maximum leaves
    frames = np.full((8, 32, 32, 3), 128, dtype=np.uint8)
    overlays = overlay_attention(frames, maps)
    assert np.asarray(overlays[0]).std() > 10  # a frame without the outlier still shows its attention
    flat = scale_to_limits(np.ones((2, 2, 2)), contrast_limits(np.ones((2, 2, 2))))
    assert np.array_equal(flat, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="percentiles must be"):
        contrast_limits(maps, (99, 1))


def test_overlay_keeps_the_frame_size_and_uses_the_scale_colours():
    frames = random_frames(2, 24)
    maps = np.random.default_rng(1).random((2, 3, 3))
    overlays = overlay_attention(frames, maps, alpha=1.0)
    assert [image.size for image in overlays] == [(24, 24), (24, 24)]
    scale = heat_colours(np.linspace(0, 1, 1001)).astype(np.int32)
    pixels = np.asarray(overlays[0]).reshape(-1, 3).astype(np.int32)
    assert ((pixels[:, None] - scale[None]) ** 2).sum(-1).min(-1).max() <= 3  # alpha 1: heat colours only
    grey = overlay_attention(frames, maps, alpha=0.0)[0]
    assert np.array_equal(
        np.asarray(grey), np.repeat(np.asarray(Image.fromarray(frames[0]).convert("L"))[..., None], 3, -1)
    )


def test_saved_files_are_atomic_and_get_the_umask_permissions(tmp_path):
    images = render_attention(random_frames(2, 32), np.random.default_rng(1).random((2, 2, 2)), animated=True)
    save_overlay(images, tmp_path / "a.gif")
    save_overlay(images[:1], tmp_path / "b.png")
    umask = os.umask(0)
    os.umask(umask)
    for name in ("a.gif", "b.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
    with Image.open(tmp_path / "b.png") as image:
        assert image.size == images[0].size
    with pytest.raises(ValueError, match="image suffix"):
        save_overlay(images, tmp_path / "c.txt")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.gif", "b.png"]


def test_temporal_attention_layout():
    frames, rows, cols = 3, 2, 2
    weights = random_attention(2 * rows * cols, frames, torch.Generator().manual_seed(1))
    maps = temporal_attention(({"time": weights, "space": None},), (frames, rows, cols), query_frame=2)
    expected = weights.mean(1).view(2, rows, cols, frames, frames)[1, 0, 1, 2]  # video 1, position (0, 1), frame 2
    torch.testing.assert_close(maps[1, :, 0, 1], expected)
    with pytest.raises(ValueError, match="query_frame must be in"):
        temporal_attention(({"time": weights},), (frames, rows, cols), query_frame=3)
