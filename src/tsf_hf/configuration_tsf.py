"""TimeSformer configuration."""

from dataclasses import dataclass

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN


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
        check(self.initializer_range >= 0.0, "initializer_range", "non-negative")
        check(self.layer_norm_eps > 0.0, "layer_norm_eps", "positive")


__all__ = ["ATTENTION_SCHEMES", "ATTENTION_TYPES", "AttentionScheme", "TsfConfig"]
