"""The folder a conversion writes: processors of the checkpoint's protocol, model card, remote code, Hub upload."""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..configuration_tsf import TsfConfig
from ..model_cards import (
    ABOUT_TIMESFORMER,
    CARD_TAGS,
    PAPER_URL,
    architecture_line,
    card_from_parts,
    usage_and_citation,
)
from ..modeling_tsf import TsfForVideoClassification
from .checkpoint_io import resolve_file
from .output_folder import atomic_output_dir, check_output_dir
from .progress import ConversionProgress
from .zoo import DATASETS, HOWTO100M_CLIPS, DatasetSpec


if TYPE_CHECKING:
    from ..image_processing_tsf import TsfImageProcessor
    from ..video_processing_tsf import TsfVideoProcessor


RELEASED_WEIGHTS_LICENSE = "cc-by-nc-4.0"
"""The licence of the weights the TimeSformer authors released."""


def build_processors(
    config: TsfConfig, dataset: str | None = None, sampling_rate: int | None = None
) -> tuple["TsfVideoProcessor", "TsfImageProcessor"]:
    """The `(TsfVideoProcessor, TsfImageProcessor)` of a checkpoint's evaluation protocol: its frame count and crop,
    the dataset's frame sampling (dense clips at the checkpoint's rate for Kinetics and HowTo100M, placed as the
    original evaluation code placed them, `clip_alignment="start"`: one clip starts at frame 0, several at evenly
    spaced starts from 0; segments for Something-Something-v2), 3 spatial crops for the zoo datasets (the paper's
    1x3 views; HowTo100M: the paper's clips per video, centre crop) and BGR frames without training flips for
    Something-Something-v2. Unknown datasets get uniform sampling and one centre crop."""
    from ..image_processing_tsf import TsfImageProcessor
    from ..video_processing_tsf import TsfVideoProcessor

    height, width = config.image_height_width
    short_side = min(height, width)
    kwargs = {
        "num_frames": config.num_frames,
        "size": {"shortest_edge": short_side},
        "crop_size": {"height": height, "width": width},
    }
    if short_side > 256:
        kwargs["train_short_side_range"] = (short_side, short_side + 64)
    spec = DATASETS.get(dataset) if dataset else None
    if spec is not None:
        kwargs["sampling_strategy"] = spec.sampling_strategy
        kwargs["num_spatial_crops"] = 3
        if spec.bgr:
            kwargs.update(channel_order="bgr", train_flip=False)
        rate = sampling_rate or spec.sampling_rates.get((config.num_frames, short_side))
        if spec.sampling_strategy == "dense":
            kwargs["clip_alignment"] = "start"
            if rate:
                kwargs["sampling_rate"] = rate
        if spec.key == "howto100m":
            kwargs.update(num_spatial_crops=1, num_temporal_clips=HOWTO100M_CLIPS.get(config.num_frames, 1))
    return TsfVideoProcessor(**kwargs), TsfImageProcessor(**kwargs)


def _zoo_shape(config: TsfConfig) -> tuple[int, int]:
    """`(num_frames, side)` as the zoo tables key a checkpoint (side -1 for non-square frames)."""
    height, width = config.image_height_width
    return config.num_frames, height if height == width else -1


def _variant_name(config: TsfConfig) -> str:
    long_range = "L (long range)"
    names = {(8, 224): "base", (16, 448): "HR (high resolution)", (96, 224): long_range, (64, 224): long_range}
    return names.get(_zoo_shape(config), "(custom size)")


def _paper_results(spec: DatasetSpec, config: TsfConfig) -> list[EvalResult]:
    """The paper's top-1 (and top-5, where reported) accuracy of the released checkpoint of this shape."""
    accuracies = spec.results.get(_zoo_shape(config), ())
    names = (("accuracy", "Top-1 accuracy (%)"), ("top_5_accuracy", "Top-5 accuracy (%)"))
    return [
        EvalResult(
            task_type="video-classification",
            dataset_type=spec.card_id,
            dataset_name=spec.name,
            metric_type=metric_type,
            metric_name=f"{metric_name}, {spec.test_protocol}",
            metric_value=value,
            source_name="TimeSformer paper (Bertasius et al., ICML 2021)",
            source_url=PAPER_URL,
        )
        for (metric_type, metric_name), value in zip(names, accuracies)
        if value is not None
    ]


