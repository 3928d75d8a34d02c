"""`ldrt-hpc`: run stages as array jobs, watch them, rerun what failed, verify shards, generate the demo corpus."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from . import __version__

DEFAULT_CONFIG = "configs/demo.yaml"
STATES = ("done", "failed", "corrupt", "cancelling", "running", "pending", "missing", "unknown")


def _positive_int(text: str) -> int:
    """A shard count: 1 or more (argparse would let 0 and -3 through)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _state_list(text: str) -> list[str]:
    states = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [state for state in states if state not in STATES]
    if unknown or not states:
        raise argparse.ArgumentTypeError(f"unknown state(s) {', '.join(unknown) or '(none)'}: "
                                         f"choose from {','.join(STATES)}")
    return states


def login_node_warning(scheduler: str, environ=os.environ) -> str | None:
    """A warning when the `local` profile would run every shard on this machine although a batch scheduler manages
    it (sbatch/qsub on PATH, SLURM_CONF or PBS_SERVER set) and this is not a job: likely a login node, shared with
    everyone. Warn rather than refuse: workstations with a scheduler's client tools installed exist."""
    if scheduler != "local" or any(environ.get(k) for k in ("SLURM_JOB_ID", "PBS_JOBID", "LDRT_ALLOW_LOCAL")):
        return None
    signs = [f"{tool} on PATH" for tool in ("sbatch", "qsub") if shutil.which(tool, path=environ.get("PATH"))]
    signs += [f"{key} is set" for key in ("SLURM_CONF", "PBS_SERVER") if environ.get(key)]
    if not signs:
        return None
    return (f"WARNING: the 'local' cluster profile runs every shard on THIS machine, which looks like the login "
            f"node of a batch cluster ({', '.join(signs)}). Pass --cluster NAME (e.g. generic-slurm, polaris) to "
            f"submit jobs instead; set LDRT_ALLOW_LOCAL=1 to silence this warning.")


def _config(args):
    from .config import load_pipeline

    return load_pipeline(args.config)


def _print_submission(result, shards_text) -> None:
    from .launch import format_shards
    from .stages import GRAPH

    if result.dry_run:
        print(f"# job script ({result.cluster}); {len(result.shards)} shard(s) would be submitted")
        print(result.script)
    if result.skipped_active:
        print(f"{result.stage}: shards {format_shards(result.skipped_active)} are pending or running: not submitted again")
    if result.held_back:
        print(f"{result.stage}: shards {format_shards(result.held_back)} wait for room in the queue (the profile's "
              f"max_queued_jobs): run again later, or use --wait to submit them as room frees")
    if result.waiting:
        print(f"{result.stage}: shards {format_shards(result.waiting)} wait for their input shards "
              f"({', '.join(GRAPH[result.stage].inputs)}): not submitted")
    if not result.shards:
        where = f" in {shards_text}" if shards_text else ""
        print(f"{result.stage}: nothing to submit{where} (every shard is done or active)")
        return
    verb = "would submit" if result.dry_run else "submitted"
    print(f"{result.stage}: {verb} shards {format_shards(result.shards)} ({len(result.shards)}) on '{result.cluster}'")
    if result.job_ids:
        arrays = sorted({job_id.rsplit('_', 1)[0] for job_id in result.job_ids})
        print(f"{result.stage}: job ids {', '.join(arrays[:10])}{' ...' if len(arrays) > 10 else ''}")


def _minutes(text: str) -> int:
    """--time as minutes ('90'), 'H:MM' or 'H:MM:SS' (rounded up to whole minutes)."""
    parts = [int(p) for p in text.split(":")] if all(p.isdigit() for p in text.split(":")) else []
    if not parts or len(parts) > 3:
        raise argparse.ArgumentTypeError(f"'{text}' is not minutes or H:MM[:SS]")
    if len(parts) == 1:
        return parts[0]
    hours, minutes, seconds = (parts + [0])[:3]
    return hours * 60 + minutes + (1 if seconds else 0)


