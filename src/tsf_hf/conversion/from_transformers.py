"""`transformers`' `TimesformerForVideoClassification` folders and Hub repos (the `facebook/timesformer-*` layout)."""

import os

from ..modeling_tsf import TsfForVideoClassification
from .checkpoint_io import load_pretrained_weights, load_state_dict_strictly, require_config_file
from .configs import tsf_config_from_transformers
from .key_maps import transformers_to_tsf_state_dict
from .model_folder import ConversionResult, check_conversion_target, finish_conversion
from .progress import conversion_progress
from .verification import timesformer_difference
from .zoo import check_dataset_classes, guess_dataset, resolve_label_names


def convert_transformers_timesformer(
    model_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    dataset: str | None = None,
    label_file: str | os.PathLike | None = None,
    verify: bool = False,
    tolerance: float = 1e-4,
    push_to_hub: str | None = None,
    hub_token: str | None = None,
    license: str | None = None,
    overwrite: bool = False,
) -> ConversionResult:
    """Converts a `transformers` `TimesformerForVideoClassification` (a folder or Hub repo in the
    `facebook/timesformer-*` layout). The weights are read as stored and loaded strictly: a missing, unexpected or
    mis-shaped key is a `ValueError` naming it (where `from_pretrained` would only log it and fill in random values).
    Class names come from its config unless `label_file` is given; `dataset` (default: guessed from the path and
    class count) sets the processor's protocol. `verify` compares logits with the source model. `output_dir`
    receives the folder atomically (a non-empty folder only with `overwrite`, which replaces it). The card's
    `license` defaults to the one the source's model card declares (unset when it has none)."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    check_conversion_target(output_dir, push_to_hub, (model_path, label_file), overwrite)
    writes, uploads = output_dir is not None, push_to_hub is not None
    with conversion_progress("Converting a transformers Timesformer", verify, writes, uploads) as progress:
        progress.stage(f"reading {model_path}")
        require_config_file(model_path, "timesformer", hub_token)
        source_config = TimesformerConfig.from_pretrained(str(model_path), token=hub_token)
        source = TimesformerForVideoClassification(source_config)
        load_state_dict_strictly(source, load_pretrained_weights(model_path, hub_token))
        source.eval()
        progress.stage("building the model")
        num_classes = source_config.num_labels
        if dataset is None:
            dataset = guess_dataset(str(model_path).replace("/", "_"), num_classes)
        check_dataset_classes(dataset, num_classes)
        id2label = resolve_label_names(num_classes, None, label_file, fallback=source_config.id2label)
        config = tsf_config_from_transformers(source_config, id2label)
        model = TsfForVideoClassification(config)
        load_state_dict_strictly(model, *transformers_to_tsf_state_dict(source.state_dict(), config.attention_type))
        model.eval()
        result = ConversionResult(model=model, dataset=dataset)
        if verify:
            progress.stage("verifying against the source")
            result.reference = f"transformers' TimesformerForVideoClassification ({model_path})"
            result.max_abs_difference = timesformer_difference(model, source, result.reference, tolerance)
        return finish_conversion(
            result,
            output_dir,
            push_to_hub,
            source=f"transformers Timesformer `{model_path}`",
            license=license,
            progress=progress,
            hub_token=hub_token,
            source_path=model_path,
            overwrite=overwrite,
        )
