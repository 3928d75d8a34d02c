#!/bin/bash

# Parameters
#SBATCH --account=myproject
#SBATCH --array=0-999%200
#SBATCH --cpus-per-task=4
#SBATCH --error=/WORK/ingest/_jobs/logs/%A_%a_0_log.err
#SBATCH --job-name=ldrt-stage
#SBATCH --mem=16384M
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/WORK/ingest/_jobs/logs/%A_%a_0_log.out
#SBATCH --partition=cpu
#SBATCH --signal=USR2@90
#SBATCH --time=120
#SBATCH --wckey=submitit

# setup
source $SHIPPED/modules/generic-slurm.sh
conda activate ldrt-hpc
export HF_HUB_OFFLINE=1
export OMP_NUM_THREADS=4
export LDRT_WORKERS=4

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /WORK/ingest/_jobs/logs/%A_%a_%t_log.out --error /WORK/ingest/_jobs/logs/%A_%a_%t_log.err python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
