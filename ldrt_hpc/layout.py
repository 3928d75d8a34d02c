"""Every path of the work directory, in one place (the bottom layer: it imports nothing of the package).

    WORK/
      _configs/<hash>.yaml            frozen configs that jobs receive
      _models/                        converted model weights (the embedded LLM)
      _locks/<stage>.lock             a stage's submission lock (outside the stage folder: a re-plan moves that)
      pdfs/                           the downloaded PDFs (stages.download.out_dir may put them elsewhere)
      <stage>/
        plan.json                     the pinned plan
        shard-00007.h5                a committed shard (written as shard-00007.h5.tmp-<generation>-<host>-<pid>)
        shard-00007.done.json         its completion marker
        shard-00007.failed.json       the failure record of the last failed attempt
        shard-00007.corrupt.json      left by `verify` when it set a bad shard aside
        _corrupt/                     bad shard files set aside by `verify`
        _state/shard-00007/           resume state of one shard (search pages, QA progress)
        _jobs/submissions.jsonl       submission records (ldrt_hpc/ownership.py)
        _jobs/logs/                   job scripts, logs and submitit pickles
        _replaced/<time>/             everything of an earlier plan (`--replan`)
"""

from __future__ import annotations

from pathlib import Path


def stage_dir(work_dir: Path, stage: str) -> Path:
    return Path(work_dir) / stage


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_path(stage_dir: Path, index: int) -> Path:
    return Path(stage_dir) / f"{shard_name(index)}.h5"


def marker_path(stage_dir: Path, index: int) -> Path:
    return Path(stage_dir) / f"{shard_name(index)}.done.json"


def failure_path(stage_dir: Path, index: int) -> Path:
    return Path(stage_dir) / f"{shard_name(index)}.failed.json"


def corrupt_path(stage_dir: Path, index: int) -> Path:
    return Path(stage_dir) / f"{shard_name(index)}.corrupt.json"


def corrupt_dir(stage_dir: Path) -> Path:
    return Path(stage_dir) / "_corrupt"


def shard_state_dir(stage_dir: Path, index: int) -> Path:
    """Resume state of one shard: kept across attempts, moved aside with the plan by `--replan`."""
    return Path(stage_dir) / "_state" / shard_name(index)


def plan_path(stage_dir: Path) -> Path:
    return Path(stage_dir) / "plan.json"


def replaced_dir(stage_dir: Path) -> Path:
    return Path(stage_dir) / "_replaced"


def jobs_dir(stage_dir: Path) -> Path:
    return Path(stage_dir) / "_jobs"


def log_folder(stage_dir: Path) -> Path:
    return jobs_dir(stage_dir) / "logs"


def records_path(stage_dir: Path) -> Path:
    return jobs_dir(stage_dir) / "submissions.jsonl"


def lock_path(stage_dir: Path) -> Path:
    return Path(stage_dir).parent / "_locks" / f"{Path(stage_dir).name}.lock"


def downloads_dir(work_dir: Path) -> Path:
    """Where `download` puts the PDFs unless stages.download.out_dir says otherwise."""
    return Path(work_dir) / "pdfs"


def frozen_configs_dir(work_dir: Path) -> Path:
    return Path(work_dir) / "_configs"


def models_dir(work_dir: Path) -> Path:
    return Path(work_dir) / "_models"
