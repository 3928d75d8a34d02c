# Module profile for ALCF Polaris (PBS Pro); sourced by every ldrt-hpc job script (ldrt_hpc/configs/clusters/polaris.yaml).
# Sourced under `set -eo pipefail`: a failing line stops the job (exit 97, one `ldrt-hpc:` line in its log).
module use /soft/modulefiles
module load conda
module load cudatoolkit-standalone/12.4.1
# Compute nodes reach the internet only through the proxy (model downloads happen before the jobs, not in them).
export HTTP_PROXY=http://proxy.alcf.anl.gov:3128
export HTTPS_PROXY=http://proxy.alcf.anl.gov:3128
export NCCL_NET_GDR_LEVEL=PHB
export NCCL_CROSS_NIC=1
export NCCL_COLLNET_ENABLE=1
export NCCL_NET="AWS Libfabric"
