#!/usr/bin/env python
"""Fine-tune a TimeSformer (tsf_hf) for video classification with the `transformers` Trainer.

With no dataset argument it generates the built-in moving-square dataset (direction of motion: only frame order
tells the label) and trains the small from-scratch preset on it, in minutes on a CPU:

    python examples/run_video_classification.py
    python examples/run_video_classification.py --attention_type space_only          # order-blind: stays low
    python examples/run_video_classification.py --train_dir videos/train --validation_dir videos/val \
        --model_name_or_path path/to/tsf-checkpoint --ignore_mismatched_sizes --learning_rate 5e-5 \
        --output_dir outputs/my-model

Every `TrainingArguments` option is available (`--max_steps`, `--bf16`, `--gradient_checkpointing`, ...). The
defaults below are the built-in dataset's recipe (AdamW 1e-3, weight decay 0.05 except on biases, norms and
embeddings, batch 32, 6 epochs, warmup then cosine, gradient clipping 1.0); pass your own for a pretrained model.
"""

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import transformers
from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint
from video_classification_common import (
    BAD_VIDEO_POLICIES,
    BUILTIN_DATASET,
    CONFIG_PRESETS,
    DecodedVideoCache,
    VideoClassificationDataset,
    build_model_and_processor,
    check_videos,
    decoded_cache_dir,
    collate_fn,
    decays,
    load_video_datasets,
    predict_held_out,
    results_table,
    uses_builtin_dataset,
    write_model_card,
)

from tsf_hf.metrics import load_topk_accuracy

logger = logging.getLogger(__name__)

TRAINING_DEFAULTS = {
    "output_dir": "outputs/tsf-moving-square",
    "learning_rate": 1e-3,
    "weight_decay": 0.05,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 32,
    "num_train_epochs": 6,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "max_grad_norm": 1.0,
    "eval_strategy": "no",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 25,
    "remove_unused_columns": False,
    "hub_strategy": "end",
    "report_to": "none",
    "seed": 42,
}
"""`TrainingArguments` defaults of this script (any can be given on the command line)."""


@dataclass
class DataTrainingArguments:
    """Which videos to train and evaluate on, and how they are read and augmented."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": f"Hub or local dataset; `{BUILTIN_DATASET}` (the default when no data is given) generates "
            "the built-in temporal dataset."
        },
    )
    dataset_config_name: str | None = field(default=None)
    train_dir: str | None = field(default=None, metadata={"help": "videofolder of training videos (<label>/*.mp4)."})
    validation_dir: str | None = field(default=None, metadata={"help": "videofolder of validation videos."})
    train_val_split: float = field(default=0.15, metadata={"help": "validation share when there is none."})
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    video_column_name: str = field(default="video")
    label_column_name: str = field(default="label")
    cache_dir: str | None = field(default=None, metadata={"help": "datasets and built-in dataset cache folder."})
    decoded_cache_mb: int = field(default=2048, metadata={"help": "memory for decoded frames (0: none)."})
    decoded_cache_dir: str | None = field(
        default=None,
        metadata={"help": "where decoded splits are kept between runs (default: <cache>/decoded; 'none': nowhere)."},
    )
    on_bad_video: str = field(
        default="skip",
        metadata={
            "help": "a video that cannot be decoded: skip it with a warning naming it, or stop with an error.",
            "choices": list(BAD_VIDEO_POLICIES),
        },
    )
    builtin_num_train: int = field(default=4000)
    builtin_num_validation: int = field(default=1000)
    builtin_num_test: int = field(default=200)
    builtin_seed: int = field(default=0, metadata={"help": "seed of the generated videos."})
    train_short_side_range: list[int] | None = field(
        default=None,
        metadata={
            "help": "training short-side jitter (default: crop x 256/224 .. 320/224; built-in: x 1.0 .. 1.2).",
            "nargs": 2,
        },
    )
    horizontal_flip: bool | None = field(
        default=None, metadata={"help": "random flip in training (default: on, off for the built-in data)."}
    )
    eval_temporal_clips: int = field(default=1)
    eval_spatial_crops: int = field(default=3, metadata={"choices": [1, 3]})
    checkpointing_steps: str | None = field(
        default=None, metadata={"help": "save every N steps, or 'epoch' (shorthand for --save_strategy/--save_steps)."}
    )
    with_tracking: bool = field(default=False, metadata={"help": "log to every installed tracker (--report_to all)."})
    no_prediction: bool = field(default=False, metadata={"help": "skip the held-out pipeline prediction."})


@dataclass
class ModelArguments:
    """Which model to start from."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "pretrained model folder or Hub repo."})
    config_name: str | None = field(
        default=None, metadata={"help": f"from scratch: a preset {CONFIG_PRESETS} or a config path."}
    )
    init_from_vit: str | None = field(
        default=None, metadata={"help": "initialise from ImageNet ViT weights (timm file or transformers ViT folder)."}
    )
    attention_type: str | None = field(default=None, metadata={"help": "space-time scheme of a new model."})
    num_frames: int | None = field(default=None)
    image_size: int | None = field(default=None)
    time_embedding_init_std: float | None = field(
        default=None, metadata={"help": "temporal table std of a new model (default 0.5 for moving-square, else 0)."}
    )
    trust_remote_code: bool = field(default=False)
    ignore_mismatched_sizes: bool = field(default=False)
    token: str | None = field(default=None)


