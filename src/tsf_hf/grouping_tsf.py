"""How each attention step of a TimeSformer block groups the tokens: the step kinds (`STEP_GROUPINGS`) and the
reshapes between the token sequence and the groups (`TokenGrouper`)."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


# How each attention step splits the patch tokens' (rows, cols, frames) grid into groups that attend within
# themselves. Per axis: "group" (every index is its own group), "token" (the whole axis is inside one group), "block2"
# (two contiguous halves are two groups) or "stride2" (indices of equal parity form a group). Odd sizes of the last two
# are padded by one masked token. `attends_cls`: the cls token is copied into every group and its updates are
# averaged over the groups; steps that do not attend to cls leave it unchanged. A new step kind is one line here.
@dataclass(frozen=True)
class StepGrouping:
    rows: str
    cols: str
    frames: str
    attends_cls: bool = True


STEP_GROUPINGS = {
    "time": StepGrouping(rows="group", cols="group", frames="token", attends_cls=False),
    "space": StepGrouping(rows="token", cols="token", frames="group"),
    "joint": StepGrouping(rows="token", cols="token", frames="token"),
    "local": StepGrouping(rows="block2", cols="block2", frames="token"),
    "global": StepGrouping(rows="stride2", cols="stride2", frames="stride2"),
    "width": StepGrouping(rows="group", cols="token", frames="group"),
    "height": StepGrouping(rows="token", cols="group", frames="group"),
}


GRID_AXES = ("rows", "cols", "frames")
"""Axes of the patch tokens in sequence order: patch-major, frame-minor (token `1 + (row * cols + col) * frames +
frame`; the cls token comes first)."""

GROUP_ORDER = ("frames", "rows", "cols")
"""Order of a step's groups (`(B * groups, ...)` is batch-major, then these axes)."""

TOKEN_ORDER = ("rows", "cols", "frames")
"""Order of the tokens within a group (the sequence order)."""


@dataclass(frozen=True)
class AxisSplit:
    """One grid axis, padded to `groups * tokens` positions, split into `groups` groups of `tokens` positions:
    contiguous blocks when `groups_outer`, interleaved (positions of equal parity together) otherwise."""

    groups: int
    tokens: int
    groups_outer: bool = True

    @staticmethod
    def of(size: int, mode: str) -> "AxisSplit":
        """The split of an axis of `size` positions by a `StepGrouping` mode."""
        if mode == "group":
            return AxisSplit(groups=size, tokens=1)
        if mode == "token" or size == 1:
            return AxisSplit(groups=1, tokens=size)
        half = (size + 1) // 2
        return AxisSplit(groups=2, tokens=half, groups_outer=mode == "block2")

    @property
    def parts(self) -> tuple[tuple[str, int], ...]:
        """`(part, size)` of the two factors of the axis, outer first; part is `"group"` or `"token"`."""
        group, token = ("group", self.groups), ("token", self.tokens)
        return (group, token) if self.groups_outer else (token, group)


