#!/bin/bash

# Parameters
#SBATCH --account=myproject
#SBATCH --constraint=a100
#SBATCH --cpus-per-task=8
#SBATCH --error=/WORK/ingest/_jobs/logs/%j_0_log.err
#SBATCH --gpus-per-node=4
#SBATCH --job-name=ldrt-stage
#SBATCH --mem=491520M
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=4
#SBATCH --open-mode=append
#SBATCH --output=/WORK/ingest/_jobs/logs/%j_0_log.out
#SBATCH --partition=gpu
#SBATCH --signal=USR2@90
#SBATCH --time=1440
#SBATCH --wckey=submitit

# setup
source $SHIPPED/modules/generic-slurm.sh
conda activate ldrt-hpc
export HF_HUB_OFFLINE=1
export OMP_NUM_THREADS=8
export LDRT_WORKERS=32

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /WORK/ingest/_jobs/logs/%j_%t_log.out --error /WORK/ingest/_jobs/logs/%j_%t_log.err python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