def _resource_flags(parser, arrays: bool = True) -> None:
    """Per-submission changes to the cluster profile (on top of the config's `resources.<stage>`); `arrays`: the
    command submits array jobs (not `train`, one job)."""
    group = parser.add_argument_group("resources for this submission (override the profile and the config)")
    group.add_argument("--account", help="Slurm --account / PBS -A project")
    group.add_argument("--partition", "--queue", dest="partition", help="Slurm partition / PBS queue")
    group.add_argument("--qos", help="Slurm quality of service")
    group.add_argument("--time", dest="time_min", type=_minutes, help="wall-clock limit: minutes or H:MM[:SS]")
    if arrays:
        group.add_argument("--array-parallelism", type=_positive_int, help="array tasks running at once (all arrays)")
    group.add_argument("--mail", help="mail this address when a job ends or fails")


def _overrides(args) -> dict:
    names = ("account", "partition", "qos", "time_min", "array_parallelism", "mail")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _submit_and_report(cfg, args, cluster: str, **submit_options) -> int:
    """Submit, print what happened and the status table; exit 1 when shards failed and we know it (waited or local)."""
    from .config import load_cluster
    from .launch import format_status, stage_status, submit, wait

    scheduler = load_cluster(cluster).scheduler
    warning = None if args.dry_run else login_node_warning(scheduler)
    stderr = sys.stderr
    if warning:
        sys.stderr = _WarnOnFirstWrite(stderr, warning)
    overrides = _overrides(args)
    try:
        result = submit(cfg, args.stage, cluster=cluster, shards=args.shards, dry_run=args.dry_run,
                        overrides=overrides, **submit_options)
    finally:
        sys.stderr = stderr
    _print_submission(result, args.shards)
    if args.dry_run:
        return 0
    while args.wait and result.held_back:  # the queue limit: submit the rest as room frees
        time.sleep(30)
        result = submit(cfg, args.stage, cluster=cluster, shards=args.shards, overrides=overrides)
        _print_submission(result, args.shards)
    if args.wait:
        wait(cfg, args.stage, progress=_progress_printer(args.stage))
    rows = stage_status(cfg, args.stage)
    print(format_status(args.stage, rows))
    finished = args.wait or scheduler == "local"
    return 1 if finished and any(r.state == "failed" for r in rows) else 0


class _WarnOnFirstWrite:
    """stderr that writes the login-node warning just before the first thing written to it (the local pool's
    progress bar, as the shards start): a submission refused before it starts anything stays one error line."""

    def __init__(self, stream, warning: str):
        self._stream, self._warning = stream, warning

    def write(self, text: str) -> int:
        if self._warning:
            self._stream.write(self._warning + "\n")
            self._warning = None
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _progress_printer(stage: str):
    """`--wait`: one line on stderr whenever the count of shards per state changes."""
    import time

    from .launch.status import count_summary

    def show(rows) -> None:
        print(f"{time.strftime('%H:%M:%S')} {stage}: {count_summary(rows)}", file=sys.stderr, flush=True)

    return show


def cmd_run(args) -> int:
    cfg = _config(args)
    return _submit_and_report(cfg, args, args.cluster or cfg.cluster, num_shards=args.num_shards, replan=args.replan,
                              mode=args.mode)


def cmd_rerun(args) -> int:
    from .launch import last_cluster, require_plan

    cfg = _config(args)
    require_plan(cfg, args.stage)
    if args.verify and _verify(cfg, args.stage, set_aside=not args.dry_run) and args.dry_run:
        print(f"{args.stage}: (dry run: bad shards were not set aside, so they are not in the list below)")
    return _submit_and_report(cfg, args, args.cluster or last_cluster(cfg, args.stage) or cfg.cluster, mode=args.mode)


