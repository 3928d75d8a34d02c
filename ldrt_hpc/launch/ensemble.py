"""MPI ensemble mode, worker side: `mpiexec -n R ldrt-hpc worker STAGE --config F` shares a stage's shards among
R ranks of one job.

- Rank 0 decides the shard list (`--shards`, else every shard of the pinned plan that is not complete; it pins
  the plan first if there is none, as `ldrt-hpc plan` does), largest first when the sizes are known, and hands the
  shards out one at a time on request (a dynamic queue: fast ranks take more shards).
- Every rank runs shards, rank 0 included (on Polaris every rank owns a GPU; a dispatcher-only rank would leave
  one idle): rank 0 runs its own shard in a child process and keeps answering the other ranks while it runs.
- Each shard runs in a forked child (`os.fork`: no new interpreter, so the queue costs milliseconds per shard)
  that calls `ldrt_hpc.runner.run_shard`. A shard that raises, segfaults, is OOM-killed or calls `os._exit` ends
  only its child: the rank sees the exit status, and when the child left no failure record the rank writes one,
  so `ldrt-hpc status` shows the shard failed with the cause. The other shards go on. The child never calls MPI
  (it leaves with `os._exit`, so not even mpi4py's finalizer runs in it).
- A rank that dies (its own process, not a child) usually makes mpiexec end the whole job. The shards then
  running are left without a marker; once the job has ended, `status` sees them as failed (the job's record
  names a process or job that is gone), and `rerun` submits them again. A child whose rank died gets SIGTERM
  (PR_SET_PDEATHSIG) and records itself failed. Inside a Slurm or PBS job the shards are claimed as that job
  (without a generation); `status` then shows a failed shard as running until the job ends, because for those
  schedulers the live job state wins over a failure record (requeues); the summary names it at once.
- Wall-time aware: rank 0 hands out no new shard when the time left before the deadline (`--deadline`, else
  $LDRT_JOB_DEADLINE) is shorter than a shard's expected duration (the longest seen so far, or `--expected-s`
  before any finished) plus MARGIN_S. With a generation, the shards never started get an `aborted` line in the
  submission records, so `status` shows them failed with the reason and `rerun` takes them.
- GPUs: with $LDRT_GPUS_PER_RANK=g, local rank r sees devices r*g .. r*g+g-1 (`gpu_devices`), unless the
  launcher already narrowed CUDA_VISIBLE_DEVICES to g devices or fewer.
- At the end rank 0 prints a short summary and writes it as JSON to WORK/<stage>/_jobs/ensemble-<job>.json; it
  exits 0 when every shard is done, 1 when one failed or was not started (2: the shard list could not be made).

Fork and the MPI library: the rank itself must not initialise CUDA (nothing here imports torch), since a forked
child of a CUDA process cannot use the GPU; keep GPU-aware MPI (MPICH_GPU_SUPPORT_ENABLED) off for ensemble jobs,
the children do not use MPI anyway. Should the network library warn about fork (Open MPI's `mpi_warn_on_fork`,
libfabric's FI_CXI_FORK_SAFE on Slingshot), set it for the job: the child touches no MPI memory.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REQUEST, WORK = 11, 12
"""MPI tags: a rank asks for work (with the result of its last shard), rank 0 answers with a shard or None."""
MARGIN_S = 5.0
"""Seconds kept free before the deadline on top of a shard's expected duration (commit, summary, exit)."""
POLL_MIN_S, POLL_MAX_S = 0.0002, 0.002
"""Sleeps between polls (MPI requests, a child's exit): short after activity, growing while idle, so that the
queue answers within milliseconds without spinning a core that a shard needs."""
LOCAL_RANK_VARS = ("OMPI_COMM_WORLD_LOCAL_RANK", "PALS_LOCAL_RANKID", "SLURM_LOCALID", "MPI_LOCALRANKID")
"""Where launchers put a rank's index on its node: Open MPI, PALS (Polaris), Slurm's srun, MPICH/Hydra."""
EXIT_OK, EXIT_FAILED, EXIT_LOST = 0, 1, 3
"""A child's exit status: shard done (or already complete), the stage raised, the shard is not ours."""


