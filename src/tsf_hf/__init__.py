"""tsf_hf: TimeSformer as a Hugging Face Transformers model.

Importing the package registers the tsf classes with transformers' Auto classes; saved folders also carry the code
(`auto_map`), so they load with `trust_remote_code=True` where tsf_hf is not installed.
"""

from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from .configuration_tsf import ATTENTION_TYPES, VARIANTS, TsfConfig
from .modeling_tsf import TsfForVideoClassification, TsfModel, TsfPreTrainedModel


AutoConfig.register(TsfConfig.model_type, TsfConfig, exist_ok=True)
AutoModel.register(TsfConfig, TsfModel, exist_ok=True)
AutoModelForVideoClassification.register(TsfConfig, TsfForVideoClassification, exist_ok=True)
TsfConfig.register_for_auto_class()
TsfModel.register_for_auto_class("AutoModel")
TsfForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")

__all__ = [
    "ATTENTION_TYPES",
    "VARIANTS",
    "TsfConfig",
    "TsfForVideoClassification",
    "TsfModel",
    "TsfPreTrainedModel",
]