def model_card(
    config: TsfConfig,
    source: str,
    dataset: str | None = None,
    license: str | None = None,
    video_processor: "TsfVideoProcessor | None" = None,
    verification: str | None = None,
    repo_id: str | None = None,
    output_dir: str | os.PathLike | None = None,
    base_model: str | None = None,
    trained_on_dataset: bool = True,
    model_name: str | None = None,
) -> ModelCard:
    """The model card (README.md) of a converted folder, built with `huggingface_hub`'s `ModelCardData`: licence
    (`license`, unset when unknown), `library_name`, `pipeline_tag`, tags, `base_model`, and, when the weights were
    trained on the zoo `dataset` (`trained_on_dataset`), `datasets` and the paper's accuracy for this checkpoint as
    model-index results. The text gives the source, dataset and protocol, the verification result and a usage
    example naming `repo_id` (else `output_dir`)."""
    spec = DATASETS.get(dataset) if dataset else None
    model_name = model_name or f"TimeSformer {_variant_name(config)}" + (f", {spec.name}" if spec else "")
    trained_spec = spec if trained_on_dataset else None
    results = _paper_results(trained_spec, config) if trained_spec else []
    data = ModelCardData(
        model_name=model_name,
        license=license,
        library_name="transformers",
        pipeline_tag="video-classification",
        tags=list(CARD_TAGS),
        base_model=base_model,
        datasets=[trained_spec.card_id] if trained_spec else None,
        eval_results=results or None,
    )
    name = repo_id or (str(output_dir) if output_dir is not None else "path/to/this/folder")
    lines = [
        f"# {model_name}",
        "",
        ABOUT_TIMESFORMER,
        "",
        f"- Converted from: {source}",
        architecture_line(config),
    ]
    if spec is not None and trained_on_dataset:
        lines.append(f"- Dataset: [{spec.name}]({spec.url})")
        result = spec.results.get(_zoo_shape(config))
        if result:
            top1, top5 = result
            lines.append(
                "- Accuracy reported in the paper for this checkpoint "
                f"(top-1 / top-5 %, {spec.test_protocol}): {top1} / {'-' if top5 is None else top5}"
            )
    elif spec is not None:
        lines.append(f"- Classes and protocol of: [{spec.name}]({spec.url}) (the weights are not trained on it)")
    if video_processor is not None:
        lines += _preprocessing_lines(video_processor)
    if verification:
        lines.append(f"- Verification: {verification}")
    lines += ["", "## License", "", _license_text(license)]
    lines += usage_and_citation(name)
    return card_from_parts(data, lines)


def _preprocessing_lines(video_processor: "TsfVideoProcessor") -> list[str]:
    settings = (
        f"{video_processor.num_frames} frames, `{video_processor.sampling_strategy}` sampling"
        + (f" (rate {video_processor.sampling_rate})" if video_processor.sampling_strategy == "dense" else "")
        + f", {video_processor.num_temporal_clips} clip(s) x {video_processor.num_spatial_crops} crop(s), "
        f"{video_processor.channel_order.upper()} frames, mean 0.45 / std 0.225"
    )
    lines = [f"- Preprocessing (`video_preprocessor_config.json`, `preprocessor_config.json`): {settings}."]
    if video_processor.sampling_strategy == "dense" and video_processor.clip_alignment == "start":
        lines.append(
            '- Clip placement: `clip_alignment="start"`, as in the original evaluation code (one clip starts at '
            "the video's first frame, several at evenly spaced starts from it), the protocol behind the accuracy "
            "above. The paper describes the clip in the middle of the video, which is the processor's own "
            'default (`clip_alignment="center"`); pass that to the processor to use it.'
        )
    return lines


def _license_text(license: str | None) -> str:
    if license == RELEASED_WEIGHTS_LICENSE:
        return (
            "The weights were released by the TimeSformer authors under the Creative Commons Attribution-NonCommercial "
            "4.0 International licence (CC BY-NC 4.0): non-commercial use only, with attribution."
        )
    if license is not None:
        return f"The weights are distributed under the `{license}` licence of their source."
    return "No licence was given: the weights keep the licence of the weights they were converted from."


def source_card_facts(model_path: str | os.PathLike, token: str | None = None) -> tuple[str | None, str | None]:
    """`(license, base_model)` of a folder or Hub repo being converted: the licence its model card declares (`None`
    without a card or licence) and, for a Hub repo, its id (a local folder has no Hub id to point to)."""
    base_model = None if Path(model_path).exists() else str(model_path)
    card_file = resolve_file(model_path, "README.md", token)
    if card_file is None:
        return None, base_model
    return ModelCard.load(card_file, ignore_metadata_errors=True).data.license, base_model


