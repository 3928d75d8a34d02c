"""`ldrt-hpc`: run stages as array jobs, watch them, rerun what failed, verify shards, generate the demo corpus."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__

DEFAULT_CONFIG = "configs/demo.yaml"


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


def _submit_and_report(cfg, args, cluster: str, **submit_options) -> int:
    """Submit, print what happened and the status table; exit 1 when shards failed and we know it (waited or local)."""
    from .config import load_cluster
    from .launch import format_status, stage_status, submit, wait

    result = submit(cfg, args.stage, cluster=cluster, shards=args.shards, dry_run=args.dry_run, **submit_options)
    _print_submission(result, args.shards)
    if args.dry_run:
        return 0
    if args.wait and result.job_ids:
        wait(cfg, args.stage)
    rows = stage_status(cfg, args.stage)
    print(format_status(args.stage, rows))
    finished = args.wait or load_cluster(cluster).scheduler == "local"
    return 1 if finished and any(r.state == "failed" for r in rows) else 0


def cmd_run(args) -> int:
    cfg = _config(args)
    return _submit_and_report(cfg, args, args.cluster or cfg.cluster, num_shards=args.num_shards, replan=args.replan)


def cmd_rerun(args) -> int:
    from .launch import last_cluster, require_plan

    cfg = _config(args)
    require_plan(cfg, args.stage)
    if args.verify and _verify(cfg, args.stage, set_aside=not args.dry_run) and args.dry_run:
        print(f"{args.stage}: (dry run: bad shards were not set aside, so they are not in the list below)")
    return _submit_and_report(cfg, args, args.cluster or last_cluster(cfg, args.stage) or cfg.cluster)


def cmd_status(args) -> int:
    from .launch import format_status, require_plan, stage_status, status_json

    cfg = _config(args)
    require_plan(cfg, args.stage)
    rows = stage_status(cfg, args.stage)
    print(status_json(rows) if args.json else format_status(args.stage, rows))
    return 0


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
    from .runner import run_shard, stop_on_sigterm

    stop_on_sigterm()
    marker = run_shard(args.config, args.stage, args.shard, job_id=args.job_id, force=args.force)
    print(f"{args.stage} shard {args.shard}: {marker.get('item_count')} items")
    return 0


def cmd_export(args) -> int:
    from .export import export_figures, export_llava

    cfg = _config(args)
    if args.what == "llava":
        counts = export_llava(cfg.work_dir, Path(args.out), args.eval_share, args.seed)
        total = counts["train"] + counts["eval"]
        print(f"exported {counts['train']} train / {counts['eval']} eval samples "
              f"({counts['eval'] / max(total, 1):.1%} eval; {counts['eval_papers']} of {counts['papers']} papers "
              f"in eval, none in both) to {args.out}")
        return 0
    counts = export_figures(cfg.work_dir, Path(args.out))
    print(f"exported {counts['figures']} figures/tables of {counts['papers']} papers ({counts['images']} PNG) to {args.out}"
          + (f"; {counts['incomplete_shards']} incomplete shards skipped" if counts["incomplete_shards"] else ""))
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
    truth = synth_corpus(Path(out), papers, seed)
    print(f"wrote {len(truth)} papers to {out}")
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
    p.add_argument("--num-shards", type=int, help="shard count for a new plan (a pinned plan refuses a change)")
    p.add_argument("--replan", action="store_true", help="move the pinned plan and its shards aside and re-plan")
    p.add_argument("--dry-run", action="store_true", help="print the job script and shard list; submit nothing")
    p.add_argument("--wait", action="store_true", help="wait until no shard is pending or running")

    p = stage_command("rerun", cmd_rerun, "resubmit only the failed, corrupt and missing shards")
    p.add_argument("--cluster", help="cluster profile (default: the one of the last submission)")
    p.add_argument("--verify", action="store_true", help="verify the committed shards first; bad ones are redone")
    p.add_argument("--shards", help="only these shards, e.g. 3,5")
    p.add_argument("--dry-run", action="store_true", help="print the job script and shard list; submit nothing")
    p.add_argument("--wait", action="store_true", help="wait until no shard is pending or running")

    p = stage_command("status", cmd_status, "one row per shard: done / failed / running / pending / missing")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = stage_command("verify", cmd_verify, "check every committed shard (checksums, counts, marker); set bad ones aside")
    p.add_argument("--no-set-aside", action="store_true", help="only report bad shards; leave them in place")
    p = stage_command("cancel", cmd_cancel, "cancel the stage's pending and running jobs; their tasks cannot commit")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds running tasks get to stop after SIGTERM before they are killed (default 10)")

    p = stage_command("plan", cmd_plan, "pin the stage's shard plan and freeze the config; submit nothing")
    p.add_argument("--num-shards", type=int, help="shard count for a new plan")
    p.add_argument("--replan", action="store_true", help="move the pinned plan and its shards aside and re-plan")

    p = stage_command("task", cmd_task, "run one shard here (for static job scripts: jobs/*.sbatch, jobs/*.pbs)")
    p.add_argument("--shard", type=int, required=True, help="shard index")
    p.add_argument("--job-id", help="scheduler job id, recorded in the marker")
    p.add_argument("--force", action="store_true", help="run even if the shard is complete")

    p = sub.add_parser("stages", help="the stage graph: stages in pipeline order, what each reads and plans from")
    p.add_argument("--from", dest="first", help="first stage of the range (--names)")
    p.add_argument("--to", dest="last", help="last stage of the range (--names)")
    p.add_argument("--names", action="store_true", help="print only the names, space-separated (for make and scripts)")
    p.set_defaults(func=cmd_stages)

    p = sub.add_parser("export", help="`figures` -> pdffigures2-style JSON + PNG; `llava` -> train/eval JSON + images")
    p.add_argument("what", choices=["figures", "llava"], help="what to export")
    p.add_argument("--eval-share", type=float, default=0.03, help="llava: share of samples in eval (by paper)")
    p.add_argument("--seed", type=int, default=0, help="llava: split seed")
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
    p.set_defaults(func=cmd_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import UserError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (UserError, FileNotFoundError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ldrt-hpc: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
