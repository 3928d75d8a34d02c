#!/bin/bash

# Parameters
#PBS -N ldrt-stage
#PBS -A MYPROJECT
#PBS -q preemptable
#PBS -l select=1:ncpus=64
#PBS -l walltime=02:00:00
#PBS -l filesystems=home:eagle
#PBS -J 0-99%10
#PBS -r y
#PBS -j oe
#PBS -o /WORK/ingest/_jobs/logs/

# ids: PBS Pro sets PBS_ARRAY_ID/PBS_ARRAY_INDEX; Slurm's qsub wrapper sets only SLURM_* (no spank_pbs)
export PBS_JOBID="${PBS_JOBID:-${SLURM_JOB_ID:-}}"
export PBS_ARRAY_ID="${PBS_ARRAY_ID:-${SLURM_ARRAY_JOB_ID:-}}"
export PBS_ARRAY_INDEX="${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}"
LDRT_JOB_ID="${PBS_ARRAY_ID}_${PBS_ARRAY_INDEX}"
exec >>"/WORK/ingest/_jobs/logs/${LDRT_JOB_ID}_0_log.out" 2>>"/WORK/ingest/_jobs/logs/${LDRT_JOB_ID}_0_log.err"
cd "${PBS_O_WORKDIR:-$PWD}"

# setup
source $SHIPPED/modules/polaris.sh
conda activate ldrt-hpc
export HF_HUB_OFFLINE=1
export OMP_NUM_THREADS=64
export LDRT_WORKERS=64

# command
export SUBMITIT_EXECUTOR=pbs
python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