def cmd_pipeline(args) -> int:
    """`pipeline run|rerun`: submit the chain with dependencies (and with --wait, watch it); `pipeline status`: one
    table. Exit 1 when a shard failed or is blocked behind a failed one."""
    from .config import load_cluster
    from .launch import pipeline
    from .stages import GRAPH

    cfg = _config(args)
    names = GRAPH.between(args.first, args.last)
    if args.action != "status":
        cluster = args.cluster or cfg.cluster
        profile = load_cluster(cluster)
        submit = pipeline.run if args.action == "run" else pipeline.rerun
        steps = submit(cfg, cluster, args.first, args.last, args.mode, args.dry_run)
        print(pipeline.format_run(steps, args.dry_run, profile.scheduler, args.mode or profile.mode), end="")
        if args.dry_run:
            return 0
        if args.wait:
            pipeline.wait(cfg, names, progress=lambda line: print(line, file=sys.stderr, flush=True))
    table = pipeline.stage_counts(cfg, names)
    print(pipeline.format_table(table, pipeline.continuation_jobs(cfg, names)))
    report = Path(cfg.work_dir) / "report" / "index.html"
    if report.is_file():
        print(f"report: {report}")
    return 1 if any(counts.failed or counts.blocked for counts in table) else 0


def cmd_status(args) -> int:
    """Exit 1 when any shard of the stage failed or is corrupt (whatever --state shows), else 0."""
    from .launch import format_status, require_plan, stage_status, status_json
    from .launch.status import PROBLEMS

    cfg = _config(args)
    require_plan(cfg, args.stage)
    rows = stage_status(cfg, args.stage)
    if args.json:
        print(status_json([r for r in rows if not args.state or r.state in args.state]))
    else:
        print(format_status(args.stage, rows, states=args.state, every_row=True if args.all else None))
    return 1 if any(r.state in PROBLEMS for r in rows) else 0


def cmd_cancel(args) -> int:
    from .launch import cancel, format_shards

    cfg = _config(args)
    rows = cancel(cfg, args.stage, grace_s=args.grace)
    print(f"{args.stage}: cancelled shards {format_shards(r.shard for r in rows) or '(none active)'}"
          + (" (their tasks can no longer commit; `ldrt-hpc status` shows 'cancelling' until the scheduler "
             "confirms the end)" if rows else ""))
    return 0


def _verify(cfg, stage: str, set_aside: bool = True) -> int:
    """Verify the committed shards, print the bad ones (set aside unless told not to); returns how many are bad."""
    from .launch import require_plan, verify_stage

    plan = require_plan(cfg, stage)
    results = verify_stage(cfg, stage, set_aside=set_aside)
    bad = [r for r in results if not r.ok]
    for result in bad:
        print(f"{stage} shard {result.index}: BAD: {'; '.join(result.problems)}"
              + (" -> set aside (status: corrupt; `ldrt-hpc rerun` writes it again)" if set_aside else ""))
    items = sum(r.item_count or 0 for r in results if r.ok)
    print(f"{stage}: {len(results) - len(bad)}/{plan.num_shards} shards verified, {items} items"
          + (f", {plan.num_shards - len(results)} not committed" if len(results) < plan.num_shards else ""))
    return len(bad)


def cmd_verify(args) -> int:
    from .launch import require_plan

    cfg = _config(args)
    plan = require_plan(cfg, args.stage)
    bad = _verify(cfg, args.stage, set_aside=not args.no_set_aside)
    from .launch import stage_status

    missing = sum(r.state != "done" for r in stage_status(cfg, args.stage, plan))
    return 1 if bad or missing else 0


def cmd_plan(args) -> int:
    """Pin the plan and freeze the config without submitting (for static job scripts in jobs/)."""
    from .config import freeze
    from .launch.launcher import wanted_plan
    from .plan import load_plan, pin_plan
    from .runner import stage_dir

    cfg = _config(args)
    directory = stage_dir(cfg, args.stage)
    pinned = load_plan(directory)
    if pinned is None or args.replan or (args.num_shards not in (None, pinned.num_shards)):
        pinned = pin_plan(directory, wanted_plan(cfg, args.stage, args.num_shards), replan=args.replan)
    frozen = freeze(cfg)
    print(f"{args.stage}: {pinned.num_shards} shards pinned in {directory / 'plan.json'}")
    print(f"frozen config: {frozen}")
    print(f"static array: sbatch --array=0-{pinned.num_shards - 1} jobs/stage_array.sbatch {args.stage} {frozen}")
    return 0


