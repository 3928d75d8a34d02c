"""PBS Pro support as a submitit plugin (registered in setup.cfg under the `submitit` entry-point group).

Job ids follow submitit's convention so that its JobPaths, pickles and logs work unchanged: a subjob of the
array that qsub printed as `123[].server` is `123[].server_4`; the native PBS id `123[4].server` is used only
when talking to qstat/qdel. PBS expands no job id in `-o/-e`, so the script itself sends its output to the
file names submitit expects.

Under Debian's slurm-wlm-torque wrappers (qsub/qstat/qdel on top of Slurm, used by the tests) qsub prints a bare
Slurm job number, the PBS_* variables are absent (no spank_pbs plugin) and qstat knows neither -x nor -F json:
the script falls back to the SLURM_* variables and the watcher to the text form of `qstat -f`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import typing as tp
import uuid
from pathlib import Path

from submitit.core import core, job_environment, logger, utils

# --------------------------------------------------------------------------------------------------------------
# ids


def native_id(job_id: str) -> str:
    """submitit-style id -> PBS id: '123[].server_4' -> '123[4].server'; '123' stays '123'."""
    if "_" in job_id:
        array_id, index = job_id.rsplit("_", 1)
        if "[]" in array_id:
            return array_id.replace("[]", f"[{index}]", 1)
        return f"{array_id}[{index}]"
    return job_id


def submitit_id(pbs_id: str) -> str:
    """PBS id -> submitit-style id: '123[4].server' -> '123[].server_4'; '123[].server' and '123.s' unchanged."""
    match = re.match(r"^(?P<base>[^\[]+)\[(?P<index>\d+)\](?P<suffix>.*)$", pbs_id)
    if match:
        return f"{match['base']}[]{match['suffix']}_{match['index']}"
    return pbs_id


def _array_parent(job_id: str) -> str:
    """The id to ask qstat about for a submitit-style id: the array parent of a subjob ('123[].s_4' -> '123[].s')."""
    return job_id.rsplit("_", 1)[0] if "_" in job_id else job_id


# --------------------------------------------------------------------------------------------------------------
# state: qstat output -> Slurm-like state names (so that callers map one vocabulary)

_ACTIVE = {"Q": "PENDING", "H": "PENDING", "W": "PENDING", "T": "PENDING", "M": "PENDING",
           "R": "RUNNING", "B": "RUNNING", "E": "RUNNING", "S": "RUNNING", "U": "RUNNING"}


def state_from_pbs(job_state: str, exit_status: tp.Any) -> str:
    """Map PBS job_state (+ Exit_status for finished jobs) to a Slurm-like state name."""
    job_state = (job_state or "").strip()
    if job_state in _ACTIVE:
        return _ACTIVE[job_state]
    if job_state in ("F", "X", "C"):
        if exit_status is None or exit_status == "":
            # PBS Pro: finished without an exit status = deleted before it ran; Torque/Slurm wrapper 'C': unknown
            return "CANCELLED" if job_state in ("F", "X") else "COMPLETED"
        code = int(exit_status)
        if code == 0:
            return "COMPLETED"
        if code == -29:
            return "TIMEOUT"
        if code == -27:
            return "OUT_OF_MEMORY"
        if code in (265, 271):  # 256 + KILL / TERM: qdel (older PBS Pro also reports walltime kills as 271)
            return "CANCELLED"
        return "FAILED"
    return "UNKNOWN"


def parse_qstat_json(text: str) -> dict[str, dict[str, str]]:
    """`qstat -f -F json [-x] [-t]` -> {submitit id: {'State', 'ExitStatus', 'JobID'}}. Tolerates the header-only
    output that qstat prints with a non-zero exit code for unknown or finished ids."""
    start = text.find("{")
    if start < 0:
        return {}
    data = json.loads(text[start:], strict=False)
    result: dict[str, dict[str, str]] = {}
    for pbs_id, info in (data.get("Jobs") or {}).items():
        state = state_from_pbs(info.get("job_state", ""), info.get("Exit_status"))
        result[submitit_id(pbs_id)] = {
            "JobID": pbs_id,
            "State": state,
            "ExitStatus": str(info.get("Exit_status", "")),
            "Comment": str(info.get("comment", "")),
        }
    return result


def parse_qstat_text(text: str) -> dict[str, dict[str, str]]:
    """`qstat -f` text form (PBS Pro and Slurm's qstat.pl) -> same shape as parse_qstat_json."""
    result: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    pbs_id = ""
    for line in text.splitlines():
        match = re.match(r"^Job Id:\s*(\S+)", line)
        if match:
            pbs_id = match.group(1)
            current = {}
            result[submitit_id(pbs_id)] = current
            continue
        if current is None:
            continue
        match = re.match(r"^\s+([A-Za-z_.]+)\s*=\s*(.*)$", line)
        if match:
            current[match.group(1)] = match.group(2).strip()
    out = {}
    for job_id, fields in result.items():
        out[job_id] = {
            "JobID": native_id(job_id),
            "State": state_from_pbs(fields.get("job_state", ""), fields.get("Exit_status")),
            "ExitStatus": fields.get("Exit_status", ""),
            "Comment": fields.get("comment", ""),
        }
    return out


class PBSInfoWatcher(core.InfoWatcher):
    """Polls `qstat -x -f -F json -t PARENT` once per array parent (several ids in one call return only the first
    job on some PBS builds); falls back to the text form when qstat rejects -x/-F (Slurm's qstat.pl)."""

    def _parents(self) -> list[str]:
        return sorted({_array_parent(x) for x in self._registered - self._finished})

    def _make_command(self) -> tp.Optional[tp.List[str]]:
        parents = self._parents()
        return ["qstat", "-x", "-f", "-F", "json", "-t", *parents] if parents else None

    def get_state(self, job_id: str, mode: str = "standard") -> str:
        return self.get_info(job_id, mode=mode).get("State") or "UNKNOWN"

    def read_info(self, string: tp.Union[bytes, str]) -> tp.Dict[str, tp.Dict[str, str]]:
        if isinstance(string, bytes):
            string = string.decode(errors="replace")
        return parse_qstat_json(string) if string.lstrip().startswith("{") else parse_qstat_text(string)

    def _query(self, parent: str) -> dict[str, dict[str, str]]:
        # qstat exits non-zero for unknown/finished ids but still prints what it knows: parse stdout regardless
        proc = subprocess.run(
            ["qstat", "-x", "-f", "-F", "json", "-t", native_id(parent)], capture_output=True, text=True, timeout=120
        )
        if proc.stdout.strip():
            return self.read_info(proc.stdout)
        if "Unknown option" in proc.stderr or "invalid option" in proc.stderr or proc.returncode == 2:
            base = parent.split("[", 1)[0].split("_", 1)[0]
            text = subprocess.run(["qstat", "-f", base], capture_output=True, text=True, timeout=120)
            return self.read_info(text.stdout)
        if proc.returncode in (35, 153) or "Unknown Job Id" in proc.stderr or "has finished" in proc.stderr:
            return {}  # the job is not known (any more): its state stays UNKNOWN
        raise OSError(f"qstat exited {proc.returncode}: {proc.stderr.strip()[:200]}")

    @staticmethod
    def _array_parent_of(job_id: str) -> str:
        return _array_parent(job_id)

    def update(self) -> set[str]:
        """Ask qstat about every registered array; returns the parents that could not be asked."""
        parents = self._parents()
        failed: set[str] = set()
        if not parents:
            return failed
        self._num_calls += 1
        for parent in parents:
            try:
                info = self._query(parent)
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                logger.get_logger().warning(f"qstat failed for {parent}: {exc}; status may be inaccurate")
                failed.add(parent)
                continue
            self._info_dict.update(info)
        self._last_status_check = __import__("time").time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)
        return failed


