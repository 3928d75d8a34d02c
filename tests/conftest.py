"""Shared fixtures: generated PDFs, per-test pipeline configs, the local Slurm cluster, ../shared."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LDRT_SHARED_DIR") or REPO.parent / "shared")
"""../shared beside the checkout; LDRT_SHARED_DIR points elsewhere (.ci/run hides it to prove the skips)."""
SHARED_ABSENT = f"{SHARED} is absent (real papers and recorded responses live there; a plain clone has none)"


def pytest_collection_modifyitems(config, items):
    """A test that asks for `shared_dir` is marked `shared`; every `shared` test skips when the folder is absent,
    whatever fixtures it uses."""
    for item in items:
        if "shared_dir" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("shared"):
            item.add_marker(pytest.mark.shared)
    if SHARED.is_dir():
        return
    for item in items:
        if item.get_closest_marker("shared"):
            item.add_marker(pytest.mark.skip(reason=SHARED_ABSENT))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(SHARED_ABSENT)
    return SHARED


@pytest.fixture(scope="session")
def synth_pdfs(tmp_path_factory) -> Path:
    """12 generated papers (the demo corpus), made once per session."""
    from ldrt_hpc.demo import synth_corpus

    folder = tmp_path_factory.mktemp("synth") / "pdfs"
    synth_corpus(folder, papers=12, seed=7)
    return folder


def write_config(folder: Path, input_dir: Path, num_shards: int = 4, cluster: str = "local", **ingest) -> Path:
    """A pipeline config for one test: its own work dir under `folder`."""
    data = {
        "work_dir": str(folder / "work"),
        "cluster": cluster,
        "stages": {"ingest": {"input_dir": str(input_dir), "num_shards": num_shards, **ingest}},
    }
    path = folder / "pipeline.yaml"
    path.write_text("# ldrt-hpc run ingest --config pipeline.yaml (test)\n" + yaml.safe_dump(data))
    return path


@pytest.fixture
def make_config(tmp_path):
    def make(input_dir: Path, num_shards: int = 4, cluster: str = "local", **ingest):
        from ldrt_hpc.config import load_pipeline

        path = write_config(tmp_path, input_dir, num_shards, cluster, **ingest)
        return path, load_pipeline(path)

    return make


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sacct") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
        subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return any(state in out for state in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="session")
def slurm_available() -> bool:
    return _slurm_up()


@pytest.fixture
def slurm(slurm_available, request):
    """Skip without the local Slurm cluster; on teardown cancel every job the test's stages left active."""
    if not slurm_available:
        pytest.skip("local Slurm cluster not running (env/slurm-local/start.sh)")
    cleanups: list = []
    yield cleanups
    from ldrt_hpc.launch import cancel

    for cfg, stage in cleanups:
        cancel(cfg, stage)


def run_inline(cfg, stage: str) -> list[dict]:
    """Plan a stage and run every shard in this process (no scheduler); returns the markers."""
    from ldrt_hpc.config import freeze
    from ldrt_hpc.launch.launcher import wanted_plan
    from ldrt_hpc.plan import pin_plan
    from ldrt_hpc.runner import run_shard, stage_dir

    plan = pin_plan(stage_dir(cfg, stage), wanted_plan(cfg, stage, None))
    frozen = freeze(cfg)
    return [run_shard(frozen, stage, index) for index in range(plan.num_shards)]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One folder for the converted embedded model per test session (the conversion takes ~30 s)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def qa_pipeline(tmp_path_factory, synth_pdfs):
    """The pipeline up to `qa` on the generated corpus (2 shards), answers from a scripted OpenAI endpoint."""
    from ldrt_hpc.config import LLMConfig, load_pipeline
    from tests.llm_server import ScriptedChatServer

    folder = tmp_path_factory.mktemp("qa")
    cfg = load_pipeline(write_config(folder, synth_pdfs, num_shards=2), base=REPO)
    for stage in ("ingest", "convert", "figures", "filter", "context"):
        run_inline(cfg, stage)
    description = ("The image shows surviving fractions of A549 cells after single doses between 0 and 2 Gy; the "
                   "curve falls slowly below 0.5 Gy and faster above it, the experimental results of the study.")
    reasoning = json.dumps({"question": "Why could the response flatten below 0.5 Gy?",
                            "answer": "Low doses may trigger adaptive DNA repair and antioxidant defences, so fewer "
                                      "cells die than a linear model predicts at these doses."})
    with ScriptedChatServer([description, reasoning] * 500) as server:
        llm = LLMConfig(backend="openai", model="scripted", base_url=server.base_url, batch_size=1)
        run_inline(cfg.model_copy(update={"llm": llm}), "qa")
    return cfg


@pytest.fixture(scope="module")
def qa_work_dir(qa_pipeline) -> Path:
    return qa_pipeline.work_dir
