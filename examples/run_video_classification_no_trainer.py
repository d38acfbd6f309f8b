#!/usr/bin/env python
"""Fine-tune a TimeSformer (tsf_hf) for video classification with Accelerate.

Runs under plain `python`, `accelerate launch` (CPU, one or several GPUs, several machines) and `torchrun`. With no
dataset argument it generates the built-in moving-square dataset and trains the small from-scratch preset on it:

    python examples/run_video_classification_no_trainer.py
    torchrun --nproc_per_node 2 examples/run_video_classification_no_trainer.py --cpu    # 2 CPU processes (gloo)
    python examples/run_video_classification_no_trainer.py --train_dir videos/train --validation_dir videos/val \
        --model_name_or_path path/to/tsf-checkpoint --ignore_mismatched_sizes --learning_rate 5e-5
"""

import argparse
import json
import logging
import math
import os
import time
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, set_seed
from huggingface_hub import HfApi
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import SchedulerType, get_scheduler
from video_classification_common import (
    DecodedVideoCache,
    VideoClassificationDataset,
    add_common_arguments,
    build_model_and_processor,
    check_videos,
    decoded_cache_dir,
    collate_fn,
    load_video_datasets,
    optimizer_groups,
    predict_held_out,
    results_table,
    uses_builtin_dataset,
    write_model_card,
)

from tsf_hf.metrics import load_topk_accuracy