# --------------------------------------------------------------------------------------------------------------
# pure pieces (unit-tested)


def resolve_deadline(value: float | None, env: Mapping[str, str] = os.environ) -> float | None:
    """The job's end in epoch seconds: `--deadline`, else $LDRT_JOB_DEADLINE, else None (no limit known)."""
    if value is not None:
        return float(value)
    text = env.get("LDRT_JOB_DEADLINE", "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"LDRT_JOB_DEADLINE={text!r} is not epoch seconds") from None


def refusal(now: float, deadline: float | None, expected_s: float | None, margin_s: float = MARGIN_S) -> str | None:
    """Why no new shard may start now (None: it may). A shard that cannot finish before the deadline would be
    killed halfway; better leave it to the next job."""
    if deadline is None or expected_s is None:
        return None
    left = deadline - now
    if left >= expected_s + margin_s:
        return None
    return f"{max(left, 0.0):.0f} s of wall time left, a shard takes ~{expected_s:.0f} s"


def largest_first(indices: Iterable[int], sizes: Mapping[int, int] | None) -> list[int]:
    """Largest shards first (the long ones do not end up alone at the end of the job); ties and unknown sizes in
    index order."""
    if not sizes:
        return sorted(indices)
    return sorted(indices, key=lambda index: (-sizes.get(index, 0), index))


def local_rank_from_env(env: Mapping[str, str] = os.environ) -> int | None:
    """The rank's index on its node as the launcher tells it (None: no known launcher variable)."""
    for name in LOCAL_RANK_VARS:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def gpus_per_rank(env: Mapping[str, str] = os.environ) -> int:
    """$LDRT_GPUS_PER_RANK (0 when unset: no binding)."""
    text = env.get("LDRT_GPUS_PER_RANK", "").strip()
    try:
        return max(0, int(text)) if text else 0
    except ValueError:
        raise ValueError(f"LDRT_GPUS_PER_RANK={text!r} is not a whole number") from None


def gpu_devices(local_rank: int, per_rank: int, visible: Sequence[str] | None = None) -> list[str]:
    """The devices of local rank r with g GPUs per rank: r*g .. r*g+g-1, as numbers, or as entries of `visible`
    (the node's CUDA_VISIBLE_DEVICES list, when the job set one)."""
    first = local_rank * per_rank
    if visible is None:
        return [str(device) for device in range(first, first + per_rank)]
    chosen = list(visible[first:first + per_rank])
    if len(chosen) < per_rank:
        raise ValueError(f"local rank {local_rank} needs GPUs {first}-{first + per_rank - 1} of "
                         f"CUDA_VISIBLE_DEVICES={','.join(visible)}: start fewer ranks per node or lower "
                         f"LDRT_GPUS_PER_RANK")
    return chosen


def bind_gpus(local_rank: int, env: MutableMapping[str, str] = os.environ) -> str | None:
    """Set CUDA_VISIBLE_DEVICES to this rank's GPUs (inherited by its shard processes); returns the value, or None
    when nothing was changed (no $LDRT_GPUS_PER_RANK, or the launcher already gave the rank g devices or fewer)."""
    per_rank = gpus_per_rank(env)
    if per_rank <= 0:
        return None
    current = env.get("CUDA_VISIBLE_DEVICES")
    visible = None
    if current is not None:
        visible = [device.strip() for device in current.split(",") if device.strip()]
        if len(visible) <= per_rank:
            return None  # already one rank's share (srun --gpus-per-task, a PALS affinity script)
    value = ",".join(gpu_devices(local_rank, per_rank, visible))
    env["CUDA_VISIBLE_DEVICES"] = value
    return value


class Dispatcher:
    """Rank 0's queue: which shard goes next, under the wall-time rule. No MPI, no files: tested directly."""

    def __init__(self, shards: Sequence[int], deadline: float | None, expected_s: float | None,
                 margin_s: float = MARGIN_S):
        self.queue = deque(shards)
        self.deadline = deadline
        self.expected_s = expected_s
        self.margin_s = margin_s
        self.not_started: list[int] = []
        self.why_not_started: str | None = None
        self.results: list[ShardResult] = []

    def next_shard(self, now: float | None = None) -> int | None:
        """The next shard to hand out, or None: the queue is empty, or too little time is left (then every shard
        still queued is set aside as not started, with the reason)."""
        if not self.queue:
            return None
        why = refusal(time.time() if now is None else now, self.deadline, self.expected_s, self.margin_s)
        if why:
            self.not_started += list(self.queue)
            self.queue.clear()
            self.why_not_started = why
            return None
        return self.queue.popleft()

    def finished(self, result: ShardResult) -> None:
        """Keep the result; a shard that really ran updates the expected duration (the longest seen so far)."""
        self.results.append(result)
        if not result.skipped:
            self.expected_s = max(self.expected_s or 0.0, result.duration_s)


# --------------------------------------------------------------------------------------------------------------
# the shard list (rank 0)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def shard_sizes(work_dir: Path, plan, indices: Iterable[int]) -> dict[int, int] | None:
    """Bytes each shard reads: its input files (a plan with assignments) or its upstream shard files; None when not
    known (inputs that are not files, no upstream). One stat per input: on a parallel file system with very many
    inputs this takes a while, once, on rank 0."""
    from .. import layout

    if plan.assignments is not None:
        sizes = {i: sum(_file_size(Path(p)) for p in plan.inputs(i)) for i in indices}
    elif plan.upstream:
        sizes = {i: sum(_file_size(layout.shard_path(layout.stage_dir(work_dir, name), i)) for name in plan.upstream)
                 for i in indices}
    else:
        return None
    return sizes if any(sizes.values()) else None


def choose_shards(config_path: str, stage: str, spec: str | None) -> tuple[list[int], list[int]]:
    """(shards to run, largest first; shards already complete). Pins the plan when there is none, as `ldrt-hpc
    plan` does, so that every rank's shards come from the same plan."""
    from ..config import load_pipeline
    from ..plan import load_plan, pin_plan
    from ..runner import stage_dir
    from ..shards import is_complete
    from .selection import parse_shards

    cfg = load_pipeline(config_path)
    directory = stage_dir(cfg, stage)
    plan = load_plan(directory)
    if plan is None:
        from .launcher import wanted_plan

        plan = pin_plan(directory, wanted_plan(cfg, stage, None))
        log.info("%s: %d shards pinned in %s", stage, plan.num_shards, directory / "plan.json")
    chosen = parse_shards(spec, plan.num_shards) if spec else list(range(plan.num_shards))
    complete = [i for i in chosen if is_complete(directory, i)]
    todo = [i for i in chosen if i not in set(complete)]
    return largest_first(todo, shard_sizes(cfg.work_dir, plan, todo)), complete


# --------------------------------------------------------------------------------------------------------------
# one shard in a forked child


@dataclass
class ShardResult:
    index: int
    rank: int
    ok: bool
    duration_s: float
    """The child's wall time, fork to exit."""
    overhead_s: float
    """Queue cost of this shard: waiting for the hand-out and forking, plus the child's time outside run_shard
    (the wait for a rank's first shard, which includes rank 0's set-up, is `startup_s` instead)."""
    items: int | None = None
    error: str | None = None
    skipped: bool = False
    """Already complete when the child looked: nothing run."""
    startup_s: float = 0.0
    """For a rank's first shard: the time from the rank's start to this shard's fork."""


def claim_identity(job_id: str | None, pid: int) -> tuple[str, str]:
    """(scheduler, job id) a shard is claimed as without a generation: the job's, else the shard process's
    'pid@host' (`current_job` in that process), so that `status` asks whether that process still runs."""
    from .schedulers import current_job

    scheduler, job = current_job(job_id)
    if scheduler == "direct" and not job_id:
        job = f"{pid}@{socket.gethostname()}"
    return scheduler, job


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when its rank dies (mpiexec killed it): no orphan goes on writing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_main(config_path: str, stage: str, index: int, job_id: str | None, generation: str | None,
                write_fd: int, parent: int) -> None:
    """Body of the forked shard process: run the shard, write a one-line JSON result to the pipe, `os._exit`."""
    code, result = EXIT_FAILED, {}
    started = time.perf_counter()
    try:
        _die_with_parent()
        if os.getppid() != parent:  # the rank died before the line above took effect
            os._exit(EXIT_FAILED)
        from ..config import load_pipeline
        from ..errors import LostOwnership
        from ..runner import run_shard, stage_dir
        from ..shards import is_complete

        _terminate_once()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        claim_as = claim_identity(job_id, os.getpid())
        try:
            skipped = is_complete(stage_dir(load_pipeline(config_path), stage), index)
            marker = run_shard(config_path, stage, index, job_id=claim_as[1], generation=generation,
                               claim_as=None if generation else claim_as)
            code, result = EXIT_OK, {"ok": True, "items": marker.get("item_count"), "skipped": skipped}
        except LostOwnership as exc:
            code, result = EXIT_LOST, {"ok": False, "error": f"LostOwnership: {exc}"}
        except BaseException as exc:  # noqa: BLE001 - the runner has written the failure record
            code, result = EXIT_FAILED, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
            traceback.print_exc()
        result["inner_s"] = time.perf_counter() - started
        os.write(write_fd, (json.dumps(result) + "\n").encode())  # small: fits the pipe without a reader
    except BaseException:  # noqa: BLE001 - whatever happens, never return into the rank's code
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _terminate_once() -> None:
    """SIGTERM ends the shard as in array mode (`runner.stop_on_sigterm`), but only the first one: mpiexec and
    Slurm signal the whole process group and the rank forwards the signal too, and a second Terminated raised
    while the runner writes the failure record would cut that record short."""
    from ..runner import Terminated

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(f"received {signal.Signals(signum).name} (cancelled, preempted or out of time)")

    signal.signal(signal.SIGTERM, handler)


def _exit_cause(status: int) -> str:
    """A dead child's wait status in words."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (out of memory? the OOM killer sends SIGKILL)" if number == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class ShardRunner:
    """Runs this rank's shards, one forked child at a time, and turns each child's end into a ShardResult."""

    def __init__(self, config_path: str, stage: str, rank: int, job_id: str | None, generation: str | None):
        self.config_path, self.stage, self.rank = config_path, stage, rank
        self.job_id, self.generation = job_id, generation
        self.started = time.perf_counter()
        self.ready_since: float | None = None
        """When this rank's last child was reaped (None: no shard run yet)."""
        self.child: Child | None = None

    def start(self, index: int) -> Child:
        sys.stdout.flush()
        sys.stderr.flush()  # buffered output would otherwise be written twice, by the rank and by its child
        gc.freeze()  # the child's garbage collector then leaves the rank's objects alone: fewer pages copied
        read_fd, write_fd = os.pipe()
        forked_at = time.perf_counter()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_main(self.config_path, self.stage, index, self.job_id, self.generation, write_fd, parent)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        first = self.ready_since is None
        wait_s = 0.0 if first else forked_at - self.ready_since
        self.child = Child(self, index, pid, read_fd, forked_at, wait_s, time.time(),
                           forked_at - self.started if first else 0.0)
        return self.child

    def run(self, index: int) -> ShardResult:
        """Run one shard and wait for it (ranks other than 0 have nothing else to do meanwhile)."""
        return self.start(index).wait()


@dataclass
class Child:
    runner: ShardRunner
    index: int
    pid: int
    read_fd: int
    forked_at: float
    wait_s: float
    started_epoch: float
    startup_s: float

    def poll(self) -> ShardResult | None:
        """The result once the child has ended, else None (does not block)."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return None if pid == 0 else self._ended(status)

    def wait(self) -> ShardResult:
        _, status = os.waitpid(self.pid, 0)
        return self._ended(status)

    def _read(self) -> dict[str, Any] | None:
        """The child's one-line result; not read to EOF (a grandchild may still hold the pipe's write end)."""
        chunks = []
        try:
            while chunk := os.read(self.read_fd, 65536):
                chunks.append(chunk)
        except BlockingIOError:
            pass
        finally:
            os.close(self.read_fd)
        try:
            return json.loads(b"".join(chunks).decode().splitlines()[0])
        except (ValueError, IndexError):
            return None

    def _ended(self, status: int) -> ShardResult:
        runner = self.runner
        ended = time.perf_counter()
        runner.child, runner.ready_since = None, ended
        duration = ended - self.forked_at
        data = self._read()
        if data is None and _committed(runner, self.index):  # died after its commit: the shard is done
            data = {"ok": True, "inner_s": 0.0}
        if data is None:  # died without a word: segfault, OOM kill, os._exit
            error = f"the shard process (pid {self.pid}) {_exit_cause(status)} without a result"
            _record_dead_child(runner, self.index, self.pid, error, self.started_epoch, duration)
            data = {"ok": False, "error": error, "inner_s": 0.0}
        result = ShardResult(self.index, runner.rank, bool(data.get("ok")), round(duration, 4),
                             round(self.wait_s + max(0.0, duration - float(data.get("inner_s") or 0.0)), 5),
                             data.get("items"), data.get("error"), bool(data.get("skipped")),
                             round(self.startup_s, 4))
        _log_result(runner.stage, result)
        return result


def _committed(runner: ShardRunner, index: int) -> bool:
    from ..config import load_pipeline
    from ..runner import stage_dir
    from ..shards import is_complete

    try:
        return is_complete(stage_dir(load_pipeline(runner.config_path), runner.stage), index)
    except Exception:  # noqa: BLE001 - cannot tell: treated as not committed
        return False


def _record_dead_child(runner: ShardRunner, index: int, pid: int, error: str, started: float,
                       duration: float) -> None:
    """Write the failure record the dead child could not write, for the generation that owns the shard if it is
    this attempt's (the one given, or the direct claim the child made as `claim_identity`); only the owner
    describes a shard, as in the runner."""
    from .. import ownership
    from ..config import load_pipeline
    from ..runner import record_failure, stage_dir

    try:
        directory = stage_dir(load_pipeline(runner.config_path), runner.stage)
        scheduler, job = claim_identity(runner.job_id, pid)
        generation = runner.generation
        owner = ownership.owners(directory).get(index)
        if generation is None and owner is not None:
            ours = owner.get("job_id") == job and owner.get("submitted_at", 0) >= started - 1
            if not ours:
                return  # the child died before claiming: the shard's state is its owner's to tell
            generation = owner.get("generation")
        if generation is not None and ownership.ownership_problem(directory, index, generation):
            return
        record_failure(directory, index, {
            "stage": runner.stage, "shard_index": index, "error": error, "traceback": "",
            "job_id": job, "generation": generation, "host": socket.gethostname(),
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "duration_s": round(duration, 3),
            "scheduler": scheduler})
    except Exception as exc:  # noqa: BLE001 - the rank goes on; the summary still names the failure
        log.warning("%s shard %d: could not write the failure record of its dead process: %s", runner.stage, index, exc)


def _log_result(stage: str, result: ShardResult) -> None:
    if result.ok:
        what = "already complete" if result.skipped else f"done in {result.duration_s:.2f} s ({result.items} items)"
        log.info("rank %d: %s shard %d %s", result.rank, stage, result.index, what)
    else:
        log.info("rank %d: %s shard %d failed after %.2f s: %s", result.rank, stage, result.index, result.duration_s,
                 result.error)


# --------------------------------------------------------------------------------------------------------------
# the queue over MPI


class _Pause:
    """Sleep between polls: short right after something happened, doubling while idle (up to POLL_MAX_S)."""

    def __init__(self):
        self.seconds = POLL_MIN_S

    def __call__(self, busy: bool) -> None:
        if busy:
            self.seconds = POLL_MIN_S
            return
        time.sleep(self.seconds)
        self.seconds = min(self.seconds * 2, POLL_MAX_S)


def serve(comm, dispatcher: Dispatcher, runner: ShardRunner | None) -> None:
    """Rank 0: answer every rank's requests (each carries the result of that rank's last shard) and run rank 0's
    own shards in a child meanwhile, until the queue is empty and every rank has been told to stop. `runner`
    None: rank 0 runs nothing itself (the shard list could not be made)."""
    from mpi4py import MPI

    status = MPI.Status()
    waiting_ranks = comm.Get_size() - 1
    own_done = runner is None
    pause = _Pause()
    while waiting_ranks or not own_done or (runner and runner.child):
        busy = False
        while comm.Iprobe(source=MPI.ANY_SOURCE, tag=REQUEST, status=status):
            source = status.Get_source()
            message = comm.recv(source=source, tag=REQUEST)
            if message.get("result"):
                dispatcher.finished(ShardResult(**message["result"]))
            index = dispatcher.next_shard()
            comm.send(index, dest=source, tag=WORK)
            waiting_ranks -= index is None
            busy = True
        if runner and runner.child:
            result = runner.child.poll()
            if result is not None:
                dispatcher.finished(result)
                busy = True
        if runner and not runner.child and not own_done:
            index = dispatcher.next_shard()
            if index is None:
                own_done = True
            else:
                runner.start(index)
                busy = True
        pause(busy)


def work(comm, runner: ShardRunner) -> int:
    """A rank other than 0: ask for a shard (handing in the last result), run it, until told to stop. Returns
    how many shards it ran. The reply is polled with sleeps: a blocking MPI receive busy-waits a core."""
    result: ShardResult | None = None
    count = 0
    while True:
        comm.send({"result": asdict(result) if result else None}, dest=0, tag=REQUEST)
        request, pause = comm.irecv(source=0, tag=WORK), _Pause()
        while True:
            done, index = request.test()
            if done:
                break
            pause(False)
        if index is None:
            return count
        result = runner.run(index)
        count += 1


def _quiet_barrier(comm) -> None:
    """Wait for every rank without spinning (ranks that finished early would otherwise busy-wait in finalize
    while others still run shards on the same cores)."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.01)


