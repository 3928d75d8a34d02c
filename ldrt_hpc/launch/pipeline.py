"""`ldrt-hpc pipeline run|status|rerun`: every stage of the graph submitted at once, chained by scheduler
dependencies, so that the study runs unattended.

- A stage that reads shard i of its upstream stages (graph `reads`) waits task by task: Slurm `aftercorr` on the
  upstream arrays (dependencies.py groups the shards so that task k waits for task k); PBS Pro, which has no
  per-subjob dependency, waits for the whole upstream arrays (`afterok`), and so does every stage in MPI mode
  (one ensemble job per stage, `afterany`: its ranks check each shard's inputs themselves).
- A stage that needs all of an upstream stage (`needs_all`) waits for every job of it (`afterok`).
- A stage planned from an upstream stage's content (`plans_from`: download from search) cannot be planned before
  that stage is complete: a small *continuation* job waits for it (`afterok`) and runs `pipeline run --from
  STAGE` on a compute node, which plans the stage and submits the rest.
- A failed upstream shard leaves its downstream shards pending in the queue with the scheduler's reason (Slurm:
  DependencyNeverSatisfied); `pipeline status` counts them as blocked and `pipeline rerun` cancels them and
  submits the failed shards and everything below them again, in one go.
- On the local profile (no scheduler) the stages run one after the other on this machine.

Every submission goes through launcher.submit: the same plans, generations, records and markers as `ldrt-hpc run`,
so `status`, `rerun` and `cancel` of one stage work on what the pipeline submitted.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import PipelineConfig, freeze, load_cluster, load_pipeline
from ..errors import PlanError, SubmissionError
from ..layout import stage_dir
from ..plan import load_plan
from ..shards import is_complete
from ..stages import GRAPH
from . import launcher, schedulers
from .dependencies import After, array_of, describe, directives, per_task
from .executors import job_script, make_executor
from .selection import format_shards
from .state import ACTIVE, PENDING, RUNNING, TO_SUBMIT, not_listed_yet
from .status import ShardStatus, stage_status

CONTINUATION_MIN = 15
"""Wall time of a continuation job (it plans one stage and submits the rest: seconds of work)."""
TRAINED_BY = "answer"
"""The stage that reads the fine-tuned model: the training step goes right before it and it waits for training."""


@dataclass
class Step:
    """One submission of the pipeline: an array (or several), an ensemble job, or a continuation job."""

    stage: str
    kind: str
    """'array', 'mpi' (one ensemble job), 'continue' (plans `stage` once its inputs are complete, submits the rest),
    'local' (ran on this machine), 'skip' (nothing to submit)."""
    shards: list[int] = field(default_factory=list)
    afters: list[After] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    note: str = ""
    script: str = ""

    def line(self, scheduler: str = "slurm") -> str:
        what = f"{len(self.shards)} shard(s) {format_shards(self.shards)}" if self.shards else ""
        arrays = list(dict.fromkeys(array_of(job_id) for job_id in self.job_ids))
        jobs = f" job {', '.join(arrays[:4])}{' ...' if len(arrays) > 4 else ''}" if arrays else ""
        return (f"{self.stage:13} {self.kind:8} {what:28} after: {describe(self.afters, scheduler)}{jobs}"
                + (f"  ({self.note})" if self.note else "")).rstrip()


def pipeline_dir(cfg: PipelineConfig) -> Path:
    return Path(cfg.work_dir) / "_pipeline"


# --------------------------------------------------------------------------------------------------------------
# run


def run(cfg: PipelineConfig, cluster: str, first: str | None = None, last: str | None = None, mode: str | None = None,
        dry_run: bool = False, python: str | None = None) -> list[Step]:
    """Submit every stage from `first` to `last` at once, chained by dependencies (see the module doc)."""
    names = GRAPH.between(first, last)
    profile = load_cluster(cluster)
    mode = mode or profile.mode
    if profile.scheduler == "local" and not dry_run:
        return _run_here(cfg, cluster, names, mode)
    jobs: dict[str, dict[int, str]] = {}
    """Per stage: the job of each shard that is pending or running (submitted now or before)."""
    counts: dict[str, int] = {}
    """Per stage: its shard count (a dry run plans nothing: downstream counts follow their upstream)."""
    steps: list[Step] = []
    try:
        _walk(cfg, cluster, names, mode, dry_run, python, profile.scheduler, jobs, counts, steps)
    finally:  # what was submitted before a refusal is recorded all the same (status, wait and rerun follow it)
        if not dry_run:
            _record(cfg, cluster, steps)
    return steps


def _walk(cfg, cluster, names, mode, dry_run, python, scheduler, jobs, counts, steps: list[Step]) -> None:
    """The stages in order, each submitted with its dependencies, appended to `steps` as they go."""
    continued = False
    """A continuation job takes over from here (a dry run goes on showing what it will submit)."""
    for name in names:
        if name == TRAINED_BY and cfg.pipeline.train_config is not None and not continued:
            steps.append(_train_step(cfg, cluster, jobs, dry_run, python)[0])
        fan_in = _fan_in(name, jobs)
        if fan_in and not continued:
            steps.append(_continuation(cfg, cluster, name, names[-1], mode, _whole(jobs, fan_in, "afterok"), dry_run,
                                       python))
            continued = True
            if not dry_run:
                break
        plan_count = _shard_count(cfg, name, counts, dry_run)
        if plan_count is None:
            if not continued:  # else the continuation job plans it
                steps.append(Step(name, "skip", note="cannot be planned yet: its inputs are not complete"))
            break
        counts[name] = plan_count
        stage_steps = _submit_stage(cfg, cluster, name, mode, jobs, plan_count, dry_run, python, scheduler)
        for step in stage_steps if continued else []:
            step.kind, step.note, step.script = "later", "submitted by the continuation job", ""
        steps += stage_steps
    else:
        if names[-1] == GRAPH.names[-1] and cfg.pipeline.report:
            steps.append(_report_step(cfg, cluster, jobs, dry_run, python))
            if continued:
                steps[-1].kind, steps[-1].note, steps[-1].script = "later", "submitted by the continuation job", ""


def _fan_in(name: str, jobs: dict[str, dict[int, str]]) -> list[str]:
    """The still-queued inputs this stage needs whole before it can even be submitted: a plan made from their
    content (`plans_from`), a split over all of them (`needs_all`), the fine-tuned model (training, for answer).
    Such a stage is submitted by a continuation job once they succeeded."""
    node = GRAPH[name]
    wanted = list(node.plans_from + node.needs_all) + (["train"] if name == TRAINED_BY else [])
    return [up for up in dict.fromkeys(wanted) if jobs.get(up)]


def _shard_count(cfg: PipelineConfig, name: str, counts: dict[str, int], dry_run: bool) -> int | None:
    """The stage's shard count: its pinned plan, else (dry run) its upstream's count, else a new plan pinned now."""
    pinned = load_plan(stage_dir(cfg.work_dir, name))
    if pinned is not None:
        return pinned.num_shards
    reads = GRAPH[name].reads
    if dry_run and reads and reads[0] in counts:
        return counts[reads[0]]
    try:
        plan = launcher.wanted_plan(cfg, name, None)
    except PlanError:
        return None
    if not dry_run:
        from ..plan import pin_plan

        pin_plan(stage_dir(cfg.work_dir, name), plan)
    return plan.num_shards


def _rows(cfg: PipelineConfig, name: str, count: int, dry_run: bool) -> list[ShardStatus]:
    rows = stage_status(cfg, name)
    return rows if rows or not dry_run else [ShardStatus(i, "missing") for i in range(count)]


def _submit_stage(cfg, cluster, name, mode, jobs, count, dry_run, python, scheduler) -> list[Step]:
    """Submit the stage's shards that are not done and not active, each group with its dependencies; records the
    job of every active shard in `jobs` for the stages below."""
    node = GRAPH[name]
    rows = _rows(cfg, name, count, dry_run)
    jobs[name] = {row.shard: row.job_id for row in rows if row.state in ACTIVE and row.job_id}
    todo = [row.shard for row in rows if row.state in TO_SUBMIT]
    if dry_run:  # placeholders: task k of '<stage>' is shard k
        todo = [row.shard for row in rows if row.state != "done"]
    if not todo:
        return [Step(name, "skip", note="complete" if not jobs[name] else "already submitted")]
    ready, blocked = _runnable(cfg, name, todo, jobs)
    shard_aligned = [up for up in node.reads if up not in node.needs_all]  # run() waited for those whole
    steps = []
    if mode == "mpi":
        upstream = _whole(jobs, shard_aligned, "afterany")
        steps.append(_submit(cfg, cluster, name, "mpi", ready, upstream, dry_run, python))
    else:
        for members, afters in per_task({up: jobs.get(up, {}) for up in shard_aligned}, ready):
            steps.append(_submit(cfg, cluster, name, "array", members, afters, dry_run, python))
    for step in steps:
        jobs[name].update(_jobs_by_shard(step, mode))
    if blocked:
        steps.append(Step(name, "skip", blocked, note="not submitted: an upstream shard is neither complete nor "
                                                      "queued (failed, or held back by max_queued_jobs)"))
    return steps


def _runnable(cfg, name, todo, jobs) -> tuple[list[int], list[int]]:
    """Shards whose upstream shards are complete or queued (ready) and those whose upstream shard is neither."""
    ready, blocked = [], []
    for index in todo:
        fine = all(index in jobs.get(up, {}) or is_complete(stage_dir(cfg.work_dir, up), index)
                   for up in GRAPH[name].reads)
        (ready if fine else blocked).append(index)
    return ready, blocked


def _whole(jobs: dict[str, dict[int, str]], stages: list[str], kind: str) -> list[After]:
    """Wait for every job (whole arrays) of these stages."""
    ids = dict.fromkeys(array_of(job_id) for up in stages for job_id in jobs.get(up, {}).values())
    return [After(kind, tuple(ids))] if ids else []


def _jobs_by_shard(step: Step, mode: str) -> dict[int, str]:
    if mode == "mpi":
        return {index: step.job_ids[0] for index in step.shards} if step.job_ids else {}
    return dict(zip(step.shards, step.job_ids))


def _submit(cfg, cluster, name, kind, shards, afters, dry_run, python) -> Step:
    """One launcher submission (array or ensemble) of `shards`, waiting for `afters`."""
    if not shards:
        return Step(name, "skip", note="nothing ready")
    if dry_run:
        return Step(name, kind, shards, afters, [f"<{name}>_{k}" for k in range(len(shards))] if kind == "array"
                    else [f"<{name}>"], script=_dry_script(cfg, cluster, name, kind, len(shards), afters, python))
    submission = launcher.submit(cfg, name, cluster, shards=format_shards(shards), mode=kind, afters=afters,
                                 python=python)
    note = f"{len(submission.held_back)} held back by max_queued_jobs" if submission.held_back else ""
    return Step(name, kind, submission.shards, afters, submission.job_ids, note=note)


def _dry_script(cfg, cluster, name, kind, size, afters, python) -> str:
    """The job script of one submission, its dependency included (no plan is pinned: the count is given)."""
    from . import ensemble_jobs

    profile = load_cluster(cluster)
    profile, resources = launcher.placement(cfg, name, cluster, {"extra_directives": directives(profile.scheduler,
                                                                                                  afters)})
    folder = launcher.log_folder(cfg, name)
    if kind == "mpi":
        return ensemble_jobs.script(profile, resources, folder, name, python=python)
    size = min(size, profile.max_array_size)
    parallelism = launcher.array_parallelism(resources, size, profile.max_array_size)
    return job_script(profile, resources.model_copy(update={"array_parallelism": parallelism}), folder,
                      f"ldrt-{name}", size, python=python)


def _continuation(cfg, cluster, name, last, mode, afters, dry_run, python) -> Step:
    """A small CPU job that waits for `afters`, then runs `pipeline run --from name --to last` on a compute node."""
    profile, cpu = _small_job(cfg, cluster, afters)
    folder = pipeline_dir(cfg) / "logs"
    note = f"once its inputs are complete, plans and submits {name}..{last}"
    if dry_run:
        return Step(name, "continue", [], afters, ["<continue>"], note,
                    job_script(profile, cpu, folder, "ldrt-pipeline", 1, python=python))
    folder.mkdir(parents=True, exist_ok=True)
    executor = make_executor(profile, cpu, folder, "ldrt-pipeline")
    job = executor.submit(continue_pipeline, str(freeze(cfg)), cluster, name, last, mode)
    return Step(name, "continue", [], afters, [job.job_id], note)


def _train_step(cfg: PipelineConfig, cluster: str, jobs, dry_run: bool, python) -> tuple[Step, object]:
    """The training job, after every qa job (afterok); skipped when every phase is done, reused while queued.
    Returns the step and the submission (None when nothing was submitted)."""
    from ..train.config import load_train
    from ..train.recipe import DONE
    from .train import active_job, submit_training

    train_cfg = load_train(cfg.pipeline.train_config)
    if all((train_cfg.output_dir / phase / DONE).is_file() for phase in train_cfg.phases):
        return Step("train", "skip", note=f"complete ({train_cfg.output_dir})"), None
    running = None if dry_run else active_job(train_cfg)
    if running:
        jobs["train"] = {0: running}
        return Step("train", "skip", job_ids=[running], note="already submitted"), None
    afters = _whole(jobs, ["qa"], "afterok")
    flags = {"extra_directives": directives(load_cluster(cluster).scheduler, afters)}
    submission = submit_training(train_cfg, cluster, dry_run=dry_run, flags=flags, python=python)
    job_id = submission.job_id or "<train>"
    jobs["train"] = {0: job_id}
    return Step("train", "train", [], afters, [job_id], f"{submission.ranks} ranks", submission.script), submission


def _report_step(cfg: PipelineConfig, cluster: str, jobs, dry_run: bool, python) -> Step:
    """A small CPU job that writes the report once every judge and hallucination job succeeded (afterok)."""
    afters = _whole(jobs, REPORT_READS, "afterok")
    profile, resources = _small_job(cfg, cluster, afters)
    folder = pipeline_dir(cfg) / "logs"
    if dry_run:
        return Step("report", "report", [], afters, ["<report>"], "the report into WORK/report",
                    job_script(profile, resources, folder, "ldrt-report", 1, python=python))
    folder.mkdir(parents=True, exist_ok=True)
    job = make_executor(profile, resources, folder, "ldrt-report").submit(write_report, str(freeze(cfg)))
    return Step("report", "report", [], afters, [job.job_id], "the report into WORK/report")


REPORT_READS = ["judge", "hallucination"]
"""The stages the report is made from (with the markers of every stage, for the funnel)."""


def write_report(config_path: str) -> str:
    """What the report job runs; returns the path of index.html."""
    from ..analysis.report import build_report

    cfg = load_pipeline(config_path)
    return str(build_report(cfg, Path(cfg.work_dir) / "report"))


def _small_job(cfg: PipelineConfig, cluster: str, afters: list[After]):
    """One CPU core for minutes (continuation and report jobs), waiting for `afters`."""
    profile = load_cluster(cluster)
    cpu = profile.resources_for("cpu", cluster).model_copy(update={
        "time_min": CONTINUATION_MIN, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 1, "gpus_per_node": 0,
        "extra_directives": {**profile.resources_for("cpu", cluster).extra_directives,
                             **directives(profile.scheduler, afters)}})
    return profile, cpu


def continue_pipeline(config_path: str, cluster: str, first: str, last: str, mode: str) -> list[dict]:
    """What a continuation job runs (submitit pickles only these five strings)."""
    steps = run(load_pipeline(config_path), cluster, first, last, mode)
    return [asdict(step) for step in steps]


def _run_here(cfg: PipelineConfig, cluster: str, names: list[str], mode: str) -> list[Step]:
    """The local profile: each stage in turn on this machine (launcher.submit waits for local jobs); each step
    says how long it took."""
    steps = []
    for name in names:
        if name == TRAINED_BY and cfg.pipeline.train_config is not None:
            steps.append(_timed(lambda: _train_here(cfg, cluster)))
        if _shard_count(cfg, name, {}, False) is None:
            steps.append(Step(name, "skip", note="cannot be planned yet: its inputs are not complete"))
            break
        steps.append(_timed(lambda: _stage_here(cfg, cluster, name, mode)))
    else:
        if names[-1] == GRAPH.names[-1] and cfg.pipeline.report:
            steps.append(_timed(lambda: Step("report", "local", note=write_report(str(freeze(cfg))))))
    _record(cfg, cluster, steps)
    return steps


def _stage_here(cfg: PipelineConfig, cluster: str, name: str, mode: str) -> Step:
    submission = launcher.submit(cfg, name, cluster, mode=mode)
    failed = [row.shard for row in stage_status(cfg, name) if row.state in TO_SUBMIT]
    return Step(name, "local", submission.shards, [], submission.job_ids,
                note=f"{len(failed)} not done: {format_shards(failed)}" if failed else "")


def _timed(make_step) -> Step:
    started = time.time()
    step = make_step()
    step.note = "; ".join(part for part in (f"{time.time() - started:.1f} s", step.note) if part)
    return step


def _train_here(cfg: PipelineConfig, cluster: str) -> Step:
    """The local profile: the training job on this machine, waited for."""
    step, submission = _train_step(cfg, cluster, {}, False, None)
    if submission is not None:
        submission.job.results()  # raises when a rank failed: the pipeline stops here, the log says why
        step.kind = "local"
    return step


def _record(cfg: PipelineConfig, cluster: str, steps: list[Step]) -> None:
    """WORK/_pipeline/steps.jsonl: what each `pipeline run` submitted (status shows the continuation jobs)."""
    folder = pipeline_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "steps.jsonl", "a") as handle:
        for step in steps:
            payload = {**asdict(step), "afters": describe(step.afters), "cluster": cluster, "time": time.time()}
            payload.pop("script")
            handle.write(json.dumps(payload) + "\n")


def format_run(steps: list[Step], dry_run: bool, scheduler: str, mode: str) -> str:
    """The dependency graph (one line per submission) and, for a dry run, every job script."""
    lines = [f"pipeline on {scheduler} ({mode} mode): {len(steps)} submission(s)"] + [step.line(scheduler)
                                                                                      for step in steps]
    if dry_run:
        for number, step in enumerate(steps, 1):
            if step.script:
                lines += ["", f"# ---- submission {number}: {step.stage} ({step.kind}) ----", step.script.rstrip()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------
# status and rerun


@dataclass
class StageCounts:
    stage: str
    shards: int = 0
    done: int = 0
    running: int = 0
    pending: int = 0
    waiting: int = 0
    """Pending in the queue until their upstream jobs end (a dependency), or not submitted: upstream not done."""
    blocked: int = 0
    """Waiting on an upstream shard that failed: they run only after `pipeline rerun`."""
    failed: int = 0
    missing: int = 0
    failures: list[ShardStatus] = field(default_factory=list)
    blocked_rows: list[ShardStatus] = field(default_factory=list)


STUCK = ("failed", "corrupt", "blocked")
"""Upstream states a shard waits on in vain (a shard not submitted yet, e.g. held back by max_queued_jobs, is
only 'waiting')."""


def _classify(name: str, row: ShardStatus, states: dict[str, dict[int, str]], whole_stuck: bool) -> str:
    """One row's column in the pipeline table. `whole_stuck`: a stage this one needs whole has a stuck shard."""
    stuck = whole_stuck or any(states.get(up, {}).get(row.shard) in STUCK for up in GRAPH[name].reads)
    if row.state == "done":
        return "done"
    if row.state in ("running", "cancelling"):
        return "running"
    if row.state in ("pending", "unknown"):
        if stuck or (row.reason and "NeverSatisfied" in row.reason):
            return "blocked"
        return "waiting" if row.reason and row.reason.startswith("Dependency") else "pending"
    if row.state in ("failed", "corrupt"):
        return "blocked" if stuck else "failed"  # stuck: an ensemble ran it anyway (afterany), its input missing
    if stuck:
        return "blocked"
    return "waiting" if any(states.get(up, {}).get(row.shard) != "done" for up in GRAPH[name].reads) else "missing"


