# local: one process per shard on this machine, at most 2 at a time
export OMP_NUM_THREADS=1
export LDRT_WORKERS=1
python3 -u -m submitit.core._submit /WORK/ingest/_jobs/logs