def states(job_ids: list[str]) -> dict[str, str]:
    """States of submitit-style or PBS-style ids ('123[4].server' from direct runs); QUERY_FAILED per array that
    qstat could not be asked about."""
    watcher = PBSInfoWatcher(delay_s=600)
    ours = {job_id: submitit_id(job_id) for job_id in job_ids}
    for job_id in ours.values():
        watcher.register_job(job_id)
    failed = watcher.update()
    return {job_id: "QUERY_FAILED" if _array_parent(ours[job_id]) in failed else
            watcher.get_state(ours[job_id], mode="cache") for job_id in job_ids}


def reasons(job_ids: list[str]) -> dict[str, str]:
    """Why queued jobs wait: PBS's `comment` ('Not Running: Insufficient amount of resource: ngpus', ...), for
    the pending ones that have one. Empty when qstat cannot be asked (a hint only)."""
    watcher = PBSInfoWatcher(delay_s=600)
    ours = {job_id: submitit_id(job_id) for job_id in job_ids}
    for job_id in ours.values():
        watcher.register_job(job_id)
    watcher.update()
    found = {job_id: watcher.get_info(ours[job_id], mode="cache") for job_id in job_ids}
    return {job_id: info["Comment"] for job_id, info in found.items()
            if info.get("State") == "PENDING" and info.get("Comment")}


