#!/bin/bash

# Parameters
#SBATCH --cpus-per-task=1
#SBATCH --error=/RUN/_jobs/logs/%j_0_log.err
#SBATCH --job-name=ldrt-train
#SBATCH --mem=8192M
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --open-mode=append
#SBATCH --output=/RUN/_jobs/logs/%j_0_log.out
#SBATCH --partition=debug
#SBATCH --requeue
#SBATCH --signal=USR2@600
#SBATCH --time=30
#SBATCH --wckey=submitit

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
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /RUN/_jobs/logs/%j_%t_log.out --error /RUN/_jobs/logs/%j_%t_log.err python3 -u -m submitit.core._submit /RUN/_jobs/logs
