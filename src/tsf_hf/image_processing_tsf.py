"""TimeSformer image processor: the video processor's transforms for videos given as frames."""

from typing import Any

from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import Unpack

from .video_processing_tsf import TsfProcessingMixin, TsfVideoProcessorKwargs


class TsfImageProcessor(TsfProcessingMixin, TorchvisionBackend):
    r"""
    Image processor for TimeSformer, for code that works with image processors: takes videos as frames (a list of
    PIL images or arrays, numpy `(T, H, W, C)`, torch `(T, C, H, W)`, or a list of such videos) and gives exactly
    the numbers of `TsfVideoProcessor` with the same settings (it runs the same code). Unlike the video processor it
    keeps all given frames by default (`do_sample_frames=False`) and does not decode files.
    """

    do_sample_frames = False

    def __init__(self, **kwargs: Unpack[TsfVideoProcessorKwargs]):
        super().__init__(**kwargs)

    def preprocess(self, images: Any, **kwargs: Unpack[TsfVideoProcessorKwargs]) -> BatchFeature:
        """Frames of one video, or a list of videos, to `pixel_values` (see `TsfVideoProcessor.preprocess`)."""
        return super().preprocess(images, **kwargs)

    def _check_input(self, video: Any, name: str) -> None:
        if isinstance(video, (str, bytes, dict)) or hasattr(video, "read") or hasattr(video, "__fspath__"):
            raise TypeError(f"{name}: TsfImageProcessor takes frames, not video files; use TsfVideoProcessor")


__all__ = ["TsfImageProcessor"]
