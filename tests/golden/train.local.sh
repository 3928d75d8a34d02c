# local: 2 ranks on this machine
set -eo pipefail
trap 'echo "ldrt-hpc: job setup failed (exit $?) at: $BASH_COMMAND (no module profile, no conda env)" >&2; exit 97' ERR
export OMP_NUM_THREADS=1
command -v python3 >/dev/null 2>&1 || { echo "ldrt-hpc: python3 not found after module/conda setup (no module profile, no conda env)" >&2; exit 97; }
python3 -c 'import ldrt_hpc, submitit' || { echo "ldrt-hpc: python3 cannot import ldrt_hpc and submitit (no module profile, no conda env): install ldrt-hpc into that environment" >&2; exit 97; }
trap - ERR
export LDRT_WORKERS=1
python3 -u -m submitit.core._submit /RUN/_jobs/logs