def stage_counts(cfg: PipelineConfig, names: list[str]) -> list[StageCounts]:
    """Per stage: how many shards are done, running, pending, waiting on upstream, blocked, failed."""
    states: dict[str, dict[int, str]] = {}
    table = []
    for name in names:
        rows = stage_status(cfg, name)
        states[name] = {row.shard: row.state for row in rows}
        whole_stuck = any(state in STUCK for up in GRAPH[name].needs_all for state in states.get(up, {}).values())
        counts = StageCounts(name, len(rows))
        for row in rows:
            column = _classify(name, row, states, whole_stuck)
            setattr(counts, column, getattr(counts, column) + 1)
            if column == "blocked":
                states[name][row.shard] = "blocked"
                counts.blocked_rows.append(row)
            elif column == "failed":
                counts.failures.append(row)
        table.append(counts)
    return table


STEP_JOBS = ("continue", "train", "report")
"""Jobs of a pipeline that are not shards of a stage."""


def continuation_jobs(cfg: PipelineConfig, names: list[str] | None = None) -> list[tuple[dict, str]]:
    """The continuation, training and report jobs of `pipeline run`s that have not ended (the newest record of
    each), with their scheduler state: one query per scheduler. `names`: only those that belong to these stages."""
    path = pipeline_dir(cfg) / "steps.jsonl"
    if not path.is_file():
        return []
    newest: dict[tuple[str, str], dict] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] in STEP_JOBS and record["job_ids"] and record.get("cluster"):
            newest[(record["kind"], record["stage"])] = record
    records = [r for r in newest.values() if names is None or _belongs(r, names)]
    by_scheduler: dict[str, list[dict]] = {}
    for record in records:
        by_scheduler.setdefault(load_cluster(record["cluster"]).scheduler, []).append(record)
    found = []
    for scheduler, members in by_scheduler.items():
        states = schedulers.STATE_QUERIES[scheduler]([r["job_ids"][0] for r in members])
        for record in members:
            state = states.get(record["job_ids"][0], "UNKNOWN")
            # one continuation job submits the next: sacct may not list that one yet, and `wait` must not end
            if not_listed_yet(state, scheduler, record.get("time", 0.0), time.time()):
                state = "SUBMITTING"
            found.append((record, state))
    return [(record, state) for record, state in found if state in PENDING or state in RUNNING]