def cmd_task(args) -> int:
    """Run one shard in this process (what static jobs/ scripts call with the array index)."""
    from .launch.schedulers import current_job
    from .runner import run_shard, stop_on_sigterm

    stop_on_sigterm()
    marker = run_shard(args.config, args.stage, args.shard, job_id=args.job_id, force=args.force,
                       claim_as=current_job(args.job_id))
    print(f"{args.stage} shard {args.shard}: {marker.get('item_count')} items")
    return 0


def cmd_worker(args) -> int:
    """One rank of an MPI ensemble job (ldrt_hpc/launch/ensemble.py): the ranks share the stage's shards."""
    from .launch.ensemble import worker_main

    return worker_main(args)


def cmd_export(args) -> int:
    from .export import export_figures, export_llava

    cfg = _config(args)
    if args.what == "llava":
        if args.contact_sheet:
            from .errors import UserError

            raise UserError("--contact-sheet draws figure detections: use it with `export figures`")
        counts = export_llava(cfg.work_dir, Path(args.out), args.eval_share, args.seed)
        total = counts["train"] + counts["eval"]
        print(f"exported {counts['train']} train / {counts['eval']} eval samples "
              f"({counts['eval'] / max(total, 1):.1%} eval; {counts['eval_papers']} of {counts['papers']} papers "
              f"in eval, none in both) to {args.out}")
        return 0
    counts = export_figures(cfg.work_dir, Path(args.out), contact_sheet=args.contact_sheet, sheet_dpi=args.sheet_dpi)
    line = (f"exported {counts['figures']} figures/tables of {counts['papers']} papers ({counts['images']} PNG, "
            f"{counts['without_crop']} detections without a crop; {counts['papers_without_figures']} papers with "
            f"none found, written as []) to {args.out}")
    if counts["incomplete_shards"]:
        line += f"; {counts['incomplete_shards']} incomplete shards skipped (their papers have no JSON)"
    print(line)
    if args.contact_sheet:
        print(f"contact sheets: {counts['contact_sheet_pages']} pages of {counts['contact_sheets']} papers in "
              f"{Path(args.out) / 'contact-sheets'}/<paper_id>/page-NNN.png (caption boxes blue, regions red)"
              + (f"; {counts['contact_sheets_missing_pdf']} papers skipped, their PDF is gone"
                 if counts["contact_sheets_missing_pdf"] else ""))
    return 0


def cmd_keywords(args) -> int:
    from .harvest.keywords import generate_keywords

    cfg = _config(args)
    result = generate_keywords(cfg, args.count, Path(args.out))
    print(f"wrote {result['kept']} new search strings to {args.out} for review (rejected: {result['rejected'] or 'none'})")
    return 0


def cmd_synth(args) -> int:
    """Without --config: OUT, --papers and --seed as given (SynthConfig's defaults otherwise). With --config, what
    is not given comes from the config: synth.papers, synth.seed, and stages.ingest.input_dir (the PDFs that
    `run ingest` reads) as OUT."""
    from .config import SynthConfig
    from .errors import ConfigError, UserError

    try:
        from .demo import synth_corpus
    except ModuleNotFoundError as exc:  # matplotlib is an extra: the pipeline itself does not need it
        if (exc.name or "").split(".")[0] != "matplotlib":
            raise
        raise UserError("synth-corpus draws its figures with matplotlib: pip install 'ldrt-hpc[demo]'") from None
    synth, out = SynthConfig(), args.out
    if args.config is not None:
        cfg = _config(args)
        synth = cfg.synth
        if out is None:
            out = cfg.stage_settings("ingest").input_dir
            if out is None:
                raise ConfigError(f"{args.config}: stages.ingest.input_dir is not set: give the output folder")
    if out is None:
        raise UserError("synth-corpus: give the output folder, or --config to write to its stages.ingest.input_dir")
    papers = synth.papers if args.papers is None else args.papers
    seed = synth.seed if args.seed is None else args.seed
    truth = synth_corpus(Path(out), papers, seed, classes=args.classes)
    print(f"wrote {len(truth)} papers to {out}")
    return 0


