#!/bin/bash

# Parameters
#SBATCH --cpus-per-task=1
#SBATCH --error=/WORK/ingest/_jobs/logs/%j_0_log.err
#SBATCH --job-name=ldrt-stage
#SBATCH --mem=4096M
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/WORK/ingest/_jobs/logs/%j_0_log.out
#SBATCH --partition=debug
#SBATCH --signal=USR2@90
#SBATCH --time=30
#SBATCH --wckey=submitit

# setup
source $SHIPPED/modules/local.sh
export OMP_NUM_THREADS=1
export LDRT_WORKERS=1

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /WORK/ingest/_jobs/logs/%j_%t_log.out --error /WORK/ingest/_jobs/logs/%j_%t_log.err python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