def queued_jobs() -> int | None:
    """This user's queued and running jobs, subjobs counted one each (ALCF counts them so toward queue limits):
    the lines of `qstat -t -u USER` that name a job or a subjob, not an array parent ('123[].server')."""
    import getpass
    import os

    user = os.environ.get("USER") or getpass.getuser()
    try:
        out = subprocess.run(["qstat", "-t", "-u", user], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in out.splitlines() if re.match(r"^\d+(\[\d+\])?\.\S", line.strip()))


def stop(job_ids: list[str], force: bool = False) -> str | None:
    """One qdel for all the subjobs (`-W force` for those still running after the grace period)."""
    from .commands import run_stop_command

    ids = [native_id(submitit_id(job_id)) for job_id in job_ids]
    return run_stop_command(["qdel", "-W", "force", *ids] if force else ["qdel", *ids])


def qsub_error(exc: BaseException) -> str:
    """One line from a refused qsub: its stderr (PBS Pro: 'qsub: Unknown queue') or, when that is empty, its
    stdout (Slurm's qsub.pl prints sbatch's complaint there); the lines that say 'error:' when some do."""
    cause = exc.__cause__ if isinstance(exc.__cause__, subprocess.CalledProcessError) else None
    texts = [str(cause.stderr or ""), str(cause.output or "")] if cause else [str(exc)]
    lines = [line.strip().strip("'") for text in texts for line in text.splitlines() if line.strip().strip("'")]
    telling = [line for line in lines if "error:" in line] or lines
    code = f"qsub exited {cause.returncode}" if cause else "qsub failed"
    return f"{code}: {' '.join(telling)[:500]}" if telling else f"{code} and printed nothing"


class PBSJob(core.Job[core.R]):
    _cancel_command = "qdel"
    watcher = PBSInfoWatcher(delay_s=60)

    def cancel(self, check: bool = True) -> None:
        (subprocess.check_call if check else subprocess.call)(["qdel", native_id(self.job_id)])


class PBSJobEnvironment(job_environment.JobEnvironment):
    """Inside a PBS job. The script exports PBS_ARRAY_ID/PBS_ARRAY_INDEX, with SLURM_* fallbacks for the wrapper."""

    _env = {
        "job_id": "PBS_JOBID",
        "num_tasks": "LDRT_NUM_TASKS",
        "num_nodes": "LDRT_NUM_NODES",
        "node": "LDRT_NODE_RANK",
        "global_rank": "PMI_RANK",
        "local_rank": "PMI_LOCAL_RANK",
        "array_job_id": "PBS_ARRAY_ID",
        "array_task_id": "PBS_ARRAY_INDEX",
    }

    @property
    def hostnames(self) -> tp.List[str]:
        nodefile = os.environ.get("PBS_NODEFILE")
        if nodefile and Path(nodefile).is_file():
            return list(dict.fromkeys(Path(nodefile).read_text().split()))
        return [self.hostname]

    after_resubmit: tp.ClassVar[tp.Optional[tp.Callable[[str], None]]] = None
    """Called with the new job id once the job has resubmitted itself (the task records it for its shard)."""

    def _handle_signals(self, paths: utils.JobPaths, submission: utils.DelayedSubmission) -> None:
        super()._handle_signals(paths, submission)
        start_walltime_timer(os.environ.get("LDRT_SIGNAL_AT"), self._usr_sig())

    def _requeue(self, countdown: int) -> None:
        """Requeue without `qrerun` (which needs PBS manager or operator privilege): resubmit this job as a new
        single job that resumes from the checkpoint pickle (docs/pbs.md)."""
        new_id = resubmit(self.job_id, Path(os.environ["SUBMITIT_FOLDER"]))
        if self.after_resubmit is not None:
            self.after_resubmit(new_id)
        logger.get_logger().info(f"Requeued job {self.job_id} as {new_id} ({countdown} remaining timeouts)")


def start_walltime_timer(signal_at: tp.Optional[str], signum: int) -> tp.Optional[threading.Timer]:
    """PBS has no `--signal`: the job script exports LDRT_SIGNAL_AT (epoch seconds: walltime minus the warning,
    counted from the script's start) and the task sends itself the preemption signal then."""
    if not signal_at:
        return None
    delay = max(0.0, float(signal_at) - time.time())
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()
    return timer


