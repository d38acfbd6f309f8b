"""Analytical multiply-accumulate (MAC) counts of TimeSformer models.

The count follows the paper's convention: only matrix products are counted, one MAC per multiply-add, i.e. the
patch-embedding convolution, every linear layer (qkv, proj, the extra fc after all attention steps but the last,
the MLP, the classifier) and the two products of attention, QK^T and AV. LayerNorm, softmax, GELU, additions,
averages and position-table resizes are not counted.

In every attention step but the temporal one, each group attends to its own copy of the cls token. The original
implementation (and transformers' port) copies cls before the step's norm, so each copy goes through qkv; tsf_hf
applies qkv once per token and copies only cls's query, key and value into the groups (the same result). Both run
proj on the groups, every cls copy included. `count_macs(..., per_group_qkv=True)` counts the original way, and
reproduces the paper's per-view costs of divided space-time attention to 0.1 GMAC: 195.8 (base, 8x224), 1702.7
(HR, 16x448) and 2379.9 (L, 96x224) GMACs (its "TFLOPs" column is these figures summed over 3 views). The default
counts what tsf_hf runs. Either way a space-only model keeps one cls per frame throughout, and an odd axis split in
two by a sparse local/global step is padded by one masked position, which costs attention and proj like a real
token.

Example:

```python
>>> from tsf_hf import TsfConfig
>>> from tsf_hf.flops import count_macs
>>> config = TsfConfig.from_variant("base", num_labels=400)
>>> round(count_macs(config, per_group_qkv=True).total / 1e9, 1), round(count_macs(config).total / 1e9, 1)
(195.8, 195.7)
```
"""

import argparse
import math
from dataclasses import asdict, dataclass

from .configuration_tsf import ATTENTION_TYPES, TsfConfig, _as_pair
from .grouping_tsf import STEP_GROUPINGS, TokenGrouper


@dataclass(frozen=True)
class StepGroups:
    """How one attention step splits the tokens of one clip: `tokens` tokens (cls included when the step attends to
    it) form `num_groups` groups of `group_size` tokens each (a copy of cls and any padding included)."""

    name: str
    tokens: int
    num_groups: int
    group_size: int

    @property
    def grouped_tokens(self) -> int:
        """Tokens of all groups together, cls copies and padding included."""
        return self.num_groups * self.group_size

    @property
    def token_pairs(self) -> int:
        """Query-key pairs of the step: the entries of its attention maps, summed over groups."""
        return self.num_groups * self.group_size**2


@dataclass(frozen=True)
class MacCount:
    """Multiply-accumulates of one forward pass over one clip (one view), by kind of layer. `attention` is QK^T and
    AV; `fc` is the extra Linear(D, D) after every attention step but the last."""

    patch_embedding: int
    qkv: int
    attention: int
    proj: int
    fc: int
    mlp: int
    head: int

    @property
    def total(self) -> int:
        """All MACs of the pass."""
        return sum(asdict(self).values())

    @property
    def flops(self) -> int:
        """Floating-point operations, counting a MAC as two."""
        return 2 * self.total

    def as_dict(self) -> dict[str, int]:
        """The counts by kind, plus `total`."""
        return {**asdict(self), "total": self.total}


def attention_step_groups(step: str, num_frames: int, grid_height: int, grid_width: int) -> StepGroups:
    """The groups of one attention step (a key of `STEP_GROUPINGS`: `space`, `joint`, `time`, `local`, `global`,
    `width`, `height`) for a sequence of `num_frames` frames of `grid_height` x `grid_width` patches, as
    `TokenGrouper` forms them."""
    if step not in STEP_GROUPINGS:
        raise ValueError(f"step must be one of {tuple(STEP_GROUPINGS)}, got {step!r}")
    grouper = TokenGrouper(STEP_GROUPINGS[step], num_frames, grid_height, grid_width)
    cls_tokens = int(grouper.attends_cls)
    patches = num_frames * grid_height * grid_width
    return StepGroups(step, cls_tokens + patches, grouper.num_groups, grouper.group_length)


