"""Attention rollout and temporal attention maps, and their rendering over frames."""

import numpy as np
import pytest
import torch
from PIL import Image

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification, TsfVideoProcessor
from tsf_hf.visualization import attention_rollout, rollout_maps, temporal_attention, visualize_attention


def tiny_config(attention_type: str = "divided_space_time", image_size: int = 32, layers: int = 2) -> TsfConfig:
    return TsfConfig(
        image_size=image_size, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=64, attention_type=attention_type, num_labels=3,
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
        assert gif.size == (32, 32) and gif.n_frames == 4
    temporal = visualize_attention(
        model, processor, str(small_video), tmp_path / "temporal.png", method="temporal", query_frame=1
    )
    torch.testing.assert_close(temporal.sum(0), torch.ones(4, 4))
    with Image.open(tmp_path / "temporal.png") as strip:
        assert strip.size == (4 * 32, 32)
        # the overlay keeps the frames visible: the strip is neither blank nor only heat colours
        assert np.asarray(strip).std() > 5
    with pytest.raises(ValueError, match="'time' step"):
        joint = TsfForVideoClassification(tiny_config("joint_space_time")).eval()
        visualize_attention(joint, processor, str(small_video), tmp_path / "x.png", method="temporal")


def test_temporal_attention_layout():
    frames, rows, cols = 3, 2, 2
    weights = random_attention(2 * rows * cols, frames, torch.Generator().manual_seed(1))
    maps = temporal_attention(({"time": weights, "space": None},), (frames, rows, cols), query_frame=2)
    expected = weights.mean(1).view(2, rows, cols, frames, frames)[1, 0, 1, 2]  # video 1, position (0, 1), frame 2
    torch.testing.assert_close(maps[1, :, 0, 1], expected)
    with pytest.raises(ValueError, match="query_frame must be in"):
        temporal_attention(({"time": weights},), (frames, rows, cols), query_frame=3)