# --------------------------------------------------------------------------------------------------------------
# summary


def job_label(job_id: str | None) -> tuple[str, str]:
    """(job id for messages, file-name part): the scheduler's job id, else rank 0's pid."""
    from .schedulers import current_job

    scheduler, job = current_job(job_id)
    if scheduler == "direct" and not job_id:
        return f"{os.getpid()}@{socket.gethostname()}", str(os.getpid())
    return job, "".join(c if c.isalnum() or c in "._-[]" else "_" for c in job)


def summarize(stage: str, job: str, generation: str | None, ranks: int, dispatcher: Dispatcher,
              already_done: Sequence[int], wall_s: float, error: str | None = None) -> dict[str, Any]:
    """The ensemble's outcome as plain data (the JSON file; `format_summary` prints it)."""
    results = sorted(dispatcher.results, key=lambda r: r.index)
    per_rank = {str(rank): 0 for rank in range(ranks)}
    for result in results:
        per_rank[str(result.rank)] = per_rank.get(str(result.rank), 0) + 1
    failed = [{"shard": r.index, "error": r.error, "rank": r.rank} for r in results if not r.ok]
    not_started = sorted(dispatcher.not_started)
    overhead = [r.overhead_s for r in results]
    return {
        "stage": stage, "job_id": job, "generation": generation, "ranks": ranks, "host": socket.gethostname(),
        "shards": len(results) + len(not_started) + len(already_done),
        "done": [r.index for r in results if r.ok], "already_done": sorted(already_done),
        "failed": failed, "not_started": not_started, "why_not_started": dispatcher.why_not_started,
        "per_rank": per_rank, "wall_s": round(wall_s, 3),
        "mean_overhead_s": round(sum(overhead) / len(overhead), 5) if overhead else None,
        "max_shard_s": max((r.duration_s for r in results), default=None),
        "startup_s": max((r.startup_s for r in results), default=None),
        "error": error,
        "exit_code": 2 if error else (1 if failed or not_started else 0),
        "results": [asdict(r) for r in results],
    }