def _belongs(record: dict, names: list[str]) -> bool:
    if record["kind"] == "train":
        return TRAINED_BY in names
    if record["kind"] == "report":
        return names[-1] == GRAPH.names[-1]
    return record["stage"] in names


def format_table(table: list[StageCounts], continuations: list[tuple[dict, str]] = ()) -> str:
    columns = ("shards", "done", "running", "pending", "waiting", "blocked", "failed", "missing")
    lines = [f"{'stage':13} " + " ".join(f"{c:>8}" for c in columns)]
    for counts in table:
        lines.append(f"{counts.stage:13} " + " ".join(f"{getattr(counts, c):>8}" for c in columns))
    lines.append("waiting: in the queue until their upstream jobs end; blocked: an upstream shard failed "
                 "(`ldrt-hpc pipeline rerun`)")
    for record, state in continuations:
        lines.append(f"{record['kind']} job {record['job_ids'][0]} ({state.lower()}): {record['note']}")
    failures = [(counts.stage, row) for counts in table for row in counts.failures]
    if failures:
        lines.append("failed shards:")
        lines += [f"  {stage} {row.shard}: {row.error or ''}" + (f"  [log: {row.log}]" if row.log else "")
                  for stage, row in failures]
    return "\n".join(lines)


def rerun(cfg: PipelineConfig, cluster: str, first: str | None = None, last: str | None = None,
          mode: str | None = None, dry_run: bool = False, python: str | None = None) -> list[Step]:
    """Cancel the shards blocked behind failed upstream shards (their dependency can never be met) and the
    pending step jobs of these stages (they may wait on a failed job), then `run`: the failed shards and
    everything below them are submitted again, chained as before."""
    names = GRAPH.between(first, last)
    if not dry_run:
        _cancel_pending_steps(cfg, names)
        for name, shards in blocked_shards(cfg, names).items():
            launcher.cancel(cfg, name, grace_s=0, shards=shards)
            _wait_until_inactive(cfg, name, shards)
    return run(cfg, cluster, first, last, mode, dry_run, python)