class VideoClassificationTrainer(Trainer):
    """Trainer with no weight decay on the cls / position / time tables either, and this example's model card."""

    card_inputs: tuple | None = None

    def get_decay_parameter_names(self, model) -> list[str]:
        return [name for name in super().get_decay_parameter_names(model) if decays(name)]

    def create_model_card(self, **kwargs) -> None:
        if self.card_inputs is not None and self.is_world_process_zero():
            write_model_card(self.args.output_dir, *self.card_inputs)


def parse_args(argv=None):
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    parser.set_defaults(**TRAINING_DEFAULTS)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    changes = {}
    if data_args.checkpointing_steps == "epoch":
        changes["save_strategy"] = "epoch"
    elif data_args.checkpointing_steps is not None:
        if not data_args.checkpointing_steps.isdigit():
            raise ValueError(
                f"--checkpointing_steps must be an integer or 'epoch', got {data_args.checkpointing_steps!r}"
            )
        changes.update(save_strategy="steps", save_steps=int(data_args.checkpointing_steps))
    if data_args.with_tracking and training_args.report_to in (None, "none", ["none"]):
        changes["report_to"] = "all"
    if changes:
        training_args = dataclasses.replace(training_args, **changes)
    return model_args, data_args, training_args


def main(argv=None):
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", handlers=[logging.StreamHandler(sys.stdout)]
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(min(log_level, logging.WARNING) if training_args.should_log else log_level)
    transformers.utils.logging.set_verbosity(
        min(log_level, logging.WARNING) if training_args.should_log else log_level
    )
    logger.info(f"Training parameters {training_args}")

    last_checkpoint = None
    if os.path.isdir(training_args.output_dir):
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
        if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.info(f"Checkpoint found at {last_checkpoint}; pass --resume_from_checkpoint to continue from it.")
    args = _Namespace(model_args, data_args)
    args.hub_model_id = training_args.hub_model_id
    set_seed(training_args.seed)  # before the model is built, so its initialisation is reproducible
    with training_args.main_process_first(desc="preparing the dataset"):
        dataset, labels = load_video_datasets(args, seed=training_args.seed)
    builtin = uses_builtin_dataset(args)
    model, processor = build_model_and_processor(args, labels, builtin)

    cache = DecodedVideoCache(data_args.decoded_cache_mb, backend=processor.video_backend)
    progress = training_args.local_process_index == 0
    video, label = data_args.video_column_name, data_args.label_column_name
    disk = decoded_cache_dir(args)
    policy = data_args.on_bad_video
    train_split = check_videos(dataset["train"], video, cache, policy, "train", progress, disk)
    eval_split = check_videos(dataset["validation"], video, cache, policy, "validation", progress, disk)
    train_dataset = VideoClassificationDataset(
        train_split, processor, cache, video, label, "train", True, training_args.seed
    )
    eval_dataset = VideoClassificationDataset(eval_split, processor, cache, video, label, "validation", False)

    metric = load_topk_accuracy(keep_in_memory=True)

    def compute_metrics(prediction):
        return metric.compute(predictions=prediction.predictions, references=prediction.label_ids)

    trainer = VideoClassificationTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collate_fn,
        compute_metrics=compute_metrics,
        processing_class=processor,
    )

    resume = training_args.resume_from_checkpoint
    if resume == "latest":
        resume = last_checkpoint
        if resume is None:
            raise ValueError(f"--resume_from_checkpoint latest: no checkpoint-* folder in {training_args.output_dir}")
    train_result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    train_metrics = dict(train_result.metrics, train_samples=len(train_dataset))
    trainer.log_metrics("train", train_metrics)
    trainer.save_metrics("train", train_metrics)
    trainer.save_state()

    eval_metrics = dict(trainer.evaluate(), eval_samples=len(eval_dataset))
    trainer.log_metrics("eval", eval_metrics)
    trainer.save_metrics("eval", eval_metrics)

    results = {
        "eval_top1_accuracy": eval_metrics["eval_top1_accuracy"],
        "eval_top5_accuracy": eval_metrics["eval_top5_accuracy"],
        "eval_samples": len(eval_dataset),
        "train_loss": train_metrics.get("train_loss"),
        "train_steps": trainer.state.global_step,
        "train_runtime_s": round(train_metrics.get("train_runtime", 0.0), 1),
    }
    trainer.card_inputs = (args, results, labels, Path(__file__).name)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="End of training")
    else:
        trainer.create_model_card()
    if trainer.is_world_process_zero():
        print("\n" + results_table(results))
        if not data_args.no_prediction:
            path, truth, predictions = predict_held_out(training_args.output_dir, dataset, video, label, labels)
            guesses = ", ".join(f"{p['label']} {p['score']:.2f}" for p in predictions)
            print(f"\nHeld-out video {path}\n  true label: {truth}\n  predicted:  {guesses}")
        with open(os.path.join(training_args.output_dir, "results_summary.json"), "w") as file:
            json.dump(results, file, indent=2)
    return results


class _Namespace:
    """The model and data arguments as one object, as the shared helpers read them."""

    def __init__(self, *groups):
        for group in groups:
            self.__dict__.update(vars(group))


if __name__ == "__main__":
    main()
