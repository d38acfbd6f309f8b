"""Conversion of TimeSformer weights into `tsf_hf` models.

Three sources are supported, one module each:

- checkpoints of the original implementation (`.pyth` files of its model zoo, or any checkpoint trained with that
  code): `convert_original_checkpoint` (`from_original`);
- `transformers`' `TimesformerForVideoClassification` folders (the `facebook/timesformer-*` Hub layout):
  `convert_transformers_timesformer` (`from_transformers`);
- ImageNet ViT-B/16 weights (timm's `vit_base_patch16_224` layout or a `transformers` `ViTModel` folder), turned into
  a TimeSformer initialisation the way the released models were trained: `convert_imagenet_vit` (`from_vit`).

They share safe, strict checkpoint reading (`checkpoint_io`), the key tables (`key_maps`), configs across formats
(`configs`), the model zoo's datasets (`zoo`), independent references (`verification`), the written folder and its
card (`model_folder`), atomic writing that never replaces an input or a user's folder unasked (`output_folder`),
stage progress (`progress`) and the command-line helpers of the scripts in `conversion/` (`cli`). Adding a
checkpoint format means a `from_<format>` module, its key table in `key_maps`, and a thin script.
"""

from .checkpoint_io import (
    WEIGHT_FILES,
    UnsafeCheckpointError,
    check_state_dict_fits,
    extract_state_dict,
    load_checkpoint_file,
    load_pretrained_weights,
    load_state_dict_strictly,
    require_config_file,
    resolve_file,
)
from .cli import (
    HelpFormatter,
    ImageSizeAction,
    add_conversion_arguments,
    add_image_size_argument,
    add_license_argument,
    conversion_options,
    conversion_parser,
    image_size_from_argument,
    positive_int,
    run_conversion,
)
from .configs import (
    TIMESFORMER_SHARED_FIELDS,
    transformers_timesformer_config,
    tsf_config,
    tsf_config_from_transformers,
)
from .from_original import convert_original_checkpoint, infer_original_config
from .from_transformers import convert_transformers_timesformer
from .from_vit import (
    POSITION_RESIZE_MODES,
    convert_imagenet_vit,
    init_from_imagenet_vit,
    load_imagenet_vit,
    resize_spatial_position_table,
    vit_config_values,
    vit_image_size,
    vit_to_tsf_state_dict,
)
from .key_maps import (
    ORIGINAL_LAYOUT_SCHEMES,
    canonical_vit_state_dict,
    original_to_transformers_state_dict,
    original_to_tsf_state_dict,
    transformers_to_tsf_state_dict,
    tsf_key_to_original,
    tsf_to_transformers_state_dict,
)
from .model_folder import (
    ConversionResult,
    build_processors,
    check_conversion_target,
    create_hub_repo,
    finish_conversion,
    model_card,
    push_folder_to_hub,
    save_converted,
    source_card_facts,
)
from .output_folder import atomic_output_dir, check_output_dir, clean_leftovers
from .progress import ConversionProgress, conversion_progress
from .verification import (
    VerificationError,
    check_difference,
    max_logit_difference,
    timesformer_difference,
    transformers_timesformer_from_original,
    transformers_timesformer_logits,
    verification_input,
    vit_reference_difference,
    vit_reference_unavailable,
)
from .zoo import (
    DATASETS,
    DatasetSpec,
    generic_label_names,
    guess_dataset,
    load_label_names,
    read_label_file,
)


__all__ = [
    "DATASETS",
    "ORIGINAL_LAYOUT_SCHEMES",
    "POSITION_RESIZE_MODES",
    "TIMESFORMER_SHARED_FIELDS",
    "WEIGHT_FILES",
    "ConversionProgress",
    "ConversionResult",
    "DatasetSpec",
    "HelpFormatter",
    "ImageSizeAction",
    "UnsafeCheckpointError",
    "VerificationError",
    "add_conversion_arguments",
    "add_image_size_argument",
    "add_license_argument",
    "atomic_output_dir",
    "build_processors",
    "canonical_vit_state_dict",
    "check_conversion_target",
    "check_difference",
    "check_output_dir",
    "check_state_dict_fits",
    "clean_leftovers",
    "conversion_options",
    "conversion_parser",
    "conversion_progress",
    "convert_imagenet_vit",
    "convert_original_checkpoint",
    "convert_transformers_timesformer",
    "create_hub_repo",
    "extract_state_dict",
    "finish_conversion",
    "generic_label_names",
    "guess_dataset",
    "image_size_from_argument",
    "infer_original_config",
    "init_from_imagenet_vit",
    "load_checkpoint_file",
    "load_imagenet_vit",
    "load_label_names",
    "load_pretrained_weights",
    "load_state_dict_strictly",
    "max_logit_difference",
    "model_card",
    "original_to_transformers_state_dict",
    "original_to_tsf_state_dict",
    "positive_int",
    "push_folder_to_hub",
    "read_label_file",
    "require_config_file",
    "resize_spatial_position_table",
    "resolve_file",
    "run_conversion",
    "save_converted",
    "source_card_facts",
    "timesformer_difference",
    "transformers_timesformer_config",
    "transformers_timesformer_from_original",
    "transformers_timesformer_logits",
    "transformers_to_tsf_state_dict",
    "tsf_config",
    "tsf_config_from_transformers",
    "tsf_key_to_original",
    "tsf_to_transformers_state_dict",
    "verification_input",
    "vit_config_values",
    "vit_image_size",
    "vit_reference_difference",
    "vit_reference_unavailable",
    "vit_to_tsf_state_dict",
]
