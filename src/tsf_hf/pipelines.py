"""transformers' video-classification pipeline, passing `frame_sampling_rate` on to tsf video processors.

The built-in pipeline calls the video processor with only `num_frames`, so `frame_sampling_rate` never reaches it.
Importing tsf_hf makes `TsfVideoClassificationPipeline` the pipeline of the "video-classification" task: for a tsf
video processor, `frame_sampling_rate=r` means dense sampling with `sampling_rate=r` (a clip of `num_frames` frames
`r` frames apart at the processor's `target_fps`, placed by its `clip_alignment`); for any other model it is the
built-in pipeline, unchanged.
"""

from typing import Any

from transformers import VideoClassificationPipeline
from transformers.pipelines import PIPELINE_REGISTRY


TASK = "video-classification"


class TsfVideoClassificationPipeline(VideoClassificationPipeline):
    """`VideoClassificationPipeline` that maps `frame_sampling_rate` onto dense sampling for tsf video processors."""

    def preprocess(self, video: Any, num_frames: int | None = None, frame_sampling_rate: int | None = None):
        processor = self.video_processor
        # a tsf processor loaded as remote code is another class: recognise it by its options
        if frame_sampling_rate is None or getattr(processor, "sampling_strategy", None) is None:
            rate = {} if frame_sampling_rate is None else {"frame_sampling_rate": frame_sampling_rate}
            return super().preprocess(video, num_frames=num_frames, **rate)
        if isinstance(frame_sampling_rate, bool) or not isinstance(frame_sampling_rate, int) or frame_sampling_rate < 1:
            raise ValueError(f"frame_sampling_rate must be an integer >= 1, got {frame_sampling_rate!r}")
        if num_frames is None:
            num_frames = self.model.config.num_frames
        inputs = processor(
            video,
            num_frames=num_frames,
            do_sample_frames=True,
            sampling_strategy="dense",
            sampling_rate=frame_sampling_rate,
            return_tensors="pt",
        )
        return inputs.to(self.dtype)


def register_video_classification_pipeline() -> None:
    """Makes `TsfVideoClassificationPipeline` the pipeline `pipeline("video-classification")` builds (keeping the
    task's models and defaults)."""
    task = PIPELINE_REGISTRY.supported_tasks[TASK]
    # set in place: `register_pipeline` would log an "overwriting" warning at every import of tsf_hf
    PIPELINE_REGISTRY.supported_tasks[TASK] = {**task, "impl": TsfVideoClassificationPipeline}


__all__ = ["TsfVideoClassificationPipeline", "register_video_classification_pipeline"]
