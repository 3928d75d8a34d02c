#!/usr/bin/env bash
# Bring up a single-node Slurm (slurmctld + slurmd + slurmdbd on MariaDB) for ldrt-hpc's tests and demo.
# Usage: env/slurm-local/start.sh [--install] [--fresh]
#   --install  apt-install the Debian packages first (root)
#   --fresh    wipe slurmctld state AND the accounting DB before starting (together or not at all: with one
#              kept and the other wiped, job ids restart and sacct mixes old jobs with new ones)
# Idempotent: a running cluster is left as it is; a stopped one resumes with its job ids and accounting.
# State lives in $LDRT_SLURM_STATE (default /var/tmp/ldrt-slurm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${LDRT_SLURM_STATE:-/var/tmp/ldrt-slurm}"
# OpenMPI before slurmd starts: slurmd loads its PMIx plugin (srun --mpi=pmix, MPI ensemble jobs) only when the
# PMIx library is there at its start
packages=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server slurm-wlm-torque openmpi-bin libopenmpi-dev)

install=0; fresh=0
for arg in "$@"; do
  case "$arg" in
    --install) install=1 ;;
    --fresh) fresh=1 ;;
    *) echo "start.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
if [[ $install == 1 ]]; then
  if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null \
     || ! command -v qsub >/dev/null || ! command -v orterun >/dev/null; then
    [[ $(id -u) == 0 ]] || { echo "start.sh --install: needs root for apt-get" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -q
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${packages[@]}"
  fi
fi
for bin in munged mariadbd slurmdbd slurmctld slurmd sinfo sacct; do
  command -v "$bin" >/dev/null || { echo "start.sh: '$bin' not found; run with --install (root) or install: ${packages[*]}" >&2; exit 1; }
done

if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
  echo "slurm-local: already running"; exit 0
fi

if [[ $fresh == 1 ]]; then "$here/stop.sh" --wipe >/dev/null; fi
first_start=0
[[ -d "$state/mysql/mysql" && -f "$state/ctld/node_state" ]] || first_start=1
if [[ $first_start == 1 ]]; then rm -rf "$state"; fi  # never one of ctld state and DB without the other
mkdir -p "$state"/{ctld,d,log,run,mysql}
host="$(hostname -s)"
cpus="$(getconf _NPROCESSORS_ONLN)"  # not nproc: it obeys OMP_NUM_THREADS
# Real memory in MB, minus a margin so that slurmd's own check never drains the node.
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))

sed -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM@|$mem_mb|g" -e "s|@STATE@|$state|g" \
  "$here/slurm.conf.in" > /etc/slurm/slurm.conf
sed -e "s|@STATE@|$state|g" "$here/slurmdbd.conf.in" > /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf
# No cgroup.conf: Slurm 22.05 autodetects; "CgroupPlugin=disabled" is unknown to it and stops slurmd.

# munge: a key once, then the daemon.
if [[ ! -s /etc/munge/munge.key ]]; then
  (command -v mungekey >/dev/null && mungekey --create --force) || \
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
mkdir -p /run/munge && chown munge:munge /run/munge
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/bash munge -c "munged --force" || munged --force

# MariaDB for slurmdbd: socket only, no network.
if [[ ! -d "$state/mysql/mysql" ]]; then
  mariadb-install-db --user=root --datadir="$state/mysql" --auth-root-authentication-method=socket >"$state/log/mariadb-install.log" 2>&1
fi
if ! pgrep -x mariadbd >/dev/null; then
  mkdir -p /run/mysqld
  (mariadbd --user=root --datadir="$state/mysql" --skip-networking --socket=/run/mysqld/mysqld.sock \
     --pid-file="$state/run/mariadb.pid" --log-error="$state/log/mariadb.log" 2>>"$state/log/mariadb.log" &)
  for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;" 

pgrep -x slurmdbd >/dev/null || slurmdbd
for _ in $(seq 60); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.5; done
if ! sacctmgr -n -P show cluster format=cluster | grep -qx ldrt; then
  sacctmgr -i add cluster ldrt >/dev/null
fi

# A new cluster starts with -i (no state to recover); a stopped one recovers its state, job ids included.
if ! pgrep -x slurmctld >/dev/null; then
  if [[ $first_start == 1 ]]; then slurmctld -i; else slurmctld; fi
fi
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm-local: node $host idle ($cpus CPUs, $mem_mb MB)"; exit 0
  fi
  # A node left DOWN by an earlier run comes back with a resume.
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 0.5
done
echo "slurm-local: node did not become idle; logs in $state/log" >&2
sinfo >&2 || true
exit 1
