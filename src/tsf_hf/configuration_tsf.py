"""TimeSformer configuration."""

import contextlib
import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers import GenerationConfig, PreTrainedConfig
from transformers.activations import ACT2FN
from transformers.utils import logging


logger = logging.get_logger(__name__)


@dataclass(frozen=True)
class AttentionScheme:
    """One space-time attention scheme: the attention steps of a block, in order (step kinds are the groupings of
    `modeling_tsf.STEP_GROUPINGS`), and whether every frame is an independent sequence with its own cls and no
    temporal position table (tokens are averaged over frames after the last block). Every step but the last is
    followed by an extra Linear(D, D) (the original's `temporal_fc`)."""

    steps: tuple[str, ...]
    frames_are_sequences: bool = False

    def sequences_per_clip(self, num_frames: int) -> int:
        """Attention sequences one clip of `num_frames` frames is split into."""
        return num_frames if self.frames_are_sequences else 1

    def sequence_grid(self, num_frames: int, rows: int, cols: int) -> tuple[int, int, int]:
        """`(frames, rows, cols)` patch grid of one attention sequence of a clip."""
        return (1 if self.frames_are_sequences else num_frames, rows, cols)


ATTENTION_SCHEMES = {
    "space_only": AttentionScheme(steps=("space",), frames_are_sequences=True),
    "joint_space_time": AttentionScheme(steps=("joint",)),
    "divided_space_time": AttentionScheme(steps=("time", "space")),
    "sparse_local_global": AttentionScheme(steps=("local", "global")),
    "axial": AttentionScheme(steps=("time", "width", "height")),
}
"""The space-time attention schemes of the paper, by `attention_type`."""

ATTENTION_TYPES = tuple(ATTENTION_SCHEMES)
"""The names of the schemes (`TsfConfig.attention_type` values)."""

POSITION_INTERPOLATION_MODES = ("nearest", "bilinear", "bicubic")

VARIANTS = {
    "base": {"num_frames": 8, "image_size": 224},
    "hr": {"num_frames": 16, "image_size": 448},
    "large": {"num_frames": 96, "image_size": 224},
}
"""The paper's variants: base 8x224, high resolution 16x448, long range 96x224 (all ViT-B/16)."""


KEY_ALIASES = {
    "img_size": "image_size",
    "in_chans": "num_channels",
    "embed_dim": "hidden_size",
    "depth": "num_hidden_layers",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "mlp_ratio": "intermediate_size",
    "drop_rate": "hidden_dropout_prob",
    "attn_drop_rate": "attention_probs_dropout_prob",
    "drop_path": "drop_path_rate",
    "num_classes": "num_labels",
    "attn_type": "attention_type",
    "attention_mode": "attention_type",
}
"""Names other implementations (the original's `VisionTransformer`, timm) give to `TsfConfig` fields: refused with
the field's name rather than silently ignored."""

_KEYS_TRANSFORMERS_CONSUMES = {
    "auto_map",
    "model_type",
    "num_labels",
    "torch_dtype",
    "name_or_path",
    "_name_or_path",
    "_commit_hash",
    "output_attentions",
    "attn_implementation",
    "experts_implementation",
    "per_layer_config",
    "_attn_implementation_internal",
    "_experts_implementation_internal",
    *GenerationConfig._get_default_generation_params(),
}
"""Keyword arguments `PreTrainedConfig` itself reads (or that saved config files carry), never reported as unknown."""


