"""Model cards (README.md) of tsf models, built with `huggingface_hub`'s `ModelCard`: the parts every card shares
(the converters' cards use them too) and the card that `save_pretrained` and `push_to_hub` of a tsf model write where
the folder or the Hub repo has none."""

import json
import os
from collections.abc import Sequence

from huggingface_hub import HfApi, ModelCard, ModelCardData, try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .atomic_files import write_atomically
from .configuration_tsf import TsfConfig
from .modeling_tsf import TsfForVideoClassification, TsfPreTrainedModel


CARD_TAGS = ["tsf_hf", "timesformer", "video-classification"]
PAPER_URL = "https://arxiv.org/abs/2102.05095"
ABOUT_TIMESFORMER = (
    "TimeSformer (Bertasius, Wang and Torresani, *Is Space-Time Attention All You Need for Video Understanding?*, "
    f"ICML 2021, [arXiv:2102.05095]({PAPER_URL})) as a Hugging Face Transformers model "
    "(`tsf_hf`, loadable with `trust_remote_code=True`)."
)
"""The paragraph that says what a card's model is."""

_LISTED_CLASSES = 20


def card_from_parts(data: ModelCardData, lines: Sequence[str]) -> ModelCard:
    """The card with `data` as its metadata (YAML, written by `huggingface_hub`) and `lines` as its text."""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def architecture_line(config: TsfConfig, with_classes: bool = True) -> str:
    """`- Architecture: ...`: depth, width, heads, scheme, clip shape, patch and (`with_classes`) class count."""
    height, width = config.image_height_width
    classes = f", {config.num_labels} classes" if with_classes else ""
    return (
        f"- Architecture: {config.num_hidden_layers} layers, width {config.hidden_size}, "
        f"{config.num_attention_heads} heads, `{config.attention_type}` attention, {config.num_frames} frames of "
        f"{height}x{width}, patch {config.patch_size}{classes}."
    )


def usage_and_citation(name: str, classifier: bool = True) -> list[str]:
    """The `## Usage` section (loading the folder or repo `name` with `trust_remote_code=True`, classifying a video,
    or for an encoder without head (`classifier=False`) taking its features) and the paper's `## Citation`."""
    model_class = "AutoModelForVideoClassification" if classifier else "AutoModel"
    if classifier:
        use = ["    logits = model(**inputs).logits", "print(model.config.id2label[logits.argmax(-1).item()])"]
    else:
        use = ["    features = model(**inputs).pooler_output  # (1, hidden_size): the final-normed cls token"]
    return [
        "",
        "## Usage",
        "",
        "```python",
        "import torch",
        f"from transformers import {model_class}, AutoVideoProcessor",
        "",
        f"processor = AutoVideoProcessor.from_pretrained({json.dumps(name)}, trust_remote_code=True)",
        f"model = {model_class}.from_pretrained({json.dumps(name)}, trust_remote_code=True).eval()",
        'inputs = processor("video.mp4", return_tensors="pt")',
        "with torch.no_grad():",
        *use,
        "```",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@inproceedings{bertasius2021space,",
        "  title = {Is Space-Time Attention All You Need for Video Understanding?},",
        "  author = {Bertasius, Gedas and Wang, Heng and Torresani, Lorenzo},",
        "  booktitle = {Proceedings of the International Conference on Machine Learning (ICML)},",
        "  year = {2021}",
        "}",
        "```",
        "",
    ]


def hub_repo_of(name_or_path: str | None) -> str | None:
    """`name_or_path` (a config's `_name_or_path`) when it is a Hub model repo the model was downloaded from (a valid
    repo id whose `config.json` is in the Hub cache), else `None` (a local folder, a new model)."""
    if not name_or_path or os.path.exists(name_or_path):
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path if isinstance(try_to_load_from_cache(name_or_path, "config.json"), str) else None


def saved_model_card(model: TsfPreTrainedModel, location: str, tags: Sequence[str] = ()) -> ModelCard:
    """The card of `model` saved to the folder, or pushed to the Hub repo, `location`: metadata (`library_name`,
    `pipeline_tag` for a model with a classification head, the tsf tags and `tags`, `base_model` when the model was
    loaded from a Hub repo other than `location`) and the architecture, classes, source and usage."""
    config = model.config
    classifier = isinstance(model, TsfForVideoClassification)
    base_model = hub_repo_of(config._name_or_path)
    base_model = base_model if base_model != location else None
    model_name = os.path.basename(os.path.normpath(location)) or location
    data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag="video-classification" if classifier else None,
        tags=list(dict.fromkeys([*CARD_TAGS, *tags])),
        base_model=base_model,
    )
    lines = [f"# {model_name}", "", ABOUT_TIMESFORMER, "", architecture_line(config, classifier)]
    if classifier:
        names = [config.id2label[index] for index in sorted(config.id2label)]
        listed = ", ".join(f"`{name}`" for name in names[:_LISTED_CLASSES])
        more = f" and {len(names) - _LISTED_CLASSES} more" if len(names) > _LISTED_CLASSES else ""
        lines.append(f"- Classes ({len(names)}): {listed}{more}.")
    else:
        lines.append("- The encoder alone (no classification head): it gives video features.")
    if base_model is not None:
        lines.append(f"- Base model: [{base_model}](https://huggingface.co/{base_model})")
    lines += [
        "",
        "No licence, training data or evaluation results are recorded here yet; add them to this card (its metadata "
        "takes `license`, `datasets` and `model-index`).",
    ]
    lines += usage_and_citation(location, classifier)
    return card_from_parts(data, lines)


def write_model_card(
    model: TsfPreTrainedModel,
    folder: str | os.PathLike,
    repo_id: str | None = None,
    token: bool | str | None = None,
) -> None:
    """Writes `saved_model_card` as `folder`/README.md, atomically, where there is no card to keep: for a saved
    folder (`repo_id` None), when the folder has no README.md (the card takes the model's `model_tags`); for an
    upload to the Hub repo `repo_id`, when the repo has none (`folder` then holds transformers' blank template, whose
    tags, the model's and the upload's, the card keeps)."""
    path = os.path.join(os.fspath(folder), "README.md")
    if repo_id is None:
        if os.path.exists(path):
            return
        card = saved_model_card(model, os.fspath(folder), model.model_tags or ())
    else:
        if HfApi(token=token).file_exists(repo_id, "README.md"):
            return
        tags = (ModelCard.load(path).data.tags or []) if os.path.exists(path) else []
        card = saved_model_card(model, repo_id, tags)
    write_atomically(path, lambda file: file.write(str(card).encode("utf-8")))


__all__ = [
    "ABOUT_TIMESFORMER",
    "CARD_TAGS",
    "PAPER_URL",
    "architecture_line",
    "card_from_parts",
    "hub_repo_of",
    "saved_model_card",
    "usage_and_citation",
    "write_model_card",
]