def format_summary(summary: dict[str, Any], path: Path | None = None) -> str:
    from .selection import format_shards

    done = len(summary["done"]) + len(summary["already_done"])
    lines = [f"ensemble {summary['stage']} (job {summary['job_id']}, {summary['ranks']} ranks, "
             f"{summary['wall_s']:.1f} s): {summary['shards']} shards: {done} done"
             + (f" ({len(summary['already_done'])} already before)" if summary["already_done"] else "")
             + f", {len(summary['failed'])} failed, {len(summary['not_started'])} not started"]
    if summary["error"]:
        lines.append(f"  error: {summary['error']}")
    for failure in summary["failed"]:
        lines.append(f"  failed: shard {failure['shard']}: {failure['error']}")
    if summary["not_started"]:
        lines.append(f"  not started: {format_shards(summary['not_started'])} ({summary['why_not_started']})")
    ranks = " ".join(f"{rank}:{count}" for rank, count in summary["per_rank"].items())
    overhead = summary["mean_overhead_s"]
    lines.append(f"  shards per rank {ranks}; queue overhead "
                 + (f"{overhead * 1000:.1f} ms per shard (mean)" if overhead is not None else "-"))
    if path is not None:
        lines.append(f"  summary: {path}")
    return "\n".join(lines)


def _finish(config_path: str, stage: str, summary: dict[str, Any], dispatcher: Dispatcher, job: str,
            generation: str | None, file_part: str) -> Path | None:
    """Record the not-started shards (generation only: nothing else reserved them) and write the JSON summary."""
    from .. import ownership
    from ..config import load_pipeline
    from ..runner import stage_dir
    from ..shards import atomic_write_text

    try:
        directory = stage_dir(load_pipeline(config_path), stage)
    except Exception as exc:  # noqa: BLE001 - a config that cannot be read was reported already
        log.warning("no summary file: %s", exc)
        return None
    if generation and dispatcher.not_started:
        why = f"not started by ensemble job {job}: {dispatcher.why_not_started}"
        ownership.append_records(directory, [{"shard": i, "generation": generation, "aborted": why}
                                             for i in dispatcher.not_started])
    path = ownership.jobs_dir(directory) / f"ensemble-{file_part}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(summary, indent=1) + "\n")
    except OSError as exc:
        log.warning("could not write the summary %s: %s", path, exc)
        return None
    return path


