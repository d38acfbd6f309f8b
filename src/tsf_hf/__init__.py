"""tsf_hf: TimeSformer as a Hugging Face Transformers model.

Importing the package registers the tsf classes with transformers' Auto classes (and a video-classification pipeline
that passes `frame_sampling_rate` on to tsf processors) and gives `save_pretrained` and `push_to_hub` of tsf models a
model card (`model_cards`); saved folders also carry the code (`auto_map`), so they load
with `trust_remote_code=True` where tsf_hf is not installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForVideoClassification, AutoVideoProcessor

from .configuration_tsf import ATTENTION_TYPES, VARIANTS, TsfConfig
from .image_processing_tsf import TsfImageProcessor
from .model_cards import write_model_card
from .modeling_tsf import TsfForVideoClassification, TsfModel, TsfPreTrainedModel
from .pipelines import TsfVideoClassificationPipeline, register_video_classification_pipeline
from .video_processing_tsf import TsfVideoProcessor


AutoConfig.register(TsfConfig.model_type, TsfConfig, exist_ok=True)
AutoModel.register(TsfConfig, TsfModel, exist_ok=True)
AutoModelForVideoClassification.register(TsfConfig, TsfForVideoClassification, exist_ok=True)
TsfConfig.register_for_auto_class()
TsfModel.register_for_auto_class("AutoModel")
TsfForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
AutoVideoProcessor.register(TsfConfig, TsfVideoProcessor, exist_ok=True)
AutoImageProcessor.register(TsfConfig, image_processor_classes={"torchvision": TsfImageProcessor}, exist_ok=True)
TsfVideoProcessor.register_for_auto_class("AutoVideoProcessor")
TsfImageProcessor.register_for_auto_class("AutoImageProcessor")
register_video_classification_pipeline()
TsfPreTrainedModel.model_card_writer = staticmethod(write_model_card)

__all__ = [
    "ATTENTION_TYPES",
    "VARIANTS",
    "TsfConfig",
    "TsfForVideoClassification",
    "TsfImageProcessor",
    "TsfModel",
    "TsfPreTrainedModel",
    "TsfVideoClassificationPipeline",
    "TsfVideoProcessor",
]