def _edit_distance(first: str, second: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two short strings."""
    previous = list(range(len(second) + 1))
    for index, char in enumerate(first, 1):
        current = [index]
        for other_index, other_char in enumerate(second, 1):
            current.append(
                min(previous[other_index] + 1, current[-1] + 1, previous[other_index - 1] + (char != other_char))
            )
        previous = current
    return previous[-1]


@contextlib.contextmanager
def _plain_validation_errors() -> Iterator[None]:
    """Re-raises the strict dataclass's validation errors as the `ValueError` / `TypeError` behind them, so callers
    can catch them as such (and scripts print them as one line)."""
    try:
        yield
    except StrictDataclassError as error:
        cause = error.__cause__
        if isinstance(cause, (ValueError, TypeError)):
            raise cause from None
        raise ValueError(str(error)) from None


def _as_pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@strict
class TsfConfig(PreTrainedConfig):
    r"""
    Configuration of a TimeSformer model (`TsfModel`, `TsfForVideoClassification`). Defaults are the paper's base
    model: ViT-B/16 (768 wide, 12 layers, 12 heads), 8 frames of 224x224, divided space-time attention.

    The frame count and the patch grid always come from the input; `num_frames` and `image_size` only size the
    position tables, which are resized (`position_embedding_interpolation`) when an input differs.

    Args:
        image_size (`int` or `(height, width)`, defaults to 224): frame size the spatial position table is made for.
        patch_size (`int`, defaults to 16): side of the square patches.
        num_channels (`int`, defaults to 3): input channels.
        num_frames (`int`, defaults to 8): frame count the temporal position table is made for.
        hidden_size (`int`, defaults to 768): token width D.
        num_hidden_layers (`int`, defaults to 12): number of blocks.
        num_attention_heads (`int`, defaults to 12): heads of every attention step.
        intermediate_size (`int`, defaults to 3072): MLP width.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation (exact-erf GELU in the original).
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after embeddings, projections and MLP layers.
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on attention probabilities.
        drop_path_rate (`float`, defaults to 0.0): stochastic depth of the last block; block i gets
            `i * drop_path_rate / (num_hidden_layers - 1)` (the released models were trained with 0.1).
        initializer_range (`float`, defaults to 0.02): std of the truncated normal initialisation.
        layer_norm_eps (`float`, defaults to 1e-6): LayerNorm epsilon.
        qkv_bias (`bool`, defaults to `True`): bias in the fused query/key/value projection.
        attention_type (`str`, defaults to `"divided_space_time"`): one of `space_only`, `joint_space_time`,
            `divided_space_time`, `sparse_local_global`, `axial`.
        position_embedding_interpolation (`str`, defaults to `"nearest"`): how position tables are resized for
            inputs of another grid or frame count: the original's legacy `nearest`, or `bilinear` / `bicubic`.
        crop_to_patch_multiple (`bool`, defaults to `False`): crop frames whose height or width is not a multiple
            of `patch_size` (as the original's convolution does) instead of raising an error.
        residual_in_fp32 (`bool`, defaults to `True`): keep the residual stream (the tokens between blocks, and
            `hidden_states`) in float32 when the weights are in a half precision; norms, attention and MLPs still
            run in the weights' precision. In a bfloat16 base model it lowers the logit error by a fifth to a
            third, at no measurable cost in speed.

    Example:

    ```python
    >>> from tsf_hf import TsfConfig, TsfForVideoClassification
    >>> config = TsfConfig.from_variant("hr", attention_type="joint_space_time")
    >>> model = TsfForVideoClassification(config)
    ```"""

    model_type = "tsf"

    image_size: int | list[int] | tuple[int, int] = 224
    patch_size: int = 16
    num_channels: int = 3
    num_frames: int = 8
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    attention_type: str = "divided_space_time"
    position_embedding_interpolation: str = "nearest"
    crop_to_patch_multiple: bool = False
    residual_in_fp32: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        self._check_unknown_keys(kwargs)
        if kwargs.get("num_labels") is not None and kwargs["num_labels"] < 0:
            raise ValueError(f"TsfConfig.num_labels must be >= 0, got {kwargs['num_labels']!r}")
        super().__post_init__(**kwargs)

    @classmethod
    def _check_unknown_keys(cls, kwargs: dict[str, Any]) -> None:
        """Raises for a key that is a near miss (edit distance <= 2) or a known alias of a TimeSformer field, naming
        both; warns once about other keys the config does not know (they are kept as plain attributes, as
        transformers does; keys of transformers' own older configs, e.g. `tie_encoder_decoder`, are among them)."""
        inherited = {field.name for field in dataclasses.fields(PreTrainedConfig)}
        fields = sorted({field.name for field in dataclasses.fields(cls)} - inherited | {"num_labels"})
        for key in sorted(set(kwargs) - _KEYS_TRANSFORMERS_CONSUMES):
            field = KEY_ALIASES.get(key) or next((name for name in fields if _edit_distance(key, name) <= 2), None)
            if field is not None:
                raise TypeError(f"TsfConfig got an unknown key {key!r}: did you mean {field!r}?")
            logger.warning_once(f"TsfConfig does not know the key {key!r}; it is kept as an attribute but unused")

    @property
    def num_labels(self) -> int:
        """Number of classes of a classification head (the length of `id2label`)."""
        return PreTrainedConfig.num_labels.fget(self)

    @num_labels.setter
    def num_labels(self, num_labels: int) -> None:
        if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 0:
            raise ValueError(f"TsfConfig.num_labels must be an integer >= 0, got {num_labels!r}")
        PreTrainedConfig.num_labels.fset(self, num_labels)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "TsfConfig":
        """As `PreTrainedConfig.from_dict`, but field overrides in `kwargs` enter the constructor together with the
        stored values, so related fields (e.g. `hidden_size` and `num_attention_heads`) are validated together."""
        field_names = {field.name for field in dataclasses.fields(cls)}
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in field_names}
        return super().from_dict({**config_dict, **overrides}, **kwargs)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> tuple[dict, dict]:
        """As `PreTrainedConfig.get_config_dict`, but a folder or repo without a config file is an error rather than
        the default configuration."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if not config_dict:
            raise FileNotFoundError(
                f"{pretrained_model_name_or_path}: no config.json found; a tsf_hf model folder needs its config "
                "(save it with save_pretrained, or convert a checkpoint with the scripts in conversion/)"
            )
        if config_dict.get("model_type") == "timesformer":
            config_dict = cls.dict_from_timesformer(config_dict)
        return config_dict, kwargs

    @classmethod
    def dict_from_timesformer(cls, config_dict: dict[str, Any]) -> dict[str, Any]:
        """The config dict of `transformers`' `TimesformerConfig` as a `TsfConfig` dict of the same network: the
        fields share names and meaning; its rates, typed `int` there, become floats."""
        kept = {field.name for field in dataclasses.fields(cls)} | {"num_labels"}
        translated = {key: value for key, value in config_dict.items() if key in kept}
        for rate in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            if rate in translated:
                translated[rate] = float(translated[rate])
        architectures = translated.get("architectures") or []
        translated["architectures"] = [name.replace("Timesformer", "Tsf") for name in architectures] or None
        return translated

    def update(self, config_dict: dict[str, Any]) -> None:
        """Sets several fields at once and validates them together (assigning one field validates it against the
        others immediately); on an invalid combination nothing changes."""
        previous = {key: getattr(self, key) for key in config_dict if hasattr(self, key)}
        try:
            object.__setattr__(self, "_validation_deferred", True)
            for key, value in config_dict.items():
                setattr(self, key, value)
        finally:
            object.__setattr__(self, "_validation_deferred", False)
        try:
            with _plain_validation_errors():
                self.validate()
        except (ValueError, TypeError):
            for key, value in previous.items():
                object.__setattr__(self, key, value)
            raise

    @classmethod
    def from_variant(cls, variant: str, **kwargs) -> "TsfConfig":
        """Config of one of the paper's variants (`base`, `hr`, `large`); `kwargs` override any field, e.g.
        `attention_type`."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        return cls(**{**VARIANTS[variant], **kwargs})

    @property
    def image_height_width(self) -> tuple[int, int]:
        """`image_size` as `(height, width)`."""
        return _as_pair(self.image_size)

    @property
    def scheme(self) -> AttentionScheme:
        """The `AttentionScheme` of `attention_type`."""
        return ATTENTION_SCHEMES[self.attention_type]

    @property
    def attention_steps(self) -> tuple[str, ...]:
        """Names of the attention steps of one block, in order."""
        return self.scheme.steps

    def validate_architecture(self):
        """Rejects invalid values and combinations, naming the field, the value and what is allowed."""
        super().validate_architecture()

        def check(condition: bool, field: str, allowed: str) -> None:
            if not condition:
                raise ValueError(f"TsfConfig.{field} must be {allowed}, got {getattr(self, field)!r}")

        check(self.attention_type in ATTENTION_TYPES, "attention_type", f"one of {ATTENTION_TYPES}")
        check(
            self.position_embedding_interpolation in POSITION_INTERPOLATION_MODES,
            "position_embedding_interpolation",
            f"one of {POSITION_INTERPOLATION_MODES}",
        )
        check(self.hidden_act in ACT2FN, "hidden_act", "an activation known to transformers' ACT2FN")
        positive_fields = ("patch_size", "num_channels", "num_frames", "hidden_size", "num_hidden_layers")
        for field in positive_fields + ("num_attention_heads", "intermediate_size"):
            check(getattr(self, field) > 0, field, "a positive integer")
        check(
            self.hidden_size % self.num_attention_heads == 0,
            "hidden_size",
            f"a multiple of num_attention_heads ({self.num_attention_heads})",
        )
        check(
            isinstance(self.image_size, int) or len(self.image_size) == 2,
            "image_size",
            "an int or a (height, width) pair",
        )
        height, width = self.image_height_width
        check(
            height > 0 and width > 0 and height % self.patch_size == 0 and width % self.patch_size == 0,
            "image_size",
            f"positive and divisible by patch_size ({self.patch_size})",
        )
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            check(0.0 <= getattr(self, field) < 1.0, field, "in [0, 1)")
        check(math.isfinite(self.initializer_range) and self.initializer_range >= 0.0, "initializer_range",
              "finite and non-negative")
        check(math.isfinite(self.layer_norm_eps) and self.layer_norm_eps > 0.0, "layer_norm_eps", "finite and positive")


_VALIDATED_FIELDS = frozenset(field.name for field in dataclasses.fields(TsfConfig)) - frozenset(
    field.name for field in dataclasses.fields(PreTrainedConfig)
)
_strict_init, _strict_setattr = TsfConfig.__init__, TsfConfig.__setattr__
_UNSET = object()


@functools.wraps(_strict_init)
def _init_with_plain_errors(self: TsfConfig, *args: Any, **kwargs: Any) -> None:
    with _plain_validation_errors():
        _strict_init(self, *args, **kwargs)


def _setattr_validated(self: TsfConfig, name: str, value: Any) -> None:
    """Assignment after construction is validated at once (types, allowed values, and the combination with the other
    fields); an invalid value is refused and the old one kept."""
    previous = self.__dict__.get(name, _UNSET)
    with _plain_validation_errors():
        _strict_setattr(self, name, value)
    if name not in _VALIDATED_FIELDS or not self.__dict__.get("_post_init_done") or self.__dict__.get(
        "_validation_deferred"
    ):
        return
    try:
        with _plain_validation_errors():
            self.validate()
    except (ValueError, TypeError) as error:
        object.__setattr__(self, name, previous)
        message = f"{error} (assigned {name}={value!r}; set related fields together with config.update)"
        raise type(error)(message) from None


TsfConfig.__init__ = _init_with_plain_errors
TsfConfig.__setattr__ = _setattr_validated


__all__ = ["ATTENTION_SCHEMES", "ATTENTION_TYPES", "AttentionScheme", "TsfConfig"]