def count_macs(
    config: TsfConfig,
    num_frames: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    num_labels: int | None = None,
    per_group_qkv: bool = False,
) -> MacCount:
    """MACs of `TsfForVideoClassification(config)` on one clip of `num_frames` frames of `image_size` (an int or
    `(height, width)`; both default to the config's). `num_labels` defaults to the config's; 0 leaves the head out
    (`TsfModel`). `per_group_qkv` counts qkv on every group's tokens, cls copies and padding included, as the
    original implementation runs it (the paper's convention); by default once per token, as tsf_hf runs it. proj
    always runs on the groups."""
    if not isinstance(config, TsfConfig):
        raise TypeError(f"config must be a TsfConfig, got {type(config).__name__}")
    if config.attention_type not in ATTENTION_TYPES:
        raise ValueError(f"config.attention_type must be one of {ATTENTION_TYPES}, got {config.attention_type!r}")
    num_frames = config.num_frames if num_frames is None else num_frames
    height, width = config.image_height_width if image_size is None else _as_pair(image_size)
    num_labels = config.num_labels if num_labels is None else num_labels
    patch = config.patch_size
    if num_frames < 1 or height < patch or width < patch or num_labels < 0:
        raise ValueError(
            f"need num_frames >= 1, height and width >= patch_size ({patch}) and num_labels >= 0, got "
            f"num_frames={num_frames}, image_size=({height}, {width}), num_labels={num_labels}"
        )
    if (height % patch or width % patch) and not config.crop_to_patch_multiple:
        raise ValueError(
            f"image_size ({height}, {width}) is not a multiple of patch_size ({patch}); set "
            "config.crop_to_patch_multiple=True to crop it"
        )
    grid_height, grid_width = height // patch, width // patch
    patches = grid_height * grid_width
    width_d = config.hidden_size
    # counted per attention sequence: one per clip, or one per frame when frames are independent sequences
    sequences = config.scheme.sequences_per_clip(num_frames)
    sequence_grid = config.scheme.sequence_grid(num_frames, grid_height, grid_width)
    steps = [attention_step_groups(step, *sequence_grid) for step in config.attention_steps]
    grouped_tokens = sequences * sum(step.grouped_tokens for step in steps)
    step_tokens = sequences * sum(step.tokens for step in steps)
    qkv_tokens = grouped_tokens if per_group_qkv else step_tokens
    fc_tokens = sequences * sum(step.tokens for step in steps[:-1])
    token_pairs = sequences * sum(step.token_pairs for step in steps)
    block_tokens = sequences * (1 + math.prod(sequence_grid))
    blocks = config.num_hidden_layers
    return MacCount(
        patch_embedding=num_frames * patches * config.num_channels * patch * patch * width_d,
        qkv=blocks * qkv_tokens * width_d * 3 * width_d,
        attention=blocks * token_pairs * 2 * width_d,
        proj=blocks * grouped_tokens * width_d * width_d,
        fc=blocks * fc_tokens * width_d * width_d,
        mlp=blocks * block_tokens * 2 * width_d * config.intermediate_size,
        head=width_d * num_labels,
    )


def main(argv: list[str] | None = None) -> None:
    """Prints the MACs of a variant and scheme: `python -m tsf_hf.flops --variant hr --attention_type axial`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--variant", default="base", choices=("base", "hr", "large"))
    parser.add_argument("--attention_type", default="divided_space_time", choices=ATTENTION_TYPES)
    parser.add_argument("--num_frames", type=int, default=None, help="frames per clip (default: the variant's)")
    parser.add_argument("--image_size", type=int, default=None, help="frame side (default: the variant's)")
    parser.add_argument("--num_labels", type=int, default=400)
    parser.add_argument("--views", type=int, default=1, help="views per video (the paper's test uses 3)")
    parser.add_argument(
        "--per_group_qkv", action="store_true",
        help="count qkv on every group's cls copy, as the original implementation (and the paper) does",
    )
    args = parser.parse_args(argv)
    config = TsfConfig.from_variant(args.variant, attention_type=args.attention_type)
    count = count_macs(config, args.num_frames, args.image_size, args.num_labels, args.per_group_qkv)
    for name, value in count.as_dict().items():
        print(f"{name:>16}: {value / 1e9:10.3f} GMACs")
    print(f"{f'x {args.views} views':>16}: {args.views * count.total / 1e12:10.3f} TMACs")


if __name__ == "__main__":
    main()