def single_job_script(text: str) -> str:
    """An array job's script as the script of one job (no `-J`, its own id), for a subjob's resubmission."""
    array_lines = ('export PBS_ARRAY_ID=', 'export PBS_ARRAY_INDEX=')
    lines = [line for line in text.splitlines() if not line.startswith(("#PBS -J ", *array_lines))]
    lines = ['LDRT_JOB_ID="${PBS_JOBID}"' if line.startswith("LDRT_JOB_ID=") else line for line in lines]
    return "\n".join(lines) + "\n"


def resubmit(job_id: str, folder: Path) -> str:
    """Submit (held) a single job running this job's script, give it the checkpoint pickle under its new id,
    release it; returns the new id. Only qsub and qrls on one's own job: no operator privilege."""
    paths = utils.JobPaths(folder, job_id=job_id)
    script = folder / f"requeue-{uuid.uuid4().hex}.sh"
    script.write_text(single_job_script(paths.submission_file.read_text()))
    output = subprocess.run(["qsub", "-h", str(script)], capture_output=True, text=True, timeout=120, check=True,
                            cwd=folder).stdout
    new_id = PBSExecutor._get_job_id_from_submission_command(output)
    new_paths = utils.JobPaths(folder, job_id=new_id)
    shutil.copyfile(paths.submitted_pickle, new_paths.submitted_pickle)
    script.rename(new_paths.submission_file)
    subprocess.run(["qrls", native_id(new_id)], capture_output=True, text=True, timeout=120, check=True)
    return new_id


# --------------------------------------------------------------------------------------------------------------
# the job script


def _pbs_directive(key: str, value: tp.Any) -> tp.Optional[str]:
    """One extra directive: 'q': 'debug' -> '-q debug'; 'l place': 'scatter' -> '-l place=scatter';
    'W depend': 'afterok:1' -> '-W depend=afterok:1'; 'V': True -> '-V'; False -> nothing."""
    key = str(key).strip()
    if not re.match(r"^[A-Za-z]( [A-Za-z_][\w.-]*)?$", key):
        raise ValueError(f"bad PBS directive key {key!r}: an option letter ('q', 'V') or a letter, a space and a "
                         "name ('l place' for -l place=VALUE)")
    if value is False or value is None:
        return None
    if value is True:
        return f"-{key}"
    letter, _, name = key.partition(" ")
    return f"-{letter} {name}={value}" if name else f"-{letter} {value}"


def _directive_identity(directive: str) -> str:
    """'-l place=scatter' -> '-l place'; '-q debug' -> '-q' (which built-in directive an extra one replaces)."""
    letter, _, rest = directive.partition(" ")
    return f"{letter} {rest.split('=', 1)[0]}" if letter == "-l" or letter == "-W" else letter


