"""The pinned shard plan of a stage: which inputs go to which shard, and how many shards there are.

A plan is written once, to WORK/<stage>/plan.json, before the first job of the stage is submitted. Every later
run reads it back, so a shard's inputs never change under it. Running with a different shard count is refused
unless `replan=True`; then the old plan, shards and markers are moved aside (never deleted) first.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import PlanError  # noqa: F401
from .layout import plan_path, replaced_dir, stage_dir


@dataclass(frozen=True)
class Plan:
    stage: str
    num_shards: int
    upstream: tuple[str, ...]
    """The stages whose shard i is the input of this stage's shard i (empty for a stage that reads files)."""
    assignments: tuple[tuple[str, ...], ...] | None
    """For a stage that reads files: the inputs of each shard."""
    upstream_fingerprint: str | None = None
    """Hash of the state of every stage this plan reads or was planned from: a changed upstream makes it stale."""
    planned_from: tuple[str, ...] | None = None
    """The stages whose content this plan was built from (e.g. download from search); None: not said (yet)."""

    def inputs(self, index: int) -> tuple[str, ...]:
        if self.assignments is None:
            return ()
        return self.assignments[index]

    def to_json(self) -> str:
        payload = {
            "stage": self.stage,
            "num_shards": self.num_shards,
            "upstream": list(self.upstream),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "assignments": None if self.assignments is None else [list(a) for a in self.assignments],
            "upstream_fingerprint": self.upstream_fingerprint,
            "planned_from": None if self.planned_from is None else list(self.planned_from),
        }
        return json.dumps(payload, indent=None, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        assignments = data.get("assignments")
        return cls(
            stage=data["stage"],
            num_shards=int(data["num_shards"]),
            upstream=tuple(data.get("upstream") or ()),
            assignments=None if assignments is None else tuple(tuple(a) for a in assignments),
            upstream_fingerprint=data.get("upstream_fingerprint"),
            planned_from=None if data.get("planned_from") is None else tuple(data["planned_from"]),
        )


def _digest(key: str) -> bytes:
    return hashlib.sha1(key.encode("utf-8")).digest()


def assign(keys: list[str], num_shards: int) -> tuple[tuple[str, ...], ...]:
    """Deal input keys to shards in the order of their hash: balanced (sizes differ by at most one) and
    independent of input order, machine and Python's hash seed. Each shard's list is sorted."""
    ordered = sorted(set(keys), key=lambda key: (_digest(key), key))
    return tuple(tuple(sorted(ordered[index::num_shards])) for index in range(num_shards))


def load_plan(stage_dir: Path) -> Plan | None:
    path = plan_path(stage_dir)
    if not path.is_file():
        return None
    try:
        return Plan.from_json(path.read_text())
    except (ValueError, KeyError) as exc:
        raise PlanError(f"{path}: unreadable plan ({exc}); move it aside and re-plan with --replan") from None


def _move_aside(stage_dir: Path) -> Path:
    """Move plan, shards, markers and failure records into _replaced/<time>/ (nothing done is deleted)."""
    target = replaced_dir(stage_dir) / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    for entry in stage_dir.iterdir():
        if entry == replaced_dir(stage_dir):
            continue
        shutil.move(str(entry), str(target / entry.name))
    return target


def downstream_plan(stage: str, upstream: tuple[str, ...], work_dir: Path, num_shards: int | None) -> Plan:
    """The plan of a stage that reads other stages: the same shard count as its upstream stages."""
    counts = {}
    for name in upstream:
        plan = load_plan(stage_dir(work_dir, name))
        if plan is None:
            raise PlanError(f"stage '{stage}' reads '{name}', which has no plan yet: run `ldrt-hpc run {name}` first")
        counts[name] = plan.num_shards
    if len(set(counts.values())) > 1:
        raise PlanError(f"stage '{stage}': its inputs have different shard counts {counts}")
    count = next(iter(counts.values()))
    if num_shards is not None and num_shards != count:
        raise PlanError(f"stage '{stage}' reads shard i of {', '.join(upstream)}: it has {count} shards, "
                        f"not {num_shards} (re-plan the first stage to change the count)")
    return Plan(stage=stage, num_shards=count, upstream=upstream, assignments=None, planned_from=(),
                upstream_fingerprint=upstream_fingerprint(work_dir, upstream, ()))


def upstream_fingerprint(work_dir: Path, reads: tuple[str, ...], planned_from: tuple[str, ...]) -> str:
    """A hash of what a plan depends on: the plan files of the stages it reads shard by shard (a re-plan writes a
    new file, with a new creation time), and for the stages it was planned from also their shards' markers (their
    content: a search that ran again may have found other papers)."""
    digest = hashlib.sha256()
    for name in reads:
        path = plan_path(stage_dir(work_dir, name))
        digest.update(path.read_bytes() if path.is_file() else b"-")
    for name in planned_from:
        directory = stage_dir(work_dir, name)
        path = plan_path(directory)
        digest.update(path.read_bytes() if path.is_file() else b"-")
        for marker in sorted(directory.glob("shard-*.done.json")):
            digest.update(marker.name.encode() + str(json.loads(marker.read_text()).get("sha256")).encode())
    return digest.hexdigest()[:16]


def check_upstream(stage_dir_: Path, pinned: Plan, work_dir: Path) -> None:
    """Refuse a plan made against upstream state that has changed since (a re-plan, or new planning input)."""
    if not pinned.upstream_fingerprint:
        return
    planned_from = pinned.planned_from or ()
    if pinned.upstream_fingerprint == upstream_fingerprint(work_dir, pinned.upstream, planned_from):
        return
    changed = ", ".join(pinned.upstream + tuple(planned_from))
    raise PlanError(
        f"stage '{pinned.stage}' was planned against an earlier state of {changed}, which has changed since "
        f"(re-planned or run again; {plan_path(stage_dir_)}): its shards would mix old and new inputs. "
        f"Run `ldrt-hpc run {pinned.stage} --replan` (its old shards move aside)."
    )


def check_shard_count(stage_dir: Path, pinned: Plan, wanted: int | None) -> None:
    """Refuse a shard count other than the pinned one (None: no count asked for, nothing to check)."""
    if wanted is not None and wanted != pinned.num_shards:
        raise PlanError(
            f"stage '{pinned.stage}' is pinned at {pinned.num_shards} shards ({plan_path(stage_dir)}), "
            f"but {wanted} were asked for. Changing the shard count re-shards every item: "
            f"pass --replan to move the old plan and shards aside and start over, or keep {pinned.num_shards}."
        )


def pin_plan(stage_dir: Path, wanted: Plan, replan: bool = False) -> Plan:
    """Return the stage's pinned plan, writing `wanted` if there is none.

    A pinned plan with another shard count is an error unless `replan`; with `replan` the old state moves aside.
    """
    stage_dir = Path(stage_dir)
    pinned = load_plan(stage_dir)
    if pinned is not None and not replan:
        check_shard_count(stage_dir, pinned, wanted.num_shards)
        return pinned
    if pinned is not None and replan:
        _move_aside(stage_dir)
    from .shards import atomic_write_text

    stage_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan_path(stage_dir), wanted.to_json())
    return wanted


def require_complete(work_dir: Path, stage: str, needed_by: str) -> Plan:
    """The plan of a stage whose shards must all be complete: a reader of the whole stage (the paper split over all
    qa shards, Table 1 over all judge shards) would otherwise work on a biased part of it."""
    from .shards import is_complete

    directory = stage_dir(work_dir, stage)
    plan = load_plan(directory)
    if plan is None:
        raise PlanError(f"{needed_by}: `{stage}` has not run in {work_dir}: run `ldrt-hpc run {stage}` first")
    missing = [i for i in range(plan.num_shards) if not is_complete(directory, i)]
    if missing:
        raise PlanError(f"{needed_by}: {stage} shards {missing} are not complete (`ldrt-hpc status {stage}`, "
                        f"`ldrt-hpc rerun {stage}`)")
    return plan
