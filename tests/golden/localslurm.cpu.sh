#!/bin/bash

# Parameters
#SBATCH --array=0-3%2
#SBATCH --cpus-per-task=1
#SBATCH --error=/WORK/ingest/_jobs/logs/%A_%a_0_log.err
#SBATCH --job-name=ldrt-stage
#SBATCH --mem=1024M
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/WORK/ingest/_jobs/logs/%A_%a_0_log.out
#SBATCH --partition=debug
#SBATCH --signal=USR2@90
#SBATCH --time=10
#SBATCH --wckey=submitit

# setup
source $SHIPPED/modules/local.sh
export OMP_NUM_THREADS=1
export LDRT_WORKERS=1

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /WORK/ingest/_jobs/logs/%A_%a_%t_log.out --error /WORK/ingest/_jobs/logs/%A_%a_%t_log.err python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
