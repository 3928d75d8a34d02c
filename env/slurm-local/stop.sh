#!/usr/bin/env bash
# Stop the single-node Slurm started by start.sh. --wipe also deletes slurmctld state AND the accounting DB
# (together or not at all: job ids restart at 1 and sacct must not show ids of an older cluster).
set -uo pipefail
state="${LDRT_SLURM_STATE:-/var/tmp/ldrt-slurm}"
scancel --user=root >/dev/null 2>&1 || true
for daemon in slurmd slurmctld slurmdbd; do pkill -x "$daemon" 2>/dev/null; done
for _ in $(seq 20); do pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x slurmdbd >/dev/null || break; sleep 0.5; done
if [[ -f "$state/run/mariadb.pid" ]]; then kill "$(cat "$state/run/mariadb.pid")" 2>/dev/null || true; fi
pkill -x mariadbd 2>/dev/null || true
if [[ "${1:-}" == "--wipe" ]]; then
  for _ in $(seq 20); do pgrep -x mariadbd >/dev/null || break; sleep 0.5; done
  rm -rf "$state"
fi
echo "slurm-local: stopped"