def _abort_reserved(config_path: str, stage: str, generation: str | None, spec: str | None, job: str,
                    error: str) -> None:
    """The shard list could not be made: mark the shards a submission reserved for this job (generation and
    --shards given) as aborted with the error, so that `status` says why at once and `rerun` takes them."""
    if not generation or not spec:
        return
    from .. import ownership
    from ..config import load_pipeline
    from ..runner import stage_dir
    from .selection import parse_shards

    try:
        directory = stage_dir(load_pipeline(config_path), stage)
        indices = parse_shards(spec, sys.maxsize)
        if directory.is_dir():  # never a folder for a stage name that is wrong
            ownership.append_records(directory, [{"shard": i, "generation": generation,
                                                  "aborted": f"ensemble job {job} could not start: {error}"}
                                                 for i in indices])
    except Exception as exc:  # noqa: BLE001 - the error itself is printed either way
        log.warning("could not mark the reserved shards aborted: %s", exc)


# --------------------------------------------------------------------------------------------------------------
# entry point


def _setup_logging() -> None:
    """One INFO line per shard from every rank, whatever level the CLI set for the rest."""
    log.setLevel(os.environ.get("LDRT_LOG_LEVEL", "INFO"))
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(message)s")


def _forward_sigterm(runner: ShardRunner) -> None:
    """SIGTERM to the rank (scancel, qdel, mpiexec ending the job) goes on to its shard process, which records
    itself failed ("Terminated") before the rank exits."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = runner.child
        if child is not None:
            try:
                os.kill(child.pid, signal.SIGTERM)
                child.wait()  # logs it; records it failed if the child could not
            except OSError:
                pass
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def worker_main(args) -> int:
    """`ldrt-hpc worker STAGE --config F [--shards S] [--generation G] [--job-id J] [--deadline T]
    [--expected-s S]`: one rank of an ensemble. Returns the exit code (rank 0's tells the outcome; others 0)."""
    _setup_logging()
    stage, config_path = args.stage, str(args.config)
    generation = getattr(args, "generation", None) or None
    job_id = getattr(args, "job_id", None) or None
    env_local_rank = local_rank_from_env()
    if env_local_rank is not None:
        bind_gpus(env_local_rank)  # before MPI_Init: nothing may see the node's other GPUs
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if env_local_rank is None and gpus_per_rank() > 0:
        bind_gpus(comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank())  # no launcher variable: ask MPI
    try:
        from .. import runner as _runner  # noqa: F401
        from ..stages import get_stage

        get_stage(stage)  # imported once here, not again in every shard's child
    except Exception as exc:  # noqa: BLE001 - an unknown stage fails in rank 0's set-up with a clear message
        log.debug("rank %d: %s not imported ahead: %s", rank, stage, exc)
    runner = ShardRunner(config_path, stage, rank, job_id, generation)
    _forward_sigterm(runner)
    if rank != 0:
        work(comm, runner)
        _quiet_barrier(comm)
        return 0
    return _rank_zero(comm, runner, args, stage, config_path, generation, job_id, size)


def _rank_zero(comm, runner: ShardRunner, args, stage: str, config_path: str, generation: str | None,
               job_id: str | None, size: int) -> int:
    started = time.perf_counter()
    job, file_part = job_label(job_id)
    error, shards, already_done = None, [], []
    try:
        deadline = resolve_deadline(getattr(args, "deadline", None))
        shards, already_done = choose_shards(config_path, stage, getattr(args, "shards", None))
    except Exception as exc:  # noqa: BLE001 - every rank must still be told to stop
        error, deadline = f"{type(exc).__name__}: {exc}", None
        log.error("rank 0: %s: no shards handed out: %s", stage, error)
    dispatcher = Dispatcher(shards, deadline, getattr(args, "expected_s", None))
    if error:
        _abort_reserved(config_path, stage, generation, getattr(args, "shards", None), job, error)
    else:
        log.info("rank 0: %s: %d shards for %d ranks (%d already complete)%s", stage, len(shards), size,
                 len(already_done), f"; {deadline - time.time():.0f} s of wall time left" if deadline else "")
    serve(comm, dispatcher, None if error else runner)
    summary = summarize(stage, job, generation, size, dispatcher, already_done, time.perf_counter() - started,
                        error)
    path = None if error else _finish(config_path, stage, summary, dispatcher, job, generation, file_part)
    print(format_summary(summary, path), flush=True)
    _quiet_barrier(comm)
    return summary["exit_code"]
