"""TimeSformer: space-time attention for video classification (Bertasius et al., ICML 2021)."""

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub import CommitInfo
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_tsf import ATTENTION_SCHEMES, TsfConfig
from .attention_tsf import attention_backend, attention_mask_for, eager_attention_forward
from .grouping_tsf import STEP_GROUPINGS, TokenGrouper


@dataclass
class TsfModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + num_patches * num_frames, hidden_size)`):
        Final-normed tokens: cls, then patch-major / frame-minor (token `1 + n * num_frames + t`). For
        `space_only` the per-frame sequences are averaged over frames first: `(batch_size, 1 + num_patches, hidden_size)`.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The final-normed cls token, the input of the classifier.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        The embeddings and the output of every block (before the final norm), in the layout of
        `last_hidden_state`; for `space_only`, `(batch_size * num_frames, 1 + num_patches, hidden_size)`
        per-frame sequences (frame-minor batch). float32 in a half-precision model with `config.residual_in_fp32`.
    attentions (`tuple(dict[str, torch.FloatTensor])`, *optional*):
        One dict per block, `{step name: weights of shape (batch_size * groups, num_heads, tokens, tokens)}` with
        step names from `config.attention_steps`. Groups and tokens are laid out as `StepGrouping` describes:
        group axes ordered frames, rows, cols; tokens cls first (when the step attends to it), then rows, cols,
        frames.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[dict[str, torch.FloatTensor], ...] | None = None


class TsfPatchEmbeddings(nn.Module):
    """Per-frame patch embedding: Conv2d with kernel = stride = patch size."""

    def __init__(self, config: TsfConfig):
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """`(B * T, C, H, W)` -> `(B * T, D, rows, cols)`."""
        return self.projection(frames)


class TsfEmbeddings(nn.Module):
    """Patch embedding, cls token, spatial and (for schemes that mix frames) temporal position tables."""

    def __init__(self, config: TsfConfig):
        super().__init__()
        height, width = config.image_height_width
        self.table_rows, self.table_cols = height // config.patch_size, width // config.patch_size
        self.interpolation = config.position_embedding_interpolation
        self.scheme = config.scheme
        self.patch_embeddings = TsfPatchEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, 1 + self.table_rows * self.table_cols, config.hidden_size)
        )
        self.time_embeddings = (
            nn.Parameter(torch.zeros(1, config.num_frames, config.hidden_size))
            if not self.scheme.frames_are_sequences
            else None
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def spatial_table(self, rows: int, cols: int) -> torch.Tensor:
        """Patch rows of the spatial table for a `rows x cols` grid, `(1, rows * cols, D)`. Resized as a 2-D grid only
        when the patch count differs from the table's (as the original does)."""
        table = self.position_embeddings[:, 1:]
        if rows * cols == table.shape[1]:
            return table
        grid = table.reshape(1, self.table_rows, self.table_cols, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(rows, cols), mode=self.interpolation, **self._align(self.interpolation))
        return grid.flatten(2).transpose(1, 2)

    def temporal_table(self, num_frames: int) -> torch.Tensor:
        """The temporal table for `num_frames` frames, `(1, num_frames, D)`, resized 1-D when it differs. (Resizing
        to the same length is exactly the identity for both modes, so no branch on the frame count is needed and a
        compiled or exported graph stays dynamic in it.)"""
        mode = "nearest" if self.interpolation == "nearest" else "linear"
        table = self.time_embeddings.transpose(1, 2)
        return F.interpolate(table, size=num_frames, mode=mode, **self._align(mode)).transpose(1, 2)

    @staticmethod
    def _align(mode: str) -> dict:
        return {} if mode == "nearest" else {"align_corners": False}

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """`(B, T, C, H, W)` -> token sequences and the `(frames, rows, cols)` grid of one sequence: `(B, 1 +
        rows*cols*T, D)` (cls, then patch-major / frame-minor) on `(T, rows, cols)`, or, for schemes whose frames are
        independent sequences (no temporal table), `(B * T, 1 + rows*cols, D)` on `(1, rows, cols)`."""
        batch_size, num_frames = pixel_values.shape[:2]
        patches = self.patch_embeddings(pixel_values.flatten(0, 1))
        rows, cols = patches.shape[-2:]
        patches = patches.flatten(2).transpose(1, 2)  # (B*T, N, D)
        cls = (self.cls_token + self.position_embeddings[:, :1]).expand(patches.shape[0], -1, -1)
        tokens = self.dropout(torch.cat([cls, patches + self.spatial_table(rows, cols)], dim=1))
        grid = self.scheme.sequence_grid(num_frames, rows, cols)
        if self.scheme.frames_are_sequences:
            return tokens, grid
        hidden_size = tokens.shape[-1]
        cls = tokens[:batch_size, :1]
        patches = tokens[:, 1:].reshape(batch_size, num_frames, rows * cols, hidden_size).transpose(1, 2)
        patches = self.dropout(patches + self.temporal_table(num_frames).unsqueeze(1))  # (B, N, T, D)
        return torch.cat([cls, patches.reshape(batch_size, -1, hidden_size)], dim=1), grid


class TsfAttention(nn.Module):
    """Multi-head self-attention within the groups of one step, through transformers' attention interface: `qkv` on
    every token (once per token, before grouping), attention within each group, `proj` on each group's output."""

    def __init__(self, config: TsfConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.proj_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, grouper: TokenGrouper, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normed tokens `(B, [1 +] P, D)` (cls first when the step attends to it) -> the projected update of every
        group, `(B * groups, group_length, D)`, and, if asked, the weights `(B * groups, heads, group_length,
        group_length)`."""
        batch_size = hidden_states.shape[0]
        query, key, value = grouper.group_heads(self.qkv(hidden_states), self.num_heads)
        implementation = attention_backend(self.config._attn_implementation, query, self, output_attentions)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        key_padding_mask = grouper.key_padding_mask(batch_size, query.device)
        attention_mask = None
        if key_padding_mask is not None:
            attention_mask = attention_mask_for(implementation, key_padding_mask, grouper.group_length, query.dtype)
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
        )
        attn_output = attn_output.reshape(query.shape[0], grouper.group_length, -1)
        return self.proj_dropout(self.proj(attn_output)), attn_weights if output_attentions else None


class TsfDropPath(nn.Module):
    """Stochastic depth: drops a residual branch for whole samples during training."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        """Zeroes whole samples (dimension 0) with probability `drop_prob` and rescales the rest, in training."""
        if self.drop_prob == 0.0 or not self.training:
            return residual
        keep_prob = 1.0 - self.drop_prob
        mask = residual.new_empty((residual.shape[0],) + (1,) * (residual.ndim - 1)).bernoulli_(keep_prob)
        return residual * mask / keep_prob

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class TsfStepFc(nn.Linear):
    """The extra Linear(D, D) on the update of every attention step but a block's last (the original's
    `temporal_fc`). It starts at zero, so a freshly initialised block acts as its last step alone."""


class TsfAttentionStep(nn.Module):
    """One attention step of a block with its residual: norm -> attention within the step's groups (`qkv`, group,
    attend, `proj`) -> drop path per group (as the original) -> ungroup (cls averaged over its copies) -> extra fc
    (every step but the last) -> residual."""

    def __init__(self, config: TsfConfig, name: str, has_fc: bool, drop_path_rate: float = 0.0):
        super().__init__()
        self.name = name
        self.grouping = STEP_GROUPINGS[name]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = TsfAttention(config)
        self.drop_path = TsfDropPath(drop_path_rate)
        self.fc = TsfStepFc(config.hidden_size, config.hidden_size) if has_fc else None

    def forward(
        self, hidden_states: torch.Tensor, grid: tuple[int, int, int], output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`hidden_states` `(B, 1 + rows * cols * frames, D)` (cls first) on the `(frames, rows, cols)` grid -> the
        same shape, and the step's attention weights when asked."""
        grouper = TokenGrouper(self.grouping, *grid)
        attends_cls = self.grouping.attends_cls
        tokens = hidden_states if attends_cls else hidden_states[:, 1:]
        update, weights = self.attention(self.norm(tokens.to(self.norm.weight.dtype)), grouper, output_attentions)
        update = grouper.ungroup(self.drop_path(update), hidden_states.shape[0])
        if self.fc is not None:
            update = self.fc(update)
        if attends_cls:
            return hidden_states + update, weights
        return torch.cat([hidden_states[:, :1], hidden_states[:, 1:] + update], dim=1), weights


class TsfMLP(nn.Module):
    """fc1 -> activation -> fc2, with dropout after each."""

    def __init__(self, config: TsfConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(hidden_states)))))


class TsfLayer(GradientCheckpointingLayer):
    """A block: the scheme's attention steps in order, then the MLP, each pre-norm with a residual."""

    def __init__(self, config: TsfConfig, drop_path_rate: float):
        super().__init__()
        names = config.attention_steps
        self.steps = nn.ModuleList(
            TsfAttentionStep(config, name, has_fc=index < len(names) - 1, drop_path_rate=drop_path_rate)
            for index, name in enumerate(names)
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = TsfMLP(config)
        self.drop_path = TsfDropPath(drop_path_rate)

    def forward(
        self, hidden_states: torch.Tensor, grid: tuple[int, int, int], output_attentions: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """`hidden_states` `(B, 1 + rows * cols * frames, D)` on the `(frames, rows, cols)` grid -> the same shape,
        and `{step name: attention weights}` when asked."""
        attentions = {} if output_attentions else None
        for step in self.steps:
            hidden_states, weights = step(hidden_states, grid, output_attentions)
            if output_attentions:
                attentions[step.name] = weights
        hidden_states = hidden_states + self.drop_path(self.mlp(self.norm(hidden_states.to(self.norm.weight.dtype))))
        return hidden_states, attentions


TIMESFORMER_SCHEMES = ("divided_space_time", "joint_space_time", "space_only")
"""The schemes `transformers`' Timesformer has (its checkpoints, e.g. `facebook/timesformer-*`, load into tsf)."""

_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "token", "local_files_only", "revision", "subfolder")


def timesformer_block_keys(attention_type: str) -> dict[str, str]:
    """Module names inside a block of `transformers`' Timesformer -> those of `TsfLayer`: a divided block is a
    temporal step then a spatial one, a joint or space-only block one step."""
    if attention_type not in TIMESFORMER_SCHEMES:
        raise ValueError(f"transformers' Timesformer has the schemes {TIMESFORMER_SCHEMES}, got {attention_type!r}")
    attention_step = len(ATTENTION_SCHEMES[attention_type].steps) - 1
    keys = {
        "layernorm_before": f"steps.{attention_step}.norm",
        "attention.attention.qkv": f"steps.{attention_step}.attention.qkv",
        "attention.output.dense": f"steps.{attention_step}.attention.proj",
        "layernorm_after": "norm",
        "intermediate.dense": "mlp.fc1",
        "output.dense": "mlp.fc2",
    }
    if attention_type == "divided_space_time":
        keys.update(
            {
                "temporal_layernorm": "steps.0.norm",
                "temporal_attention.attention.qkv": "steps.0.attention.qkv",
                "temporal_attention.output.dense": "steps.0.attention.proj",
                "temporal_dense": "steps.0.fc",
            }
        )
    return keys


def timesformer_key_mapping(attention_type: str) -> dict[str, str]:
    """`from_pretrained(key_mapping=...)` patterns renaming `transformers`' Timesformer weights (with or without the
    `timesformer.` encoder prefix) to tsf's; embeddings, final norm and classifier share their names."""
    mapping = {
        rf"^(?:timesformer\.)?encoder\.layer\.(\d+)\.{re.escape(source)}\.": rf"tsf.layers.\1.{target}."
        for source, target in timesformer_block_keys(attention_type).items()
    }
    mapping.update({r"^timesformer\.": "tsf.", r"^embeddings\.": "tsf.embeddings.", r"^layernorm\.": "tsf.layernorm."})
    return mapping


class TsfPreTrainedModel(PreTrainedModel):
    """Weight initialisation, saving with `auto_map`, and the attention backends shared by the tsf models."""

    config: TsfConfig
    base_model_prefix = "tsf"
    main_input_name = "pixel_values"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TsfEmbeddings", "TsfLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    model_card_writer = None
    """`(model, folder, repo_id=None, token=None)`: writes the model card of a save that has none (see
    `save_pretrained`, `_upload_modified_files`). tsf_hf installs its card builder on import; a copy of this file
    loaded as remote code has none and keeps transformers' cards."""

    def save_pretrained(self, save_directory: str | os.PathLike, is_main_process: bool = True, *args, **kwargs) -> None:
        """As `PreTrainedModel.save_pretrained`; `auto_map` names both model classes, so `AutoModel` and
        `AutoModelForVideoClassification` load the folder with `trust_remote_code=True` where tsf_hf is absent, and
        a folder without README.md gets a model card (`model_card_writer`)."""
        module = type(self).__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            "AutoModel": f"{module}.TsfModel",
            "AutoModelForVideoClassification": f"{module}.TsfForVideoClassification",
        }
        super().save_pretrained(save_directory, is_main_process, *args, **kwargs)
        writes_here = self.should_save_on_this_rank(is_main_process) and os.path.isdir(save_directory)
        if self.model_card_writer is not None and writes_here:
            self.model_card_writer(self, save_directory)

    def _upload_modified_files(self, working_dir: str | os.PathLike, repo_id: str, *args, **kwargs) -> CommitInfo:
        """As `PushToHubMixin._upload_modified_files`, the upload step of `push_to_hub` and of
        `save_pretrained(push_to_hub=True)`, after `model_card_writer` replaced transformers' blank template card
        when the repo has no card of its own."""
        if self.model_card_writer is not None:
            self.model_card_writer(self, working_dir, repo_id, kwargs.get("token"))
        return super()._upload_modified_files(working_dir, repo_id, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """As `PreTrainedModel.from_pretrained`. A folder or Hub repo of `transformers`' Timesformer (the
        `facebook/timesformer-*` layout) loads too: its config is read as a `TsfConfig` (the fields share names and
        meaning) and its weights renamed through `key_mapping`; loading is then strict, so a checkpoint that does not
        fill the encoder raises rather than leaving random weights (only a new classification head may be missing)."""
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
        try:
            source_config, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        except OSError:
            source_config = {}  # no config file to read here: from_pretrained reports what is missing
        if source_config.get("model_type") != "timesformer":
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        attention_type = source_config.get("attention_type", "divided_space_time")
        if kwargs.get("key_mapping") is not None:
            raise ValueError("key_mapping is set by tsf_hf for transformers Timesformer checkpoints; do not pass one")
        return_loading_info = kwargs.pop("output_loading_info", False)
        model, loading_info = super().from_pretrained(
            pretrained_model_name_or_path,
            *args,
            key_mapping=timesformer_key_mapping(attention_type),
            output_loading_info=True,
            **kwargs,
        )
        unfilled = sorted(key for key in loading_info["missing_keys"] if not key.startswith("classifier."))
        unfilled += sorted(str(entry[0]) for entry in loading_info["mismatched_keys"] if "classifier." not in str(entry[0]))
        if unfilled:
            raise ValueError(
                f"{pretrained_model_name_or_path}: the transformers Timesformer weights do not fill the tsf model "
                f"(missing or mis-shaped: {unfilled[:8]}{' ...' if len(unfilled) > 8 else ''}); convert it with "
                "conversion/convert_transformers_timesformer.py, which names every key"
            )
        return (model, loading_info) if return_loading_info else model

    def _init_weights(self, module: nn.Module) -> None:
        """As the original: truncated normal for linear weights, cls and spatial table; zero linear biases, temporal
        table and every step's extra fc (so a block starts as its last step alone); PyTorch's default for the patch
        convolution."""
        std = self.config.initializer_range
        if isinstance(module, TsfStepFc):
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):  # PyTorch's default, which the original keeps for the patch embedding
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            fan_in = module.weight[0].numel()
            init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, TsfEmbeddings):
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            if module.time_embeddings is not None:
                init.zeros_(module.time_embeddings)


class TsfModel(TsfPreTrainedModel):
    """The TimeSformer encoder: embeddings, blocks, final norm. Outputs `TsfModelOutput`."""

    def __init__(self, config: TsfConfig):
        super().__init__(config)
        self.embeddings = TsfEmbeddings(config)
        depth = config.num_hidden_layers
        drop_path_rates = [index * config.drop_path_rate / max(depth - 1, 1) for index in range(depth)]
        self.layers = nn.ModuleList(TsfLayer(config, rate) for rate in drop_path_rates)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        """The per-frame patch embedding."""
        return self.embeddings.patch_embeddings

    def check_pixel_values(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Validates `(B, T, C, H, W)` input and returns it cast to the model's dtype (cropped to a multiple of the
        patch size when `config.crop_to_patch_multiple`)."""
        config = self.config
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
        if not pixel_values.is_floating_point():
            raise TypeError(
                f"pixel_values must be a floating-point tensor (normalised frames, e.g. from TsfVideoProcessor), "
                f"got dtype {pixel_values.dtype}"
            )
        if pixel_values.ndim != 5:
            raise ValueError(
                f"pixel_values must have shape (batch_size, num_frames, num_channels, height, width), got a "
                f"{pixel_values.ndim}-D tensor of shape {tuple(pixel_values.shape)}"
            )
        batch_size, num_frames, num_channels, height, width = pixel_values.shape
        if num_channels != config.num_channels:
            hint = ""
            if pixel_values.shape[1] == config.num_channels:
                hint = "; it looks like (batch_size, num_channels, num_frames, height, width): use .transpose(1, 2)"
            raise ValueError(
                f"pixel_values must have {config.num_channels} channels in dimension 2 of (batch_size, num_frames, "
                f"num_channels, height, width), got shape {tuple(pixel_values.shape)}{hint}"
            )
        if batch_size == 0 or num_frames == 0:
            raise ValueError(f"pixel_values needs at least one video and one frame, got shape {tuple(pixel_values.shape)}")
        weight = self.embeddings.patch_embeddings.projection.weight
        dispatched = hasattr(self, "_hf_hook") or hasattr(self.embeddings.patch_embeddings.projection, "_hf_hook")
        if pixel_values.device != weight.device and not dispatched:
            raise ValueError(
                f"pixel_values are on device {pixel_values.device} but the model is on {weight.device}; move them "
                f"with pixel_values.to({str(weight.device)!r})"
            )
        patch_size = config.patch_size
        if height < patch_size or width < patch_size:
            raise ValueError(f"frames must be at least {patch_size}x{patch_size} (patch_size), got {height}x{width}")
        if height % patch_size or width % patch_size:
            if not config.crop_to_patch_multiple:
                raise ValueError(
                    f"frame height and width must be multiples of patch_size ({patch_size}), got {height}x{width}; "
                    f"resize the frames or set config.crop_to_patch_multiple=True to crop the remainder"
                )
            pixel_values = pixel_values[..., : height - height % patch_size, : width - width % patch_size]
        return pixel_values.to(weight.dtype)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> TsfModelOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised frames (`TsfVideoProcessor`). Any frame count and any height/width divisible by the patch
            size; position tables are resized to the input.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else config.return_dict
        pixel_values = self.check_pixel_values(pixel_values)
        batch_size, num_frames = pixel_values.shape[:2]

        hidden_states, grid = self.embeddings(pixel_values)
        if config.residual_in_fp32:
            hidden_states = hidden_states.to(torch.promote_types(hidden_states.dtype, torch.float32))
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, attentions = layer(hidden_states, grid, output_attentions=output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attentions,)
        if config.scheme.frames_are_sequences:  # one sequence per frame: average them
            hidden_states = hidden_states.view(batch_size, num_frames, *hidden_states.shape[1:]).mean(1)
        sequence_output = self.layernorm(hidden_states.to(self.layernorm.weight.dtype))
        output = TsfModelOutput(
            last_hidden_state=sequence_output,
            pooler_output=sequence_output[:, 0],
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()


@dataclass
class _LossSettings:
    """What transformers' classification loss reads from a config, without letting it store an inferred problem
    type on the model's config before the labels are checked."""

    num_labels: int
    problem_type: str


def _inferred_problem_type(labels: torch.Tensor, num_labels: int) -> str:
    """transformers' rule: one output is regression, integer labels are single-label, anything else multi-label."""
    if num_labels == 1:
        return "regression"
    if isinstance(labels, torch.Tensor) and not labels.is_floating_point() and labels.dtype != torch.bool:
        return "single_label_classification"
    return "multi_label_classification"


def checked_labels(labels: torch.Tensor, logits: torch.Tensor, problem_type: str) -> torch.Tensor:
    """Checks `labels` against the logits `(B, num_labels)` for `problem_type` (dtype, shape, range) and returns them
    in the dtype the loss takes: class indices as int64 (`-100` is ignored, as in transformers), targets as the logits'
    floating dtype. Raises a `TypeError` / `ValueError` naming the problem rather than letting the loss fail (or, on a
    GPU, assert on the device)."""
    batch_size, num_labels = logits.shape
    if not isinstance(labels, torch.Tensor) or labels.ndim == 0:
        raise TypeError(f"labels must be a tensor with one row per video, got {labels!r}")
    if labels.shape[0] != batch_size:
        raise ValueError(f"labels has {labels.shape[0]} rows for {batch_size} videos")
    if labels.is_complex():
        raise TypeError(f"labels must be real numbers, got dtype {labels.dtype}")
    if problem_type == "single_label_classification":
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(
                f"labels for single-label classification must be integer class indices of shape ({batch_size},), got "
                f"dtype {labels.dtype} and shape {tuple(labels.shape)}; multi-label targets are floats of shape "
                f"({batch_size}, {num_labels}) (and set config.problem_type='multi_label_classification')"
            )
        if labels.shape != (batch_size,):
            raise ValueError(f"labels must have shape ({batch_size},) (one class index per video), got {tuple(labels.shape)}")
        invalid = ((labels < 0) | (labels >= num_labels)) & (labels != -100)
        if invalid.any():
            index = int(invalid.nonzero()[0, 0])
            raise ValueError(
                f"labels[{index}] is {int(labels[index])}, outside the {num_labels} classes [0, {num_labels - 1}] "
                "(-100 marks a video to ignore)"
            )
        return labels.long()
    expected_shape = (batch_size, num_labels)
    if problem_type == "regression" and num_labels == 1:
        expected_shape = (batch_size,) if labels.ndim == 1 else (batch_size, 1)
    if labels.shape != expected_shape:
        hint = ""
        if problem_type == "multi_label_classification":
            hint = f" (one {num_labels}-wide multi-hot row per video"
            hint += "; class indices for single-label classification must be integers)" if labels.ndim == 1 else ")"
        raise ValueError(f"labels for {problem_type} must have shape {expected_shape}, got {tuple(labels.shape)}{hint}")
    targets = labels.to(logits.dtype if logits.is_floating_point() else torch.float32)
    if not torch.isfinite(targets).all():
        raise ValueError(f"labels for {problem_type} contain NaN or infinite values")
    if problem_type == "multi_label_classification" and ((targets < 0) | (targets > 1)).any():
        raise ValueError("labels for multi_label_classification must be targets in [0, 1]")
    return targets


class TsfForVideoClassification(TsfPreTrainedModel):
    """TimeSformer with a linear head on the final-normed cls token. Accepts `(B, T, C, H, W)`, or
    `(B, V, T, C, H, W)` with V views of each video (e.g. 1 clip x 3 crops) whose logits are averaged."""

    def __init__(self, config: TsfConfig):
        super().__init__(config)
        self.tsf = TsfModel(config)
        self.classifier = (
            nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        )
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ImageClassifierOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, [num_views,] num_frames, num_channels, height, width)`):
            Normalised frames. With a views dimension, logits are the mean over a video's views; hidden states and
            attentions are then per view (`batch_size * num_views` first).
        labels (`torch.LongTensor` of shape `(batch_size,)` or `torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Class indices (single-label), multi-hot targets (multi-label) or values (regression, `num_labels == 1`);
            the loss follows `config.problem_type`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        num_views = None
        if isinstance(pixel_values, torch.Tensor) and pixel_values.ndim not in (5, 6):
            raise ValueError(
                f"pixel_values must have shape (batch_size, num_frames, num_channels, height, width) or, with views, "
                f"(batch_size, num_views, num_frames, num_channels, height, width); got a {pixel_values.ndim}-D tensor "
                f"of shape {tuple(pixel_values.shape)}"
            )
        if isinstance(pixel_values, torch.Tensor) and pixel_values.ndim == 6:
            batch_size, num_views = pixel_values.shape[:2]
            pixel_values = pixel_values.flatten(0, 1)
        outputs = self.tsf(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output)
        if num_views is not None:
            logits = logits.view(batch_size, num_views, -1).mean(1)
        loss = None
        if labels is not None:
            problem_type = self.config.problem_type or _inferred_problem_type(labels, logits.shape[-1])
            labels = checked_labels(labels, logits, problem_type)
            loss = self.loss_function(labels, logits, _LossSettings(logits.shape[-1], problem_type))
            self.config.problem_type = problem_type  # as transformers does, once a call was valid
        output = ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


__all__ = ["TsfModel", "TsfForVideoClassification", "TsfPreTrainedModel"]