def _cancel_pending_steps(cfg: PipelineConfig, names: list[str], timeout_s: float = 60.0) -> None:
    """Cancel the pending continuation/train/report jobs of these stages and wait until the scheduler no longer
    lists them as pending (else `run` would take a cancelled training job for a queued one)."""
    pending = [record for record, state in continuation_jobs(cfg, names) if state in PENDING]
    for record in pending:
        scheduler = load_cluster(record["cluster"]).scheduler
        complaint = schedulers.stop_jobs(scheduler, record["job_ids"], record["job_ids"])
        if complaint:
            raise SubmissionError(f"could not cancel the {record['kind']} job {record['job_ids'][0]}: {complaint}")
    deadline = time.time() + timeout_s
    ids = {record["job_ids"][0] for record in pending}
    while ids and time.time() < deadline:
        if not {r["job_ids"][0] for r, state in continuation_jobs(cfg, names) if state in PENDING} & ids:
            return
        time.sleep(1.0)
    if ids and time.time() >= deadline:
        raise TimeoutError(f"step jobs {', '.join(sorted(ids))} still pending {timeout_s:.0f} s after their cancel")


def blocked_shards(cfg: PipelineConfig, names: list[str]) -> dict[str, set[int]]:
    """Per stage: the queued shards that wait on a failed upstream shard (directly or through others)."""
    return {c.stage: shards for c in stage_counts(cfg, names)
            if (shards := {row.shard for row in c.blocked_rows if row.state in ACTIVE})}


