#!/bin/bash

# Parameters
#SBATCH --account=myproject
#SBATCH --constraint=a100
#SBATCH --cpus-per-task=8
#SBATCH --error=/RUN/_jobs/logs/%j_0_log.err
#SBATCH --gpus-per-node=4
#SBATCH --job-name=ldrt-train
#SBATCH --mem=491520M
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=4
#SBATCH --open-mode=append
#SBATCH --output=/RUN/_jobs/logs/%j_0_log.out
#SBATCH --partition=gpu
#SBATCH --requeue
#SBATCH --signal=USR2@600
#SBATCH --time=1440
#SBATCH --wckey=submitit

# setup
set -eo pipefail
trap 'echo "ldrt-hpc: job setup failed (exit $?) at: $BASH_COMMAND (module profile $SHIPPED/modules/generic-slurm.sh, conda env ldrt-hpc)" >&2; exit 97' ERR
source $SHIPPED/modules/generic-slurm.sh
command -v conda >/dev/null 2>&1 || { echo "ldrt-hpc: conda not found after sourcing $SHIPPED/modules/generic-slurm.sh: cannot activate conda env ldrt-hpc" >&2; exit 97; }
eval "$(conda shell.bash hook)"
conda activate ldrt-hpc
export HF_HUB_OFFLINE=1
command -v python3 >/dev/null 2>&1 || { echo "ldrt-hpc: python3 not found after module/conda setup (module profile $SHIPPED/modules/generic-slurm.sh, conda env ldrt-hpc)" >&2; exit 97; }
python3 -c 'import ldrt_hpc, submitit' || { echo "ldrt-hpc: python3 cannot import ldrt_hpc and submitit (module profile $SHIPPED/modules/generic-slurm.sh, conda env ldrt-hpc): install ldrt-hpc into that environment" >&2; exit 97; }
trap - ERR
export LDRT_WORKERS=8
export OMP_NUM_THREADS=1

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /RUN/_jobs/logs/%j_%t_log.out --error /RUN/_jobs/logs/%j_%t_log.err python3 -u -m submitit.core._submit /RUN/_jobs/logs
