#!/bin/bash

# Parameters
#PBS -N ldrt-train
#PBS -A MYPROJECT
#PBS -q prod
#PBS -l select=10:ncpus=32:ngpus=4:mpiprocs=4:system=polaris
#PBS -l walltime=12:00:00
#PBS -l filesystems=home:eagle
#PBS -l place=scatter
#PBS -r y
#PBS -j oe
#PBS -o /RUN/_jobs/logs/

# ids: PBS Pro sets PBS_ARRAY_ID/PBS_ARRAY_INDEX; Slurm's qsub wrapper sets only SLURM_* (no spank_pbs)
export PBS_JOBID="${PBS_JOBID:-${SLURM_JOB_ID:-}}"
LDRT_JOB_ID="${PBS_JOBID}"
exec >>"/RUN/_jobs/logs/${LDRT_JOB_ID}_0_log.out" 2>>"/RUN/_jobs/logs/${LDRT_JOB_ID}_0_log.err"
export LDRT_SIGNAL_AT=$(( $(date +%s) + 42600 ))
cd "${PBS_O_WORKDIR:-$PWD}"

# setup
set -eo pipefail
trap 'echo "ldrt-hpc: job setup failed (exit $?) at: $BASH_COMMAND (module profile $SHIPPED/modules/polaris.sh, conda env ldrt-hpc)" >&2; exit 97' ERR
source $SHIPPED/modules/polaris.sh
command -v conda >/dev/null 2>&1 || { echo "ldrt-hpc: conda not found after sourcing $SHIPPED/modules/polaris.sh: cannot activate conda env ldrt-hpc" >&2; exit 97; }
eval "$(conda shell.bash hook)"
conda activate ldrt-hpc
export HF_HUB_OFFLINE=1
command -v python3 >/dev/null 2>&1 || { echo "ldrt-hpc: python3 not found after module/conda setup (module profile $SHIPPED/modules/polaris.sh, conda env ldrt-hpc)" >&2; exit 97; }
python3 -c 'import ldrt_hpc, submitit' || { echo "ldrt-hpc: python3 cannot import ldrt_hpc and submitit (module profile $SHIPPED/modules/polaris.sh, conda env ldrt-hpc): install ldrt-hpc into that environment" >&2; exit 97; }
trap - ERR
export LDRT_WORKERS=32
export OMP_NUM_THREADS=1

# command
export SUBMITIT_EXECUTOR=pbs
export LDRT_NUM_NODES="$(sort -u "$PBS_NODEFILE" | wc -l)"
export LDRT_NUM_TASKS="$(( LDRT_NUM_NODES * 4 ))"
mpiexec -n "$LDRT_NUM_TASKS" --ppn 4 --depth=8 --cpu-bind depth python3 -u -m submitit.core._submit /RUN/_jobs/logs