def _wait_until_inactive(cfg: PipelineConfig, name: str, shards: set[int], timeout_s: float = 120.0) -> None:
    """Until the scheduler confirms the cancellations (the shards leave 'cancelling'): only then are they
    submitted again."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if not any(row.state in ACTIVE for row in stage_status(cfg, name) if row.shard in shards):
            return
        time.sleep(1.0)
    raise TimeoutError(f"{name}: shards {format_shards(shards)} still cancelling after {timeout_s:.0f} s")


def wait(cfg: PipelineConfig, names: list[str], poll_s: float = 3.0, timeout_s: float | None = None,
         progress=None) -> list[StageCounts]:
    """Until nothing of these stages is queued or running (blocked shards do not count: they wait for a rerun)
    and no continuation job is left; `progress` gets a one-line summary whenever it changes."""
    started, last = time.time(), None
    while True:
        # continuation jobs first: one that ends between the two looks has submitted its stage by then
        continuing = continuation_jobs(cfg, names)
        table = stage_counts(cfg, names)
        line = "; ".join(f"{c.stage} {c.done}/{c.shards} done" + (f", {c.failed} failed" if c.failed else "")
                         for c in table if c.shards) + (f"; {len(continuing)} continuation job(s)" if continuing else "")
        if progress is not None and line != last:
            progress(f"{time.strftime('%H:%M:%S')} {line}")
            last = line
        if not continuing and not any(c.running or c.pending or c.waiting for c in table):
            return table
        if timeout_s is not None and time.time() - started > timeout_s:
            raise TimeoutError(f"pipeline still active after {timeout_s:.0f} s")
        time.sleep(poll_s)
