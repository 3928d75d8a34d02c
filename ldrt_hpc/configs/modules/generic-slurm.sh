# Module profile for a generic Slurm site; sourced by every ldrt-hpc job script (ldrt_hpc/configs/clusters/generic-slurm.yaml).
# Sourced under `set -eo pipefail`: a failing line stops the job (exit 97, one `ldrt-hpc:` line in its log).
module purge
module load gcc/12
module load cuda/12.4
module load openmpi/4.1
module load anaconda3
