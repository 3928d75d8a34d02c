# Module profile for this machine and the local Slurm of env/slurm-local: no module system, nothing to load.
# (On a site with Lmod, `module load` lines go here.)
if command -v module >/dev/null 2>&1; then module list >/dev/null 2>&1 || true; fi
