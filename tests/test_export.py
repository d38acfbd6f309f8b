"""Export and compilation: torch.export and ONNX (checked with onnxruntime) with a dynamic batch and frame count,
and torch.compile with a full graph and without recompiling for every new frame count."""

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounter
from conftest import TINY, perturb_
from torch.export import Dim

from tsf_hf import ATTENTION_TYPES, TsfConfig, TsfForVideoClassification


def tiny_model(attention_type: str, num_hidden_layers: int = 2) -> TsfForVideoClassification:
    torch.manual_seed(0)
    config = TsfConfig(**{**TINY, "num_hidden_layers": num_hidden_layers}, attention_type=attention_type, num_labels=5)
    return perturb_(TsfForVideoClassification(config))


def frame_counts(attention_type: str) -> tuple[int, ...]:
    """Frame counts one exported graph must serve. The stride-2 groups of sparse local/global attention pad an odd
    frame count, which is another graph: its exports are made for even counts."""
    return (4, 6, 8) if attention_type == "sparse_local_global" else (4, 3, 6)


def dynamic_frames(attention_type: str) -> Dim:
    if attention_type == "sparse_local_global":
        return 2 * Dim("half_frames", min=1, max=64)
    return Dim("frames", min=1, max=128)


def inputs(batch_size: int, num_frames: int, height: int = 32, width: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(batch_size * 100 + num_frames)
    return torch.randn(batch_size, num_frames, 3, height, width, generator=generator)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_torch_export_with_dynamic_batch_and_frames(attention_type):
    model = tiny_model(attention_type)
    example = inputs(2, frame_counts(attention_type)[0])
    program = torch.export.export(
        model,
        (example,),
        dynamic_shapes={"pixel_values": {0: Dim("batch", min=1, max=64), 1: dynamic_frames(attention_type)}},
    )
    exported = program.module()
    for batch_size, num_frames in [(2, frame_counts(attention_type)[0]), (3, frame_counts(attention_type)[1]),
                                   (1, frame_counts(attention_type)[2])]:
        pixel_values = inputs(batch_size, num_frames)
        with torch.no_grad():
            expected = model(pixel_values).logits
        torch.testing.assert_close(exported(pixel_values).logits, expected, rtol=0, atol=1e-6)


def check_onnx_export(attention_type: str, tmp_path, height: int = 32, width: int = 32) -> None:
    """Exports with a dynamic batch and frame count, then compares onnxruntime with PyTorch on other sizes."""
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = tiny_model(attention_type, num_hidden_layers=1)
    counts = frame_counts(attention_type)
    path = tmp_path / "tsf.onnx"
    program = torch.onnx.export(
        model,
        (inputs(2, counts[0], height, width),),
        dynamo=True,
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_shapes={"pixel_values": {0: Dim("batch", min=1, max=64), 1: dynamic_frames(attention_type)}},
    )
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch_size, num_frames in [(2, counts[0]), (3, counts[1]), (1, counts[2])]:
        pixel_values = inputs(batch_size, num_frames, height, width)
        (logits,) = session.run(["logits"], {"pixel_values": pixel_values.numpy()})
        with torch.no_grad():
            expected = model(pixel_values).logits.numpy()
        np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_onnx_export_matches_pytorch(attention_type, tmp_path):
    check_onnx_export(attention_type, tmp_path)


@pytest.mark.slow
def test_onnx_export_of_padded_sparse_groups(tmp_path):
    """A 5 x 3 patch grid: the local quadrants and global parity groups are padded and masked in the graph."""
    check_onnx_export("sparse_local_global", tmp_path, height=40, width=24)


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_compile_fullgraph_matches_eager(attention_type):
    torch._dynamo.reset()
    model = tiny_model(attention_type, num_hidden_layers=1)
    compiled = torch.compile(model, fullgraph=True)
    pixel_values = inputs(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(compiled(pixel_values).logits, model(pixel_values).logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_compile_with_dynamic_shapes_does_not_recompile_per_frame_count(attention_type):
    """One graph serves every frame count (every even and every odd count for sparse local/global attention, whose
    odd counts are padded) and batch size; sizes 0 and 1 are left out, as torch specialises on them."""
    torch._dynamo.reset()
    model = tiny_model(attention_type, num_hidden_layers=1)
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter, fullgraph=True, dynamic=True)
    if attention_type == "sparse_local_global":
        calls, graphs = [(2, 4), (3, 6), (2, 8), (2, 3), (3, 5), (2, 7)], 2
    else:
        calls, graphs = [(2, 4), (3, 3), (2, 6), (3, 7), (2, 5)], 1
    with torch.no_grad():
        for batch_size, num_frames in calls:
            pixel_values = inputs(batch_size, num_frames)
            torch.testing.assert_close(compiled(pixel_values).logits, model(pixel_values).logits, rtol=0, atol=1e-6)
    assert counter.frame_count == graphs