def save_converted(
    model: TsfForVideoClassification,
    output_dir: str | os.PathLike,
    processors: tuple["TsfVideoProcessor", "TsfImageProcessor"],
    card: ModelCard,
    overwrite: bool = False,
) -> Path:
    """Writes a complete model folder: `config.json` (with `auto_map` for `AutoConfig`, `AutoModel` and
    `AutoModelForVideoClassification`), `model.safetensors`, the processors' configs
    (`video_preprocessor_config.json`, `preprocessor_config.json`), the remote-code files they need
    (`configuration_tsf.py`, `modeling_tsf.py`, `video_processing_tsf.py`, `image_processing_tsf.py`) and
    `README.md`. The folder is written atomically (`atomic_output_dir`): a non-empty `output_dir` is refused unless
    `overwrite`, which replaces it as a whole; a failed write raises `OSError` naming `output_dir` and leaves no
    partial folder."""
    from safetensors import SafetensorError

    output_dir = check_output_dir(output_dir, overwrite=overwrite)
    # the package registers the tsf classes for auto_map; only the saved class enters it by itself
    model.config.auto_map = {"AutoModel": "modeling_tsf.TsfModel"}
    try:
        with atomic_output_dir(output_dir, overwrite) as folder:
            model.save_pretrained(folder, safe_serialization=True)
            for processor in processors:
                processor.save_pretrained(folder)
            card.save(folder / "README.md")
    except (OSError, SafetensorError) as error:  # safetensors reports a failed write (a full disk) as its own type
        raise OSError(f"could not write {output_dir}: {error}") from error
    return output_dir


def create_hub_repo(repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Creates the Hub model repo `repo_id` if needed; returns its full id (with the user's namespace)."""
    from huggingface_hub import HfApi

    return HfApi(token=token).create_repo(repo_id, exist_ok=True, private=private).repo_id


def push_folder_to_hub(folder: str | os.PathLike, repo_id: str, token: str | None = None) -> str:
    """Uploads `folder` to the Hub model repo `repo_id` (created if needed) in one commit; returns the full repo id."""
    from huggingface_hub import HfApi

    repo_id = create_hub_repo(repo_id, token)
    HfApi(token=token).upload_folder(
        folder_path=str(folder), repo_id=repo_id, commit_message="Upload converted TimeSformer"
    )
    return repo_id


@dataclass
class ConversionResult:
    """A converted model, where it was written, and its measured agreement with the source (`None` when not
    verified; `verification_skipped` says why when verification was asked for but no exact reference exists)."""

    model: TsfForVideoClassification
    dataset: str | None
    output_dir: Path | None = None
    repo_id: str | None = None
    max_abs_difference: float | None = None
    reference: str | None = None
    verification_skipped: str | None = None


def check_conversion_target(
    output_dir: str | os.PathLike | None,
    push_to_hub: str | None,
    inputs: Iterable[str | os.PathLike | None],
    overwrite: bool = False,
) -> None:
    """Refuses, before any work, a conversion whose output would lose work (`check_output_dir`) or an upload without
    an `output_dir` to write the uploaded folder to."""
    if output_dir is None and push_to_hub is not None:
        raise ValueError("push_to_hub needs an output_dir to write the folder that is uploaded")
    if output_dir is not None:
        check_output_dir(output_dir, inputs, overwrite)


def finish_conversion(
    result: ConversionResult,
    output_dir: str | os.PathLike | None,
    push_to_hub: str | None,
    source: str,
    license: str | None,
    progress: ConversionProgress,
    sampling_rate: int | None = None,
    hub_token: str | None = None,
    source_path: str | os.PathLike | None = None,
    trained_on_dataset: bool = True,
    overwrite: bool = False,
) -> ConversionResult:
    """Writes the folder of a converted model (processors, card, weights, code; `save_converted`) and uploads it when
    `push_to_hub` names a repo. `source` and `trained_on_dataset` describe the weights for the card; its licence is
    `license`, else the one the card of `source_path` (a source folder or Hub repo) declares, and its `base_model` is
    `source_path` when that is a Hub repo."""
    if output_dir is None:
        return result
    progress.stage(f"writing {output_dir}")
    base_model = None
    if source_path is not None:
        source_license, base_model = source_card_facts(source_path, hub_token)
        license = license if license is not None else source_license
    processors = build_processors(result.model.config, result.dataset, sampling_rate)
    verification = None
    if result.max_abs_difference is not None:
        verification = (
            f"max |logit difference| to {result.reference} on a random input: {result.max_abs_difference:.2e}."
        )
    if push_to_hub is not None:
        result.repo_id = create_hub_repo(push_to_hub, hub_token)  # the card names the full repo id
    card = model_card(
        result.model.config,
        source,
        result.dataset,
        license,
        processors[0],
        verification,
        repo_id=result.repo_id,
        output_dir=output_dir,
        base_model=base_model,
        trained_on_dataset=trained_on_dataset,
    )
    result.output_dir = save_converted(result.model, output_dir, processors, card, overwrite)
    if result.repo_id is not None:
        progress.stage(f"uploading to {result.repo_id}")
        push_folder_to_hub(output_dir, result.repo_id, token=hub_token)
    return result