class TokenGrouper:
    """Reshapes patch tokens `(B, rows * cols * frames, C)` (patch-major, frame-minor) into the attention groups of
    one step, `(B * groups, tokens, C)`, and back. Each grid axis is viewed as two factors (`AxisSplit`), e.g.
    `rows_group` and `rows_token`; grouping permutes the group factors (in `GROUP_ORDER`) before the token factors
    (in `TOKEN_ORDER`). Odd axes of `block2` / `stride2` steps are padded with one token that `key_padding_mask`
    marks. When the step attends to cls, the cls row (given first) is copied into every group, and its updates are
    averaged over the groups on the way back."""

    def __init__(self, grouping: StepGrouping, num_frames: int, rows: int, cols: int):
        self.attends_cls = grouping.attends_cls
        self.sizes = (rows, cols, num_frames)
        splits = {axis: AxisSplit.of(size, getattr(grouping, axis)) for axis, size in zip(GRID_AXES, self.sizes)}
        self.padded_sizes = tuple(splits[axis].groups * splits[axis].tokens for axis in GRID_AXES)
        self.is_padded = self.padded_sizes != self.sizes
        factors = [(f"{axis}_{part}", size) for axis in GRID_AXES for part, size in splits[axis].parts]
        self.factor_axes = tuple(name for name, _ in factors)
        self.factor_sizes = tuple(size for _, size in factors)
        self.group_axes = tuple(f"{axis}_group" for axis in GROUP_ORDER)
        self.token_axes = tuple(f"{axis}_token" for axis in TOKEN_ORDER)
        self.num_groups = math.prod([splits[axis].groups for axis in GRID_AXES])
        self.num_tokens = math.prod([splits[axis].tokens for axis in GRID_AXES])
        # (B, *factors, C) -> (B, *group axes, *token axes, C), and back
        grouped_axes = ("batch", *self.group_axes, *self.token_axes, "channels")
        self.permutation = self._permutation(("batch", *self.factor_axes, "channels"), grouped_axes)
        self.inverse_permutation = tuple(self.permutation.index(dim) for dim in range(len(self.permutation)))

    @staticmethod
    def _permutation(source_axes: tuple[str, ...], target_axes: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(source_axes.index(axis) for axis in target_axes)

    @property
    def group_length(self) -> int:
        """Tokens of one group as attention sees them: the cls copy (when the step attends to it) and padding
        included."""
        return int(self.attends_cls) + self.num_tokens

    def _factored_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(B, rows * cols * frames, C)` -> `(B, *factor_sizes, C)`, padded where needed (a view when not)."""
        batch_size, _, channels = tokens.shape
        grid = tokens.view(batch_size, *self.sizes, channels)
        if self.is_padded:
            pad = [0, 0]
            for size, padded in zip(reversed(self.sizes), reversed(self.padded_sizes)):
                pad += [0, padded - size]
            grid = F.pad(grid, pad)
        return grid.view(batch_size, *self.factor_sizes, channels)

    def group(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens `(B, rows * cols * frames, C)` -> `(B * groups, tokens, C)` (no cls)."""
        batch_size, _, channels = tokens.shape
        grid = self._factored_grid(tokens).permute(self.permutation)
        return grid.reshape(batch_size * self.num_groups, self.num_tokens, channels)

    def group_heads(self, qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused projections `(B, [1 +] rows * cols * frames, 3 * D)` (cls row first when the step attends to it)
        -> contiguous query, key and value `(B * groups, heads, group_length, D / heads)`, in the layout attention
        kernels read."""
        batch_size, _, channels = qkv.shape
        head_dim = channels // (3 * num_heads)
        cls_qkv, patch_qkv = (qkv[:, :1], qkv[:, 1:]) if self.attends_cls else (None, qkv)
        grid = self._factored_grid(patch_qkv).view(batch_size, *self.factor_sizes, 3, num_heads, head_dim)
        source_axes = ("batch", *self.factor_axes, "qkv", "heads", "head_dim")
        target_axes = ("qkv", "batch", *self.group_axes, "heads", *self.token_axes, "head_dim")
        grid = grid.permute(self._permutation(source_axes, target_axes))
        if cls_qkv is None:
            heads = grid.reshape(3, batch_size * self.num_groups, num_heads, self.num_tokens, head_dim)
            return heads.unbind(0)
        # one copy: the patches into rows 1: of every group, the same cls query, key and value into row 0
        heads = qkv.new_empty(3, batch_size, self.num_groups, num_heads, self.group_length, head_dim)
        heads[..., 1:, :].view(grid.shape).copy_(grid)
        cls_heads = cls_qkv.view(batch_size, 3, num_heads, head_dim).transpose(0, 1)[:, :, None, :, None]
        heads[..., :1, :].copy_(cls_heads.expand(-1, -1, self.num_groups, -1, -1, -1))
        return heads.view(3, batch_size * self.num_groups, num_heads, self.group_length, head_dim).unbind(0)

    def ungroup(self, grouped: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Inverse of grouping: `(B * groups, group_length, C)` -> `(B, [1 +] rows * cols * frames, C)`, padding
        dropped; when the step attends to cls, row 0 is the mean of the groups' cls rows."""
        channels = grouped.shape[-1]
        permuted_shape = [batch_size] + [self.factor_sizes[dim - 1] for dim in self.permutation[1:-1]] + [channels]
        patches = grouped[:, int(self.attends_cls) :].reshape(permuted_shape).permute(self.inverse_permutation)
        if self.is_padded:
            rows, cols, num_frames = self.sizes
            patches = patches.reshape(batch_size, *self.padded_sizes, channels)[:, :rows, :cols, :num_frames]
        if not self.attends_cls:
            return patches.reshape(batch_size, -1, channels)
        # one copy: the patches into rows 1:, the mean of the groups' cls rows into row 0
        tokens = grouped.new_empty(batch_size, 1 + math.prod(self.sizes), channels)
        tokens[:, 1:].view(patches.shape).copy_(patches)
        tokens[:, :1] = grouped[:, :1].view(batch_size, self.num_groups, channels).mean(1, keepdim=True)
        return tokens

    def key_padding_mask(self, batch_size: int, device: torch.device) -> torch.Tensor | None:
        """`(B * groups, group_length)` bool, True for real tokens (cls included); `None` when nothing is padded."""
        if not self.is_padded:
            return None
        real = self.group(torch.ones(1, math.prod(self.sizes), 1, device=device))[..., 0] > 0
        if self.attends_cls:
            real = F.pad(real, (1, 0), value=True)
        return real.repeat(batch_size, 1)


__all__ = ["GRID_AXES", "GROUP_ORDER", "STEP_GROUPINGS", "TOKEN_ORDER", "AxisSplit", "StepGrouping", "TokenGrouper"]
