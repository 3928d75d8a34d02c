"""Config loading: every shipped YAML loads; errors name the file and the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ldrt_hpc.config import (
    SHIPPED,
    ClusterProfile,
    ConfigError,
    PipelineConfig,
    config_hash,
    freeze,
    load_cluster,
    load_pipeline,
)

REPO = Path(__file__).resolve().parent.parent
ALL_YAML = sorted((REPO / "configs").rglob("*.yaml")) + sorted(SHIPPED.rglob("*.yaml"))


def test_configs_exist():
    assert (REPO / "configs" / "demo.yaml") in ALL_YAML
    names = {p.stem for p in (SHIPPED / "clusters").glob("*.yaml")}
    assert {"local", "localslurm", "generic-slurm", "polaris"} <= names


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(REPO)))  # SHIPPED is inside REPO
def test_every_config_loads(path):
    assert path.read_text().startswith("# ldrt-hpc "), f"{path} must start with the command that uses it"
    if path.parent.name == "clusters":
        assert isinstance(load_cluster(str(path)), ClusterProfile)
    elif path.parent.name == "prompts":
        from ldrt_hpc.instruct.prompts import load_prompts

        assert len(load_prompts(path).templates) == 20
    elif path.parent.name == "keywords":
        from ldrt_hpc.config import load_keywords

        assert len(load_keywords(path)) >= 1
    elif path.parent.name == "judges":
        from ldrt_hpc.evaluate.judging import JudgePrompts, load_judge_prompts

        assert isinstance(load_judge_prompts(path), JudgePrompts)
    elif path.parent.name == "train":
        from ldrt_hpc.train.config import TrainConfig, load_train

        assert isinstance(load_train(path), TrainConfig)
    else:
        assert isinstance(load_pipeline(path), PipelineConfig)


def test_every_field_has_a_doc():
    from ldrt_hpc import config

    for model in (config.Resources, config.ClusterProfile, config.IngestConfig, config.PipelineConfig,
                  config.StagesConfig, config.SynthConfig, config.SearchConfig, config.DownloadConfig,
                  config.ConvertConfig, config.FiguresConfig, config.FilterConfig, config.ContextConfig, config.LLMConfig,
                  config.QAConfig, *_train_models()):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no one-line doc"


def _train_models():
    from ldrt_hpc.train import config as train

    from ldrt_hpc import config
    from ldrt_hpc.evaluate import judging

    return (train.ModelConfig, train.DataConfig, train.LoraSettings, train.PhaseConfig, train.CheckpointConfig,
            train.TrainConfig, config.EvalModel, config.AnswerConfig, config.JudgeModel, config.JudgeConfig,
            judging.JudgePrompts, judging.ReviewPrompt, judging.SinglePrompt)


def _write(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_key_and_file(tmp_path):
    path = _write(tmp_path, "work_dir: w\nstages:\n  ingest:\n    input_dir: x\n    num_shard: 3\n")
    with pytest.raises(ConfigError) as error:
        load_pipeline(path)
    assert str(path) in str(error.value)
    assert "stages.ingest.num_shard: unknown key" in str(error.value)


def test_wrong_type_and_impossible_value(tmp_path):
    path = _write(tmp_path, "work_dir: w\nstages:\n  ingest:\n    input_dir: x\n    num_shards: many\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: stages.ingest.num_shards: .*integer"):
        load_pipeline(path)
    path = _write(tmp_path, "work_dir: w\nstages:\n  ingest:\n    input_dir: x\n    num_shards: 0\n")
    with pytest.raises(ConfigError, match=r"stages.ingest.num_shards: .*greater than or equal to 1"):
        load_pipeline(path)


def test_missing_key_and_exclusive_sources(tmp_path):
    with pytest.raises(ConfigError, match=r"bad.yaml: work_dir: missing required key"):
        load_pipeline(_write(tmp_path, "stages:\n  ingest:\n    input_dir: x\n"))
    with pytest.raises(ConfigError, match="exactly one of input_dir, manifest and from_download"):
        load_pipeline(_write(tmp_path, "work_dir: w\nstages:\n  ingest:\n    input_dir: x\n    manifest: m\n"))


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline(_write(tmp_path, "work_dir: [unclosed\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_pipeline(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="cannot read config"):
        load_pipeline(tmp_path / "nope.yaml")


def test_cluster_profile_errors(tmp_path):
    path = _write(tmp_path, "scheduler: sge\nresources:\n  cpu: {}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: scheduler: Input should be 'local', 'slurm' or 'pbs'"):
        load_cluster(str(path))
    path = _write(tmp_path, "scheduler: slurm\nresources:\n  cpu:\n    time_min: 1\n")
    with pytest.raises(ConfigError, match=r"resources.cpu.time_min: .*greater than or equal to 2"):
        load_cluster(str(path))
    path = _write(tmp_path, "scheduler: slurm\nresources:\n  gpu: {}\n")
    with pytest.raises(ConfigError, match="at least the 'cpu' resource class"):
        load_cluster(str(path))
    path = _write(tmp_path, "scheduler: slurm\nmodules_profile: nowhere.sh\nresources:\n  cpu: {}\n")
    with pytest.raises(ConfigError, match="no such module profile: nowhere.sh"):
        load_cluster(str(path))
    with pytest.raises(ConfigError, match="no cluster profile 'marsnet' \\(known: .*localslurm.*; looked in .*configs/clusters"):
        load_cluster("marsnet")
    profile = load_cluster("local")
    with pytest.raises(ConfigError, match="cluster profile 'local' has no resources.bigmem \\(it defines: cpu, gpu, "):
        profile.resources_for("bigmem", "local")


def test_relative_paths_resolve_and_freeze(tmp_path):
    path = _write(tmp_path, "work_dir: w\nstages:\n  ingest:\n    input_dir: pdfs\n")
    cfg = load_pipeline(path, base=tmp_path)
    assert cfg.work_dir == tmp_path / "w" and cfg.stages.ingest.input_dir == tmp_path / "pdfs"
    frozen = freeze(cfg)
    assert frozen.parent == tmp_path / "w" / "_configs"
    again = load_pipeline(frozen, base=Path("/somewhere/else"))
    assert again == cfg and config_hash(again) == config_hash(cfg)


def test_a_stage_section_is_required_only_when_that_stage_runs(tmp_path):
    """A harvest-only config (only stages.search) loads; running ingest with it names the file and the key."""
    from ldrt_hpc.launch import submit

    path = _write(tmp_path, "work_dir: w\nstages:\n  search:\n    keywords: k.yaml\n")
    cfg = load_pipeline(path, base=tmp_path)
    assert cfg.stages.ingest is None and cfg.stages.search.keywords == tmp_path / "k.yaml"
    with pytest.raises(ConfigError, match=rf"{path}: stages.ingest: missing required key \(the `ingest` stage needs it\)"):
        submit(cfg, "ingest", dry_run=True)
    frozen = load_pipeline(freeze(cfg))
    assert frozen == cfg and frozen.stages.ingest is None


def test_profiles_are_found_here_then_in_the_environment_then_shipped(tmp_path, monkeypatch):
    from ldrt_hpc.config import cluster_profile_path

    monkeypatch.chdir(tmp_path)
    assert cluster_profile_path("polaris") == SHIPPED / "clusters" / "polaris.yaml"
    site = tmp_path / "site-profiles"
    site.mkdir()
    (site / "polaris.yaml").write_text("# ldrt-hpc run --cluster polaris\nscheduler: pbs\naccount: MINE\n"
                                       "filesystems: home\nresources:\n  cpu: {}\n")
    monkeypatch.setenv("LDRT_CLUSTERS", f"/nowhere{os.pathsep}{site}")
    assert load_cluster("polaris").account == "MINE"  # the site's copy shadows the shipped one
    local = tmp_path / "configs" / "clusters"
    local.mkdir(parents=True)
    (local / "polaris.yaml").write_text("scheduler: slurm\nresources:\n  cpu: {}\n")
    assert load_cluster("polaris").scheduler == "slurm"  # ./configs/clusters first
    assert load_cluster(str(site / "polaris.yaml")).account == "MINE"  # a path is a path


def test_relative_paths_in_a_pipeline_config_mean_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    path = _write(folder, "work_dir: w\nstages:\n  ingest:\n    input_dir: pdfs\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_pipeline(path)
    assert cfg.work_dir == folder / "w" and cfg.stages.ingest.input_dir == folder / "pdfs"
    assert cfg.stages.qa.prompts.is_file() and cfg.stages.search.keywords.is_file()  # shipped defaults


def test_the_wheel_ships_profiles_modules_keywords_and_prompts(tmp_path):
    """`pip install` of a wheel must work from any directory: the shipped configs are package data."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # a copy: setuptools leaves build/ and *.egg-info/ in the tree it builds
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "work", "build", "*.egg-info", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {built.stderr[-300:]}")
    (wheel,) = tmp_path.glob("ldrt_hpc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(REPO)) for p in SHIPPED.rglob("*") if p.is_file()}
    assert shipped and shipped <= names, sorted(shipped - names)


def test_require_lists_the_fields_a_site_cannot_do_without(tmp_path):
    """`require: [account, filesystems]` (set for Polaris): a profile missing one is refused at load time."""
    base = {"scheduler": "pbs", "require": ["account", "filesystems"], "resources": {"cpu": {}}}
    with pytest.raises(ValueError, match="requires account, filesystems"):
        ClusterProfile.model_validate(base)
    with pytest.raises(ValueError, match="requires filesystems"):
        ClusterProfile.model_validate({**base, "account": "P"})
    assert ClusterProfile.model_validate({**base, "account": "P", "filesystems": "home:eagle"}).account == "P"
    assert load_cluster("polaris").require == ["account", "filesystems"]
    with pytest.raises(ValueError):
        ClusterProfile.model_validate({**base, "require": ["partition"]})  # only profile fields can be required
    site = tmp_path / "site.yaml"
    site.write_text("scheduler: pbs\nrequire: [account]\nresources: {cpu: {}}\n")
    with pytest.raises(ConfigError, match=r"site.yaml: \(top level\): this site requires account"):
        load_cluster(str(site))