logger = get_logger(__name__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    group = parser.add_argument_group("training")
    group.add_argument("--output_dir", type=str, default="outputs/tsf-moving-square-no-trainer")
    group.add_argument("--per_device_train_batch_size", type=int, default=32)
    group.add_argument("--per_device_eval_batch_size", type=int, default=32)
    group.add_argument("--learning_rate", type=float, default=1e-3)
    group.add_argument("--weight_decay", type=float, default=0.05, help="none on biases, norms and embeddings.")
    group.add_argument("--num_train_epochs", type=int, default=6)
    group.add_argument("--max_train_steps", type=int, default=None, help="overrides --num_train_epochs.")
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--lr_scheduler_type", type=SchedulerType, default="cosine")
    group.add_argument("--num_warmup_steps", type=int, default=None, help="default: 5%% of the optimizer steps.")
    group.add_argument("--max_grad_norm", type=float, default=1.0)
    group.add_argument("--seed", type=int, default=42)
    group.add_argument(
        "--mixed_precision",
        choices=("no", "fp16", "bf16"),
        default=None,
        help="default: accelerate's configuration (no on CPU).",
    )
    group.add_argument("--gradient_checkpointing", action="store_true")
    group.add_argument(
        "--checkpointing_steps", type=str, default=None, help="an integer N (every N steps) or 'epoch'."
    )
    group.add_argument(
        "--resume_from_checkpoint", type=str, default=None, help="a step_N / epoch_N folder, or 'latest'."
    )
    group.add_argument("--with_tracking", action="store_true")
    group.add_argument("--report_to", type=str, default="all")
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", type=str, default=None)
    group.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is available.")
    group.add_argument("--num_threads", type=int, default=None, help="torch CPU threads per process.")
    group.add_argument("--no_prediction", action="store_true", help="skip the held-out pipeline prediction.")
    args = parser.parse_args(argv)
    if (
        args.checkpointing_steps is not None
        and args.checkpointing_steps != "epoch"
        and not args.checkpointing_steps.isdigit()
    ):
        parser.error(f"--checkpointing_steps must be an integer or 'epoch', got {args.checkpointing_steps!r}")
    if (
        args.dataset_name is None
        and (args.train_dir is None) != (args.validation_dir is None)
        and args.train_dir is None
    ):
        parser.error("--validation_dir needs --train_dir")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    accelerator_kwargs = {"log_with": args.report_to, "project_dir": args.output_dir} if args.with_tracking else {}
    accelerator = Accelerator(
        cpu=args.cpu,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        **accelerator_kwargs,
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_warning()
        transformers.utils.logging.set_verbosity_warning()
    else:
        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
    set_seed(args.seed)

    repo_id = None
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        if args.push_to_hub:
            api = HfApi(token=args.token)
            repo_id = api.create_repo(
                args.hub_model_id or Path(args.output_dir).absolute().name, exist_ok=True
            ).repo_id
            with open(os.path.join(args.output_dir, ".gitignore"), "w") as gitignore:
                gitignore.write("step_*\nepoch_*\n")
    accelerator.wait_for_everyone()

    # the built-in dataset is generated by the main process first; the others then find it in the cache
    with accelerator.main_process_first():
        dataset, labels = load_video_datasets(args, seed=args.seed)
    builtin = uses_builtin_dataset(args)
    model, processor = build_model_and_processor(args, labels, builtin)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()

    cache = DecodedVideoCache(args.decoded_cache_mb, backend=processor.video_backend)
    progress = accelerator.is_local_main_process
    disk = decoded_cache_dir(args)
    video = args.video_column_name
    train_split = check_videos(dataset["train"], video, cache, args.on_bad_video, "train", progress, disk)
    eval_split = check_videos(dataset["validation"], video, cache, args.on_bad_video, "validation", progress, disk)
    train_dataset = VideoClassificationDataset(
        train_split, processor, cache, args.video_column_name, args.label_column_name, "train", True, args.seed
    )
    eval_dataset = VideoClassificationDataset(
        eval_split, processor, cache, args.video_column_name, args.label_column_name, "validation", False
    )
    train_dataloader = DataLoader(
        train_dataset, shuffle=True, collate_fn=collate_fn, batch_size=args.per_device_train_batch_size
    )
    eval_dataloader = DataLoader(eval_dataset, collate_fn=collate_fn, batch_size=args.per_device_eval_batch_size)

    optimizer = torch.optim.AdamW(optimizer_groups(model, args.weight_decay), lr=args.learning_rate)
    # scheduler length: computed for the dataloader as it will be after sharding over processes
    batches_per_epoch = math.ceil(len(train_dataloader) / accelerator.num_processes)
    updates_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        args.max_train_steps = args.num_train_epochs * updates_per_epoch
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else round(0.05 * args.max_train_steps)
    lr_scheduler = get_scheduler(
        name=args.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=warmup * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler
    )
    updates_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    args.num_train_epochs = math.ceil(args.max_train_steps / updates_per_epoch)
    checkpointing_steps = (
        int(args.checkpointing_steps) if (args.checkpointing_steps or "").isdigit() else args.checkpointing_steps
    )

    if args.with_tracking:
        config = {k: (v.value if hasattr(v, "value") else v) for k, v in vars(args).items()}
        accelerator.init_trackers("video_classification_no_trainer", config)

    metric = load_topk_accuracy(keep_in_memory=True)
    total_batch_size = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info("***** Running training *****")
    logger.info(f"  Num examples = {len(train_dataset)} (train), {len(eval_dataset)} (validation)")
    logger.info(f"  Num epochs = {args.num_train_epochs}, total batch size = {total_batch_size}")
    num_parameters = accelerator.unwrap_model(model).num_parameters()
    logger.info(f"  Optimization steps = {args.max_train_steps}, parameters = {num_parameters}")
    progress_bar = tqdm(range(args.max_train_steps), disable=not accelerator.is_local_main_process)
    completed_steps, starting_epoch, resume_step = 0, 0, None

    if args.resume_from_checkpoint:
        path = args.resume_from_checkpoint
        if path == "latest":
            folders = [
                f for f in Path(args.output_dir).iterdir() if f.is_dir() and f.name.startswith(("step_", "epoch_"))
            ]
            if not folders:
                raise ValueError(f"--resume_from_checkpoint latest: no step_*/epoch_* folder in {args.output_dir}")
            path = str(max(folders, key=lambda f: f.stat().st_mtime))
        accelerator.print(f"Resumed from checkpoint: {path}")
        accelerator.load_state(path)
        name = Path(path).name
        if name.startswith("epoch_"):
            starting_epoch = int(name.removeprefix("epoch_")) + 1
            completed_steps = starting_epoch * updates_per_epoch
        elif name.startswith("step_"):
            completed_steps = int(name.removeprefix("step_"))
            starting_epoch = completed_steps // updates_per_epoch
            resume_step = (completed_steps % updates_per_epoch) * args.gradient_accumulation_steps
        else:
            raise ValueError(f"a checkpoint folder is named step_N or epoch_N, got {name!r}")
        progress_bar.update(completed_steps)

    start_time = time.time()
    results = {}
    for epoch in range(starting_epoch, args.num_train_epochs):
        model.train()
        train_dataloader.set_epoch(epoch)
        train_dataset.set_epoch(epoch)
        total_loss, loss_batches = 0.0, 0
        batches = train_dataloader
        if epoch == starting_epoch and resume_step:
            batches = accelerator.skip_first_batches(train_dataloader, resume_step)
        for batch in batches:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                loss = outputs.loss
                total_loss += loss.detach().float().item()
                loss_batches += 1
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                progress_bar.update(1)
                completed_steps += 1
                progress_bar.set_postfix(loss=f"{total_loss / loss_batches:.4f}", epoch=epoch)
                if isinstance(checkpointing_steps, int) and completed_steps % checkpointing_steps == 0:
                    accelerator.save_state(os.path.join(args.output_dir, f"step_{completed_steps}"))
            if completed_steps >= args.max_train_steps:
                break

        results = evaluate(model, eval_dataloader, metric, accelerator)
        results["train_loss"] = total_loss / max(loss_batches, 1)
        logger.info(f"epoch {epoch}: {json.dumps(results)}")
        if args.with_tracking:
            accelerator.log({**results, "epoch": epoch, "step": completed_steps}, step=completed_steps)
        if checkpointing_steps == "epoch":
            accelerator.save_state(os.path.join(args.output_dir, f"epoch_{epoch}"))
        if completed_steps >= args.max_train_steps:
            break

    if args.with_tracking:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(args.output_dir, is_main_process=accelerator.is_main_process)
    if accelerator.is_main_process:
        processor.save_pretrained(args.output_dir)
        all_results = {
            **{f"eval_{key}": value for key, value in results.items() if key != "train_loss"},
            "train_loss": results.get("train_loss"),
            "train_steps": completed_steps,
            "train_runtime_s": round(time.time() - start_time, 1),
            "num_processes": accelerator.num_processes,
        }
        with open(os.path.join(args.output_dir, "all_results.json"), "w") as file:
            json.dump(all_results, file, indent=2)
        write_model_card(args.output_dir, args, all_results, labels, Path(__file__).name)
        print("\n" + results_table(all_results))
        if not args.no_prediction:
            path, truth, predictions = predict_held_out(
                args.output_dir, dataset, args.video_column_name, args.label_column_name, labels
            )
            guesses = ", ".join(f"{p['label']} {p['score']:.2f}" for p in predictions)
            print(f"\nHeld-out video {path}\n  true label: {truth}\n  predicted:  {guesses}")
        if args.push_to_hub:
            api.upload_folder(
                repo_id=repo_id,
                folder_path=args.output_dir,
                commit_message="End of training",
                ignore_patterns=["step_*", "epoch_*", ".gitignore"],
            )
            print(f"Pushed to {repo_id}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def evaluate(model, eval_dataloader, metric, accelerator) -> dict:
    """Top-1 / top-5 accuracy over the whole validation split: logits gathered from every process, without the
    samples the last batches repeat to even out the processes."""
    model.eval()
    samples = 0
    for batch in eval_dataloader:
        with torch.no_grad():
            logits = model(pixel_values=batch["pixel_values"]).logits
        logits, references = accelerator.gather_for_metrics((logits, batch["labels"]))
        samples += len(references)
        metric.add_batch(predictions=logits.float().cpu().numpy(), references=references.cpu().numpy())
    results = metric.compute()
    results["samples"] = samples
    model.train()
    return results


if __name__ == "__main__":
    main()
