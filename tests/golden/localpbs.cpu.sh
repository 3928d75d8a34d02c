#!/bin/bash

# Parameters
#PBS -N ldrt-stage
#PBS -l select=1:ncpus=1
#PBS -l walltime=00:10:00
#PBS -J 0-3%2
#PBS -r y
#PBS -j oe
#PBS -o /WORK/ingest/_jobs/logs/

# ids: PBS Pro sets PBS_ARRAY_ID/PBS_ARRAY_INDEX; Slurm's qsub wrapper sets only SLURM_* (no spank_pbs)
export PBS_JOBID="${PBS_JOBID:-${SLURM_JOB_ID:-}}"
export PBS_ARRAY_ID="${PBS_ARRAY_ID:-${SLURM_ARRAY_JOB_ID:-}}"
export PBS_ARRAY_INDEX="${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}"
LDRT_JOB_ID="${PBS_ARRAY_ID}_${PBS_ARRAY_INDEX}"
exec >>"/WORK/ingest/_jobs/logs/${LDRT_JOB_ID}_0_log.out" 2>>"/WORK/ingest/_jobs/logs/${LDRT_JOB_ID}_0_log.err"
export LDRT_SIGNAL_AT=$(( $(date +%s) + 510 ))
cd "${PBS_O_WORKDIR:-$PWD}"

# setup
set -eo pipefail
trap 'echo "ldrt-hpc: job setup failed (exit $?) at: $BASH_COMMAND (module profile $SHIPPED/modules/local.sh, no conda env)" >&2; exit 97' ERR
source $SHIPPED/modules/local.sh
export OMP_NUM_THREADS=1
command -v python3 >/dev/null 2>&1 || { echo "ldrt-hpc: python3 not found after module/conda setup (module profile $SHIPPED/modules/local.sh, no conda env)" >&2; exit 97; }
python3 -c 'import ldrt_hpc, submitit' || { echo "ldrt-hpc: python3 cannot import ldrt_hpc and submitit (module profile $SHIPPED/modules/local.sh, no conda env): install ldrt-hpc into that environment" >&2; exit 97; }
trap - ERR
export LDRT_WORKERS=1

# command
export SUBMITIT_EXECUTOR=pbs
python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