def _walltime(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def _make_pbs_string(
    command: str,
    folder: tp.Union[str, Path],
    job_name: str = "submitit",
    queue: tp.Optional[str] = None,
    account: tp.Optional[str] = None,
    nodes: int = 1,
    ncpus: int = 1,
    ngpus: int = 0,
    mpiprocs: tp.Optional[int] = None,
    mem: tp.Optional[str] = None,
    walltime_min: int = 5,
    filesystems: tp.Optional[str] = None,
    place: tp.Optional[str] = None,
    select_extra: tp.Optional[str] = None,
    array_parallelism: int = 256,
    setup: tp.Optional[tp.List[str]] = None,
    rerunnable: bool = True,
    signal_delay_s: tp.Optional[int] = None,
    additional_directives: tp.Optional[tp.Dict[str, tp.Any]] = None,
    mpiexec_depth: tp.Optional[int] = None,
    map_count: tp.Optional[int] = None,  # used internally
) -> str:
    """The text of a PBS Pro job script (arrays as `-J 0-N%P`, one `-l select` chunk per node)."""
    folder = Path(folder)
    chunk = [f"{nodes}", f"ncpus={ncpus}"]
    if ngpus:
        chunk.append(f"ngpus={ngpus}")
    if mpiprocs:
        chunk.append(f"mpiprocs={mpiprocs}")
    if mem:
        chunk.append(f"mem={mem}")
    if select_extra:
        chunk.append(select_extra.strip(":"))
    extra = [_pbs_directive(key, value) for key, value in sorted((additional_directives or {}).items())]
    extra = [line for line in extra if line]
    directives = [f"-N {job_name[:236]}"]
    if account:
        directives.append(f"-A {account}")
    if queue:
        directives.append(f"-q {queue}")
    directives.append(f"-l select={':'.join(chunk)}")
    directives.append(f"-l walltime={_walltime(walltime_min)}")
    if filesystems:
        directives.append(f"-l filesystems={filesystems}")
    if place:
        directives.append(f"-l place={place}")
    if map_count is not None and map_count > 1:
        directives.append(f"-J 0-{map_count - 1}%{min(map_count, array_parallelism)}")
    directives.append("-r y" if rerunnable else "-r n")
    directives.append("-j oe")
    # PBS cannot put the job id in -o: its own stream goes to the log folder, the script names submitit's logs.
    directives.append(f"-o {folder}/")
    # an extra directive replaces the built-in one with the same option (and resource): {'l place': 'pack'}
    overridden = {_directive_identity(line) for line in extra}
    directives = [d for d in directives if _directive_identity(d) not in overridden] + extra
    lines = ["#!/bin/bash", "", "# Parameters"] + [f"#PBS {d}" for d in directives]
    lines += [
        "",
        "# ids: PBS Pro sets PBS_ARRAY_ID/PBS_ARRAY_INDEX; Slurm's qsub wrapper sets only SLURM_* (no spank_pbs)",
        'export PBS_JOBID="${PBS_JOBID:-${SLURM_JOB_ID:-}}"',
    ]
    if map_count is not None and map_count > 1:
        lines += [
            'export PBS_ARRAY_ID="${PBS_ARRAY_ID:-${SLURM_ARRAY_JOB_ID:-}}"',
            'export PBS_ARRAY_INDEX="${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}"',
            'LDRT_JOB_ID="${PBS_ARRAY_ID}_${PBS_ARRAY_INDEX}"',
        ]
    else:
        lines += ['LDRT_JOB_ID="${PBS_JOBID}"']
    lines += [
        f'exec >>"{folder}/${{LDRT_JOB_ID}}_0_log.out" 2>>"{folder}/${{LDRT_JOB_ID}}_0_log.err"',
    ]
    if signal_delay_s:  # PBS has no --signal: the task sends itself USR2 then (PBSJobEnvironment), requeues
        lines += [f"export LDRT_SIGNAL_AT=$(( $(date +%s) + {max(0, walltime_min * 60 - signal_delay_s)} ))"]
    lines += [
        'cd "${PBS_O_WORKDIR:-$PWD}"',
    ]
    if setup:
        lines += ["", "# setup"] + list(setup)
    lines += ["", "# command", "export SUBMITIT_EXECUTOR=pbs"]
    if mpiexec_depth:
        lines += _mpiexec_lines(command, mpiprocs or 1, mpiexec_depth)
    else:
        lines += [command]
    return "\n".join(lines + [""])


def _mpiexec_lines(command: str, per_node: int, depth: int) -> tp.List[str]:
    """One task per rank (a multi-node training job): PALS `mpiexec` starts `per_node` copies of the command on
    every node of $PBS_NODEFILE, each pinned to `depth` cores; PBSJobEnvironment reads the rank from PMI_RANK and
    PMI_LOCAL_RANK, the counts from the two exports (taken from the node file, not written twice)."""
    return [
        'export LDRT_NUM_NODES="$(sort -u "$PBS_NODEFILE" | wc -l)"',
        f'export LDRT_NUM_TASKS="$(( LDRT_NUM_NODES * {per_node} ))"',
        f'mpiexec -n "$LDRT_NUM_TASKS" --ppn {per_node} --depth={depth} --cpu-bind depth {command}',
    ]


@functools.lru_cache()
def _get_default_parameters() -> tp.Dict[str, tp.Any]:
    specs = inspect.getfullargspec(_make_pbs_string)
    zipped = zip(specs.args[-len(specs.defaults) :], specs.defaults)  # type: ignore[arg-type]
    return {key: val for key, val in zipped if key not in {"command", "folder", "map_count"}}


class PBSExecutor(core.PicklingExecutor):
    """submitit executor for PBS Pro (qsub/qstat/qdel). Arrays become `#PBS -J 0-N%P`."""

    job_class = PBSJob

    def __init__(self, folder: tp.Union[str, Path], max_num_timeout: int = 3, python: tp.Optional[str] = None):
        super().__init__(folder, max_num_timeout=max_num_timeout)
        self.python = shlex.quote(sys.executable) if python is None else python

    @classmethod
    def name(cls) -> str:
        return "pbs"

    @classmethod
    def _equivalence_dict(cls) -> core.EquivalenceDict:
        return {
            "name": "job_name",
            "timeout_min": "walltime_min",
            "mem_gb": "mem",
            "nodes": "nodes",
            "cpus_per_task": "ncpus",
            "gpus_per_node": "ngpus",
            "tasks_per_node": "mpiprocs",
        }

    @classmethod
    def _valid_parameters(cls) -> tp.Set[str]:
        return set(_get_default_parameters())

    def _convert_parameters(self, params: tp.Dict[str, tp.Any]) -> tp.Dict[str, tp.Any]:
        params = super()._convert_parameters(params)
        if "mem" in params and not isinstance(params["mem"], str):
            params["mem"] = f"{int(params['mem'] * 1024)}mb"
        return params

    def _internal_update_parameters(self, **kwargs: tp.Any) -> None:
        invalid = sorted(set(kwargs) - set(_get_default_parameters()))
        if invalid:
            raise ValueError(f"Unavailable PBS parameter(s): {invalid}; valid: {sorted(_get_default_parameters())}")
        _make_pbs_string(command="nothing to do", folder=self.folder, **kwargs)
        super()._internal_update_parameters(**kwargs)

    @property
    def _submitit_command_str(self) -> str:
        return " ".join([self.python, "-u -m submitit.core._submit", shlex.quote(str(self.folder))])

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return _make_pbs_string(command=command, folder=self.folder, **self.parameters)

    def _num_tasks(self) -> int:
        return 1  # one submitit task per (sub)job; multi-rank jobs start their ranks with mpiexec themselves

    def _make_submission_command(self, submission_file_path: Path) -> tp.List[str]:
        return ["qsub", str(submission_file_path)]

    def _submit_command(self, command: str) -> core.Job[tp.Any]:
        # qsub (and Slurm's qsub.pl, which writes name.oNNN files in the cwd) run from the log folder
        cwd = os.getcwd()
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        os.chdir(self.folder)
        try:  # submitit prints qsub's stderr itself and raises with stderr only: our one line says it all
            with contextlib.redirect_stderr(io.StringIO()):
                return super()._submit_command(command)
        except utils.FailedJobError as exc:
            raise utils.FailedJobError(qsub_error(exc)) from None
        finally:
            os.chdir(cwd)

    @staticmethod
    def _get_job_id_from_submission_command(string: tp.Union[bytes, str]) -> str:
        if not isinstance(string, str):
            string = string.decode()
        match = re.search(r"^\s*(\d+(\[\])?(\.[\w.-]+)?)\s*$", string, flags=re.M)
        if match is None:
            raise utils.FailedSubmissionError(f'Could not make sense of qsub output "{string}"')
        return match.group(1)

    def _internal_process_submissions(
        self, delayed_submissions: tp.List[utils.DelayedSubmission]
    ) -> tp.List[core.Job[tp.Any]]:
        if len(delayed_submissions) == 1:
            return super()._internal_process_submissions(delayed_submissions)
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        timeout_min = self.parameters.get("walltime_min", 5)
        pickle_paths = []
        for delayed in delayed_submissions:
            pickle_path = folder / f"{uuid.uuid4().hex}.pkl"
            delayed.set_timeout(timeout_min, self.max_num_timeout)
            delayed.dump(pickle_path)
            pickle_paths.append(pickle_path)
        array_ex = PBSExecutor(self.folder, self.max_num_timeout, python=self.python)
        array_ex.update_parameters(**self.parameters)
        array_ex.parameters["map_count"] = len(delayed_submissions)
        self._throttle()
        first = array_ex._submit_command(self._submitit_command_str)
        array_id = first.job_id  # '123[].server' (PBS Pro) or '123' (Slurm's qsub wrapper)
        jobs: tp.List[core.Job[tp.Any]] = [
            PBSJob(folder=self.folder, job_id=f"{array_id}_{index}") for index in range(len(delayed_submissions))
        ]
        for job, pickle_path in zip(jobs, pickle_paths):
            job.paths.move_temporary_file(pickle_path, "submitted_pickle")
        return jobs

    @classmethod
    def affinity(cls) -> int:
        return -1 if shutil.which("qsub") is None else 1
