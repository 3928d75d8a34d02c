"""The training recipe, one readable function per step: LLaVA projector alignment (`align`: only the projector
learns) and LoRA instruction tuning (`finetune`: LoRA on the language model, optionally the vision tower, plus the
projector in its own optimizer group), with DeepSpeed ZeRO-3, gradient checkpointing and FlashAttention-2 or SDPA.

Run on every rank: `torchrun --nproc_per_node G -m ldrt_hpc.train --config CFG` (or the submitit job of
`ldrt-hpc train`). Every start resumes from the newest complete checkpoint of the unfinished phase; a finished
phase (its DONE file) is skipped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..llm import attention_kernel
from . import checkpoints
from .config import PhaseConfig, TrainConfig, load_train
from .data import SPLIT_FILE, BatchOrder, InstructionDataset, collate, held_out_papers, load_examples
from .models import LANGUAGE_MODEL, PROJECTOR, VISION_TOWER, build_flavour, load_checkpoint, parameter_count
from .stopping import REQUEUE, StopWatch
from .export import write_outputs
from .trainlog import TrainLog

log = logging.getLogger("ldrt_hpc.train")
DONE = "DONE"
REQUEUE_FILE = "REQUEUE"
"""Written in the phase folder when a run stopped to be requeued."""
REQUEUE_ENV = "LDRT_REQUEUE_FILE"
"""Also written to this path when set (jobs/finetune.sbatch and .pbs set it, then requeue when it exists)."""
LM_PROJECTIONS = r".*{tower}.*\.({names})$"


@dataclass
class Ranks:
    rank: int
    world: int
    local_rank: int


def init_distributed() -> Ranks:
    """torch.distributed from the environment torchrun (or the submitit job, see ldrt_hpc/launch/train.py) set:
    NCCL on GPUs, gloo on CPUs (DeepSpeed picks gloo there by itself)."""
    import deepspeed
    import torch

    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    return Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))


def accumulation_steps(phase: PhaseConfig, world: int) -> int:
    """global batch = per-device batch x ranks x accumulation: the accumulation that makes it exact, or an error."""
    per_step = phase.per_device_batch_size * world
    if phase.global_batch_size % per_step:
        raise ValueError(f"global_batch_size {phase.global_batch_size} is not a multiple of per_device_batch_size "
                         f"{phase.per_device_batch_size} x {world} ranks = {per_step}")
    return phase.global_batch_size // per_step


def deepspeed_config(cfg: TrainConfig, phase: PhaseConfig, world: int) -> dict[str, Any]:
    """The DeepSpeed config, generated from the typed config. It has no `optimizer` section on purpose: the recipe
    builds AdamW with its two lr groups itself (a DeepSpeed-built optimizer would have one)."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage, "overlap_comm": True, "contiguous_gradients": True}
    if cfg.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True, stage3_param_persistence_threshold=1e4)
    return {
        "train_batch_size": phase.global_batch_size,
        "train_micro_batch_size_per_gpu": phase.per_device_batch_size,
        "gradient_accumulation_steps": accumulation_steps(phase, world),
        "gradient_clipping": phase.max_grad_norm,
        "bf16": {"enabled": cfg.precision == "bf16"},
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def cosine_with_warmup(total_steps: int, warmup_ratio: float):
    """lr multiplier per optimizer step: linear warm-up over ceil(3 %) of the steps, then cosine to zero."""
    warmup = math.ceil(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


# --------------------------------------------------------------------------------------------------------------
# the model of a phase


def base_model_dir(cfg: TrainConfig) -> Path:
    """The model the run starts from: the checkpoint path, or the flavour saved once (by rank 0) so that every rank,
    every restart and the evaluation load the very same weights."""
    return cfg.model.path or cfg.output_dir / "base-model"


RUN_FILE = "run.json"
NOT_SHAPING = {"resources": True, "resource_class": True, "checkpoint": True, "log_every": True,
               "data": {"num_workers"}}
"""Settings that do not change what is learned: a restart may change them (more time, another site)."""


def check_same_run(cfg: TrainConfig, ranks: Ranks) -> None:
    """An output folder belongs to one run: a start whose model, data or recipe differ from those the folder was
    started with is refused (resuming it would mix two runs, or skip phases that were DONE with other settings)."""
    import torch.distributed as dist

    from ..config import to_plain

    shaping = cfg.model_dump(mode="json", exclude=NOT_SHAPING)
    path = cfg.output_dir / RUN_FILE
    # every rank checks (a rank that raised alone would leave the others waiting in a collective)
    if path.is_file() and json.loads(path.read_text())["settings"] != shaping:
        old = json.loads(path.read_text())["settings"]
        changed = sorted(k for k in set(old) | set(shaping) if old.get(k) != shaping.get(k))
        raise ValueError(f"{cfg.output_dir} holds a training run with other settings ({', '.join(changed)} "
                         "differ): choose a new output_dir, or remove the folder to start over")
    dist.barrier()
    if ranks.rank == 0 and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": shaping, "config": to_plain(cfg)}, indent=1) + "\n")


def save_flavour(cfg: TrainConfig, ranks: Ranks) -> None:
    import torch.distributed as dist

    target = base_model_dir(cfg)
    if cfg.model.flavour and ranks.rank == 0 and not (target / "config.json").is_file():
        loaded = build_flavour(cfg.model.flavour, cfg.model.kind, cfg.seed, cache_dir=cfg.output_dir / "cache")
        tmp = target.with_name(f".{target.name}.tmp")
        loaded.model.save_pretrained(tmp)
        loaded.processor.save_pretrained(tmp)
        tmp.rename(target)
    dist.barrier()


def lora_pattern(settings) -> str:
    """A regex on module names: the language model's projections, and the vision tower's only when asked (plain
    names such as 'q_proj' would also catch CLIP's attention by accident)."""
    names = "|".join(settings.target_modules)
    pattern = LM_PROJECTIONS.format(tower=LANGUAGE_MODEL, names=names)
    if settings.vision_tower:
        pattern = f"({pattern})|{LM_PROJECTIONS.format(tower=VISION_TOWER, names='q_proj|k_proj|v_proj|out_proj|fc1|fc2')}"
    return pattern


def prepare(cfg: TrainConfig, phase_name: str, attention: str):
    """The model of a phase with the right parameters trainable, and the optimizer groups."""
    import torch

    # bf16 straight away (DeepSpeed would cast anyway): half the host memory per rank while loading
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float32
    loaded = load_checkpoint(base_model_dir(cfg), dtype=dtype, attention=attention)
    model = loaded.model
    if phase_name == "finetune" and "align" in cfg.phases:
        load_projector(model, cfg.output_dir / "align" / "projector.safetensors")
    model.requires_grad_(False)
    phase = cfg.phase(phase_name)
    if phase_name == "finetune":
        from peft import LoraConfig, get_peft_model

        settings = phase.lora
        lora = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                          target_modules=lora_pattern(settings), bias="none")
        # autocast_adapter_dtype=False: adapters keep the model's dtype (mixed dtypes break ZeRO-3's defragment)
        model = get_peft_model(model, lora, autocast_adapter_dtype=False)
    projector = [p for n, p in model.named_parameters() if f"{PROJECTOR}." in n]
    for parameter in projector:
        parameter.requires_grad_(True)
    if phase_name == "align":
        groups = [{"params": projector, "lr": phase.lr, "name": "projector"}]
    else:
        adapters = [p for n, p in model.named_parameters() if "lora_" in n]
        for parameter in adapters:
            parameter.requires_grad_(True)
        groups = [{"params": adapters, "lr": phase.lr, "name": "lora"},
                  {"params": projector, "lr": phase.projector_lr, "name": "projector"}]
    if cfg.gradient_checkpointing:  # non-reentrant: works with a frozen embedding (no input grads needed)
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.config.text_config.use_cache = False  # the one LLaVA's language model reads
    return model, loaded.processor, groups


def load_projector(model, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path}: the align phase's projector is missing (is the align phase done?)")
    weights = load_file(path)
    getattr(model.model, PROJECTOR).load_state_dict(weights)


# --------------------------------------------------------------------------------------------------------------
# one phase


def train(config_path: str | os.PathLike, on_requeue: Callable[[], None] | None = None) -> dict[str, Any]:
    """All phases of a config on this rank; returns what happened (finished, or stopped for a requeue).
    `on_requeue`: called on rank 0 after the checkpoint when the run stops to be continued (the launcher's way to
    requeue the job; without one, the REQUEUE files are the request)."""
    logging.basicConfig(level=os.environ.get("LDRT_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    # DeepSpeed calls torch.distributed functions torch 2.13 deprecates: one warning per call would flood the log
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.distributed")
    cfg = load_train(config_path)
    ranks = init_distributed()
    check_same_run(cfg, ranks)
    save_flavour(cfg, ranks)
    # once per process: a second StopWatch would take the first one's handler for submitit's
    watch = StopWatch(cfg.checkpoint.stop_before_limit_s)
    if watch.deadline is not None and watch.deadline <= time.time() and ranks.rank == 0:
        log.warning("the job's deadline minus checkpoint.stop_before_limit_s (%d s) has already passed: every start "
                    "will do one step and requeue; ask for more time or lower stop_before_limit_s",
                    cfg.checkpoint.stop_before_limit_s)
    summary: dict[str, Any] = {"phases": {}}
    for phase_name in cfg.phases:
        folder = cfg.output_dir / phase_name
        if agreed(ranks, (folder / DONE).is_file()):
            summary["phases"][phase_name] = json.loads((folder / DONE).read_text())
            continue
        result = run_phase(cfg, phase_name, ranks, watch, on_requeue)
        summary["phases"][phase_name] = result
        if result["stopped"]:
            summary["stopped"] = result["stopped"]
            break
    return summary


def run_phase(cfg: TrainConfig, phase_name: str, ranks: Ranks, watch: StopWatch, on_requeue=None) -> dict[str, Any]:
    """One phase on this rank: build, resume, train to the end (then write the outputs) or to a stop."""
    import torch

    phase, folder = cfg.phase(phase_name), cfg.output_dir / phase_name
    attention = attention_kernel(cfg.model.attention)
    torch.manual_seed(cfg.seed)
    model, processor, groups = prepare(cfg, phase_name, attention)
    torch.manual_seed(cfg.seed + 1000 * ranks.rank + 1)  # weights built alike on every rank; dropout differs by rank
    examples = load_examples(cfg.data)
    order, total = schedule(cfg, phase, examples, ranks)
    trainable = sum(p.numel() for group in groups for p in group["params"])  # before ZeRO-3 partitions them
    engine = make_engine(cfg, phase, model, groups, total, ranks)
    step = resume(engine, folder / "checkpoints", ranks)
    if ranks.rank == 0:
        log.info("%s: %d samples, %d steps (%d per epoch), global batch %d = %d per device x %d ranks x %d "
                 "accumulation, %s attention, %s, %d parameters (%d trainable), resuming at step %d",
                 phase_name, len(examples), total, order.steps_per_epoch, phase.global_batch_size,
                 phase.per_device_batch_size, ranks.world, order.accumulation, attention, cfg.precision,
                 parameter_count(model), trainable, step)
        (folder / REQUEUE_FILE).unlink(missing_ok=True)
    dataset = InstructionDataset(examples, processor, cfg.data.max_length)
    trainlog = TrainLog(folder / "train_log.csv", [g["name"] for g in groups], enabled=ranks.rank == 0, resume_at=step)
    stopped = loop(engine, dataset, order, processor.tokenizer.pad_token_id, cfg, step, total, ranks, trainlog, watch,
                   folder, on_requeue)
    try:
        if stopped:
            return {"stopped": stopped, "step": read_step(folder / "checkpoints")}
        return finish(engine, cfg, phase_name, processor, ranks, trainlog, total)
    finally:
        release(engine)


def release(engine) -> None:
    """Free the phase's engine (ZeRO-3 hooks, partitions, optimizer) before the next phase builds its own."""
    import gc

    import torch

    if hasattr(engine, "destroy"):
        engine.destroy()
    del engine
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def schedule(cfg: TrainConfig, phase: PhaseConfig, examples, ranks: Ranks) -> tuple[BatchOrder, int]:
    """The batch order and the number of optimizer steps of a phase."""
    order = BatchOrder(tuple(e.length_hint for e in examples), phase.per_device_batch_size, ranks.world,
                       accumulation_steps(phase, ranks.world), cfg.seed, cfg.data.group_by_length)
    if order.steps_per_epoch == 0:
        raise ValueError(f"{len(examples)} training samples do not fill one optimizer step of "
                         f"{phase.global_batch_size} samples")
    return order, phase.max_steps or max(1, int(order.steps_per_epoch * phase.epochs))


def make_engine(cfg: TrainConfig, phase: PhaseConfig, model, groups, total: int, ranks: Ranks):
    """DeepSpeed around the recipe's own AdamW (its lr groups intact) and warm-up + cosine schedule."""
    import deepspeed
    import torch

    optimizer = torch.optim.AdamW(groups, weight_decay=phase.weight_decay, betas=(0.9, 0.999))
    factor = cosine_with_warmup(total, phase.warmup_ratio)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, config=deepspeed_config(cfg, phase, ranks.world),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, factor))
    return engine


def finish(engine, cfg: TrainConfig, phase_name: str, processor, ranks: Ranks, trainlog: TrainLog, total: int):
    """The phase's outputs, its plot and its DONE file (the phase is then skipped by every later start)."""
    import torch.distributed as dist

    folder = cfg.output_dir / phase_name
    full_state = consolidated(engine, cfg)
    failure, result = None, {"stopped": None, "steps": total}
    if ranks.rank == 0:  # rank 0 writes while the others wait: its failure must reach them, not leave them hanging
        try:
            result.update(write_outputs(full_state, engine.module, cfg, phase_name, processor, base_model_dir(cfg)))
            if result.get("merged"):
                record = {"work_dir": str(cfg.data.work_dir or ""), "eval_papers": held_out_papers(cfg.data)}
                (Path(result["merged"]) / SPLIT_FILE).write_text(json.dumps(record, indent=1) + "\n")
            trainlog.plot(folder / "loss.png")
            (folder / DONE).write_text(json.dumps(result, indent=1) + "\n")
        except Exception as exc:  # noqa: BLE001  (re-raised below on every rank)
            failure = f"{type(exc).__name__}: {exc}"
    failure = agreed(ranks, failure)
    if failure:
        raise RuntimeError(f"writing the {phase_name} outputs failed on rank 0 (the last checkpoint is kept: a "
                           f"restart writes them again): {failure}")
    dist.barrier()
    return result


def read_step(ckpt_dir: Path) -> int:
    found = checkpoints.latest(ckpt_dir)
    return checkpoints.read_complete(found)["step"] if found else 0


def agreed(ranks: Ranks, value):
    """Rank 0's view, on every rank: ranks on other nodes may see a shared folder a little later (NFS caching);
    they must still resume from the same phase and step, or their collectives would not match."""
    import torch.distributed as dist

    box = [value if ranks.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def resume(engine, ckpt_dir: Path, ranks: Ranks) -> int:
    """Load the newest complete checkpoint (ZeRO shards, optimizer, lr scheduler, RNG); the step it reached."""
    latest = checkpoints.latest(ckpt_dir)
    name = agreed(ranks, latest.name if latest else None)
    if name is None:
        return 0
    found = ckpt_dir / name
    saved_ranks = checkpoints.read_complete(found)["ranks"]
    if saved_ranks != ranks.world:  # every rank reads the same marker: all of them stop, none waits
        raise ValueError(f"{found} was written by {saved_ranks} ranks; this job has {ranks.world}: a ZeRO-3 "
                         "checkpoint resumes only on the same number of GPUs (ask for the same nodes and GPUs)")
    loaded, _ = engine.load_checkpoint(str(ckpt_dir), tag=found.name, load_optimizer_states=True,
                                       load_lr_scheduler_states=True)
    if loaded is None:
        raise RuntimeError(f"{found}: DeepSpeed could not load this checkpoint")
    checkpoints.load_rng(found, ranks.rank)
    return checkpoints.read_complete(found)["step"]


def save_checkpoint(engine, ckpt_dir: Path, step: int, ranks: Ranks, keep: int) -> Path:
    import torch.distributed as dist

    target = ckpt_dir / checkpoints.tag(step)
    engine.save_checkpoint(str(ckpt_dir), tag=target.name, save_latest=False)
    checkpoints.save_rng(target, ranks.rank)
    dist.barrier()
    if ranks.rank == 0:
        checkpoints.mark_complete(target, {"step": step, "ranks": ranks.world, "time": time.time()})
        checkpoints.prune(ckpt_dir, keep)
    dist.barrier()
    return target


def loop(engine, dataset, order, pad_id, cfg, step, total, ranks, trainlog, watch, folder, on_requeue):
    """Optimizer steps from `step` to `total`; returns None, or why it stopped early (after a checkpoint)."""
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    fault_at = int(os.environ.get("LDRT_TRAIN_FAULT_AT_STEP", "0"))  # tests: a crash right after this step
    signal_at = int(os.environ.get("LDRT_TRAIN_SIGNAL_AT_STEP", "0"))  # tests: USR2 to rank 0 after this step
    while step < total:
        epoch, in_epoch = divmod(step, order.steps_per_epoch)
        micro_batches = list(order.micro_batches(epoch, ranks.rank, in_epoch * order.accumulation))
        batches = DataLoader(dataset, batch_sampler=micro_batches,
                             collate_fn=lambda rows: collate(rows, pad_id), num_workers=cfg.data.num_workers,
                             # its own generator: a loader started mid-epoch (a resume) must not draw from the
                             # global RNG, or LoRA dropout masks would differ from the uninterrupted run
                             generator=torch.Generator().manual_seed(cfg.seed + epoch))
        meter = trainlog.meter()
        for micro, batch in enumerate(checked(batches, ranks, engine.device), start=1):
            batch = {key: value.to(engine.device) for key, value in batch.items()}  # DeepSpeed leaves them on CPU
            loss = engine(**batch).loss
            engine.backward(loss)
            lrs = engine.get_lr()  # the rates this optimizer step uses (step() moves the schedule on)
            engine.step()
            meter.add(loss.item(), int(batch["attention_mask"].sum()), len(batch["input_ids"]))
            if micro % order.accumulation:
                continue
            step += 1
            trainlog.record(step, meter, lrs, ranks) if step % cfg.log_every == 0 else meter.reset()
            if ranks.rank == 0 and step == signal_at:
                os.kill(os.getpid(), __import__("signal").SIGUSR2)
            reason = torch.tensor([watch.reason()], device=engine.device)  # NCCL reduces only GPU tensors
            dist.all_reduce(reason, op=dist.ReduceOp.MAX)
            if reason.item() or step % cfg.checkpoint.every_steps == 0 or step == total:  # outputs may fail
                save_checkpoint(engine, folder / "checkpoints", step, ranks, cfg.checkpoint.keep)
            if fault_at and step == fault_at:
                os._exit(3)
            if reason.item() and step < total:  # at the last step: finish (the outputs) rather than requeue
                return stop(int(reason.item()), watch, folder, step, ranks, on_requeue)
            if step >= total or step % order.steps_per_epoch == 0:
                break
    return None


def checked(batches, ranks: Ranks, device):
    """The loader's batches; a batch that cannot be built (an unreadable image, a prompt longer than max_length)
    stops every rank with the reason, at the same micro-step: a rank that raised alone would leave the others
    waiting in a ZeRO-3 gather until the collective timeout."""
    import torch
    import torch.distributed as dist

    iterator = iter(batches)
    while True:
        try:
            batch, problem = next(iterator), ""
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001  (re-raised on every rank below)
            batch, problem = None, f"{type(exc).__name__}: {exc}"
        flag = torch.tensor([int(bool(problem))], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item():
            raise RuntimeError(f"a training batch could not be built on rank {ranks.rank if problem else '(another)'}"
                               f"{': ' + problem if problem else ''}")
        yield batch


def stop(reason: int, watch: StopWatch, folder: Path, step: int, ranks: Ranks, on_requeue) -> str:
    """After the checkpoint: ask for a requeue (the launcher's callback, and the REQUEUE files the static scripts
    read)."""
    what = "requeue" if reason == REQUEUE else "stop"
    if ranks.rank == 0:
        log.warning("stopping at step %d (%s): checkpoint saved; %s", step, watch.signal_name or "signal", what)
        if reason == REQUEUE:
            note = json.dumps({"step": step, "signal": watch.signal_name}) + "\n"
            (folder / REQUEUE_FILE).write_text(note)
            if os.environ.get(REQUEUE_ENV):  # the static job scripts requeue the job when this file appears
                Path(os.environ[REQUEUE_ENV]).write_text(note)
            if on_requeue is not None:
                on_requeue()
    return what


# --------------------------------------------------------------------------------------------------------------
# outputs


def consolidated(engine, cfg: TrainConfig):
    """The full 16-bit state dict on rank 0, gathered from the ZeRO-3 partitions (a collective: every rank calls
    it; the others get None)."""
    if cfg.zero_stage == 3:
        return engine._zero3_consolidated_16bit_state_dict()
    return engine.module.state_dict()