def cmd_train(args) -> int:
    """Submit the training job (or print its script); --wait follows it to the end."""
    from .config import load_cluster
    from .launch.train import submit_training
    from .train.config import load_train

    cfg = load_train(args.config)
    cluster = args.cluster or "local"
    if not args.dry_run and (warning := login_node_warning(load_cluster(cluster).scheduler)):
        print(warning, file=sys.stderr)
    flags = _overrides(args)
    if args.nodes:
        flags["nodes"] = args.nodes
    result = submit_training(cfg, cluster, dry_run=args.dry_run, flags=flags)
    if args.dry_run:
        print(f"# job script ({cluster}): {result.ranks} rank(s); config {result.config}")
        print(result.script)
        return 0
    print(f"train: submitted job {result.job_id} on '{cluster}' ({result.ranks} ranks); logs in {result.log_folder}; "
          f"outputs in {cfg.output_dir}")
    if not args.wait:
        return 0
    summary = result.job.results()[0]  # rank 0 speaks for the job
    print(json.dumps(summary, indent=1, default=str))
    return 0 if not summary.get("stopped") else 3


def cmd_report(args) -> int:
    """Tables and figures of the evaluation, from the stage shards: `table1` (its files), or `all` (the whole report;
    one line per section, then the path of index.html as the last line)."""
    cfg = _config(args)
    out_dir = Path(args.out) if args.out else cfg.work_dir / "report"
    if args.what == "table1":
        from .analysis.results import write_table1

        for path in write_table1(cfg, out_dir, seed=args.seed, resamples=args.resamples):
            print(path)
        return 0
    from .analysis.report import build_report

    index = build_report(cfg, out_dir, seed=args.seed, resamples=args.resamples, echo=print)
    print(index)
    return 0


