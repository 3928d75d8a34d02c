# Module profile for this machine and the local Slurm of env/slurm-local: no module system, nothing to load.
# Sourced under `set -eo pipefail`: a failing line stops the job (exit 97, one `ldrt-hpc:` line in its log).
# (On a site with Lmod, `module load` lines go here.)
if command -v module >/dev/null 2>&1; then module list >/dev/null 2>&1 || true; fi
