#!/bin/bash

# Parameters
#PBS -N ldrt-stage
#PBS -A MYPROJECT
#PBS -q prod
#PBS -l select=10:ncpus=32:ngpus=4:mpiprocs=4
#PBS -l walltime=12:00:00
#PBS -l filesystems=home:eagle
#PBS -l place=scatter
#PBS -r y
#PBS -j oe
#PBS -o /WORK/ingest/_jobs/logs/

# ids: PBS Pro sets PBS_ARRAY_ID/PBS_ARRAY_INDEX; Slurm's qsub wrapper sets only SLURM_* (no spank_pbs)
export PBS_JOBID="${PBS_JOBID:-${SLURM_JOB_ID:-}}"
LDRT_JOB_ID="${PBS_JOBID}"
exec >>"/WORK/ingest/_jobs/logs/${LDRT_JOB_ID}_0_log.out" 2>>"/WORK/ingest/_jobs/logs/${LDRT_JOB_ID}_0_log.err"
cd "${PBS_O_WORKDIR:-$PWD}"

# setup
source $SHIPPED/modules/polaris.sh
conda activate ldrt-hpc
export HF_HUB_OFFLINE=1
export OMP_NUM_THREADS=8
export LDRT_WORKERS=32

# command
export SUBMITIT_EXECUTOR=pbs
python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