def cmd_stages(args) -> int:
    """The stage graph: every stage in pipeline order, or the names from --from to --to (for scripts)."""
    from .stages.graph import GRAPH

    if args.names:
        print(" ".join(GRAPH.between(args.first, args.last)))
    else:
        print(GRAPH.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldrt-hpc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ldrt-hpc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    def stage_command(name, func, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("stage", help="stage name, e.g. ingest")
        p.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline config YAML (default {DEFAULT_CONFIG})")
        p.set_defaults(func=func)
        return p

    p = stage_command("run", cmd_run, "submit the stage's shards that are not done as array jobs")
    p.add_argument("--cluster", help="cluster profile name (configs/clusters/NAME.yaml) or path; default: config's")
    p.add_argument("--shards", help="only these shards, e.g. 0-9,17")
    p.add_argument("--num-shards", type=_positive_int,
                   help="shard count for a new plan (a pinned plan refuses a change)")
    p.add_argument("--replan", action="store_true", help="move the pinned plan and its shards aside and re-plan")
    p.add_argument("--dry-run", action="store_true", help="print the job script and shard list; submit nothing")
    p.add_argument("--wait", action="store_true", help="wait until no shard is pending or running")
    p.add_argument("--mode", choices=("array", "mpi"), help="array tasks, or one MPI ensemble job (default: profile's)")
    _resource_flags(p)

    p = stage_command("rerun", cmd_rerun, "resubmit only the failed, corrupt and missing shards")
    p.add_argument("--cluster", help="cluster profile (default: the one of the last submission)")
    p.add_argument("--verify", action="store_true", help="verify the committed shards first; bad ones are redone")
    p.add_argument("--shards", help="only these shards, e.g. 3,5")
    p.add_argument("--dry-run", action="store_true", help="print the job script and shard list; submit nothing")
    p.add_argument("--wait", action="store_true", help="wait until no shard is pending or running")
    p.add_argument("--mode", choices=("array", "mpi"), help="array tasks, or one MPI ensemble job (default: profile's)")
    _resource_flags(p)

    p = sub.add_parser("pipeline", help="`run`: every stage at once, chained by scheduler dependencies; `status`: "
                                        "one table; `rerun`: failed shards and everything below them")
    p.add_argument("action", choices=("run", "status", "rerun"))
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline config YAML (default {DEFAULT_CONFIG})")
    p.add_argument("--cluster", help="cluster profile name or path (default: the config's)")
    p.add_argument("--from", dest="first", help="first stage (default: the graph's first)")
    p.add_argument("--to", dest="last", help="last stage (default: the graph's last)")
    p.add_argument("--mode", choices=("array", "mpi"), help="array tasks, or one MPI ensemble job per stage "
                                                           "(default: the profile's mode)")
    p.add_argument("--dry-run", action="store_true", help="print the dependency graph and every job script")
    p.add_argument("--wait", action="store_true", help="wait until nothing is queued or running")
    p.set_defaults(func=cmd_pipeline)

    p = stage_command("status", cmd_status, "one row per shard: done / failed / running / pending / missing; "
                                            "exit 1 when a shard failed or is corrupt")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--state", type=_state_list, help="only shards in these states, e.g. failed,pending")
    p.add_argument("--all", action="store_true",
                   help="one row per shard even above 50 shards (default there: one line per group of shards "
                        "with the same state and error)")

    p = stage_command("verify", cmd_verify, "check every committed shard (checksums, counts, marker); set bad ones aside")
    p.add_argument("--no-set-aside", action="store_true", help="only report bad shards; leave them in place")
    p = stage_command("cancel", cmd_cancel, "cancel the stage's pending and running jobs; their tasks cannot commit")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds running tasks get to stop after SIGTERM before they are killed (default 10)")

    p = stage_command("plan", cmd_plan, "pin the stage's shard plan and freeze the config; submit nothing")
    p.add_argument("--num-shards", type=_positive_int, help="shard count for a new plan")
    p.add_argument("--replan", action="store_true", help="move the pinned plan and its shards aside and re-plan")

    p = stage_command("task", cmd_task, "run one shard here (for static job scripts: jobs/*.sbatch, jobs/*.pbs)")
    p.add_argument("--shard", type=int, required=True, help="shard index")
    p.add_argument("--job-id", help="scheduler job id, recorded in the marker")
    p.add_argument("--force", action="store_true", help="run even if the shard is complete")

    p = stage_command("worker", cmd_worker, "one rank of an MPI ensemble job (`mpiexec -n R ldrt-hpc worker STAGE`): "
                                            "rank 0 hands out the shards, every rank runs them")
    p.add_argument("--shards", help="only these shards, e.g. 0-9,17 (default: every shard that is not done)")
    p.add_argument("--generation", help="the submission that reserved the shards (`run --mode mpi` sets it); "
                                        "default: each shard is claimed as a direct run")
    p.add_argument("--job-id", help="scheduler job id, recorded with each shard")
    p.add_argument("--deadline", type=float,
                   help="epoch seconds at which the job's wall time ends (default: $LDRT_JOB_DEADLINE, else none)")
    p.add_argument("--expected-s", type=float,
                   help="a shard's expected duration in seconds until one has finished (default: no guess)")

    p = sub.add_parser("train", help="fine-tune LLaVA (align + LoRA) as one multi-node job; resumes by itself")
    p.add_argument("--config", required=True, help="training config YAML (configs/train/*.yaml)")
    p.add_argument("--cluster", help="cluster profile (default: local); resources come from its multinode_gpu class")
    p.add_argument("--nodes", type=_positive_int, help="nodes (default: the profile's resource class)")
    p.add_argument("--dry-run", action="store_true", help="print the job script; submit nothing")
    p.add_argument("--wait", action="store_true", help="wait for the job and print its summary")
    _resource_flags(p, arrays=False)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="`all` (default): the evaluation report, WORK/report/index.html (funnel, Table 1, "
                                      "judge scores, hallucination, training loss); `table1`: Table 1 only (CSV, "
                                      "Markdown, LaTeX)")
    p.add_argument("what", nargs="?", choices=["all", "table1"], default="all",
                   help="what to write (default: all)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline config YAML (default {DEFAULT_CONFIG})")
    p.add_argument("--out", help="output folder (default WORK/report)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--resamples", type=_positive_int, default=2000, help="bootstrap resamples (default 2000)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("stages", help="the stage graph: stages in pipeline order, what each reads and plans from")
    p.add_argument("--from", dest="first", help="first stage of the range (--names)")
    p.add_argument("--to", dest="last", help="last stage of the range (--names)")
    p.add_argument("--names", action="store_true", help="print only the names, space-separated (for make and scripts)")
    p.set_defaults(func=cmd_stages)

    p = sub.add_parser("export", help="`figures` -> pdffigures2-style JSON + PNG; `llava` -> train/eval JSON + images")
    p.add_argument("what", choices=["figures", "llava"], help="what to export")
    p.add_argument("--eval-share", type=float, default=0.03, help="llava: share of samples in eval (by paper)")
    p.add_argument("--seed", type=int, default=0, help="llava: split seed")
    p.add_argument("--contact-sheet", action="store_true",
                   help="figures: also draw every page of every processed paper with its detected caption (blue) and "
                        "region (red) boxes, OUT/contact-sheets/<paper_id>/page-NNN.png (1-based page numbers)")
    p.add_argument("--sheet-dpi", type=int, default=60, help="figures --contact-sheet: resolution of the pages")
    p.add_argument("out", help="output folder")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline config YAML (default {DEFAULT_CONFIG})")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("keywords", help="keyword lists: `generate` asks the LLM for new search strings")
    p.add_argument("action", choices=["generate"])
    p.add_argument("--out", default="configs/keywords/generated.yaml", help="YAML written for review")
    p.add_argument("--count", type=int, default=20, help="how many strings to ask for")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline config YAML (default {DEFAULT_CONFIG})")
    p.set_defaults(func=cmd_keywords)

    p = sub.add_parser("synth-corpus", help="write a generated LDRT-like PDF corpus (the demo input)")
    p.add_argument("out", nargs="?", help="output folder (with --config: default stages.ingest.input_dir)")
    p.add_argument("--papers", type=int, help="number of papers (default 8, with --config synth.papers)")
    p.add_argument("--seed", type=int, help="random seed, same seed same PDFs (default 0, with --config synth.seed)")
    p.add_argument("--config", help="pipeline config YAML whose synth section and ingest input_dir are the defaults")
    p.add_argument("--classes", action="store_true",
                   help="papers that show the layouts figure extraction used to miss, one class per paper in turn "
                        "(docs/figures.md): unnumbered, panel letters, hyphenated, roman-numeral, capitals, label "
                        "above, no spaces, hidden weight, rotated, full-width table, publisher box, multi-panel, "
                        "slivers; ground_truth.json gives each paper's and float's failure_class")
    p.set_defaults(func=cmd_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import UserError

    args = build_parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a shard list or an error message never fails on an ASCII terminal
        sys.stdout.reconfigure(errors="replace")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except (UserError, FileNotFoundError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ldrt-hpc: error: {message}", file=sys.stderr)
        return 2


def _stdout_closed() -> int:
    """The reader went away (`ldrt-hpc status --json | head`): stop quietly. Python would complain again when it
    flushes stdout at exit, so stdout is pointed at /dev/null first. Exit status 141 (128 + SIGPIPE) like a shell
    tool killed by SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
