#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the `slurm` tests (tests/hpc/).
#
#   bash tests/hpc/local_slurm.sh start    # install if needed, start munged, slurmctld, slurmd
#   bash tests/hpc/local_slurm.sh status   # exit 0 when the cluster answers and the node is usable
#   bash tests/hpc/local_slurm.sh stop     # cancel jobs, stop the daemons we started, clean up
#
# Debian's packages (slurm-wlm, munge); needs root.  Idempotent: `start` on a running cluster
# does nothing, `stop` on a stopped one does nothing.  It writes /etc/slurm/slurm.conf only when
# there is none or when the file there is its own (first line marker), so it never overwrites a
# real cluster's configuration.  No accounting daemon: status queries use squeue (MinJobAge
# keeps finished jobs visible for 10 minutes), and jobs run without an account.
#
# Environment: LOCAL_SLURM_CPUS (default: nproc), LOCAL_SLURM_MEM_MB (default: 90% of RAM),
# LOCAL_SLURM_PARTITION (default: debug).
set -euo pipefail

MARKER="# written by surroflow tests/hpc/local_slurm.sh"
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
STATE=/var/lib/surroflow-slurm          # spool, state, logs, pid files of this cluster only
PARTITION=${LOCAL_SLURM_PARTITION:-debug}

log() { echo "local_slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }

cluster_ok() {
  local st
  st=$(timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -1) || return 1
  case "$st" in idle*|mix*|alloc*|completing*) return 0 ;; *) return 1 ;; esac
}

install_packages() {
  local need=()
  command -v slurmctld >/dev/null || need+=(slurm-wlm)
  command -v munged >/dev/null || need+=(munge)
  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "need root to install ${need[*]}"
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
  fi
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  su -s /bin/sh munge -c /usr/sbin/munged
  touch "$STATE/started_munged"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "munged did not come up (see /var/log/munge/munged.log)"
}

write_conf() {
  if [ -e "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARKER"; then
    die "$CONF exists and was not written by this script; not touching a real cluster's config"
  fi
  local host cpus mem_total mem
  host=$(hostname -s)
  cpus=${LOCAL_SLURM_CPUS:-$(nproc)}
  mem_total=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
  mem=${LOCAL_SLURM_MEM_MB:-$((mem_total * 9 / 10))}
  mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat >"$CONF" <<EOF
$MARKER
# Single-node test cluster: one node, one partition, no accounting, jobs share the node.
ClusterName=surroflow
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SchedulerParameters=sched_interval=1,bf_interval=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start_slurmd() {
  # cgroup plugins are not used (proctrack/linuxproc, task/none) but slurmd 22.05 still
  # initialises one: autodetect works on cgroup v1 hosts; on a v2 host without systemd it
  # needs IgnoreSystemd (written on a second try, only where no cgroup.conf exists).
  slurmd -N "$(hostname -s)" && sleep 0.5 && pid_alive "$STATE/slurmd.pid" && return 0
  if [ ! -e "$CONF_DIR/cgroup.conf" ] && grep -q "cgroup" "$STATE/log/slurmd.log" 2>/dev/null; then
    log "slurmd failed on cgroup initialisation: retrying with IgnoreSystemd=yes"
    printf '%s\nCgroupPlugin=autodetect\nIgnoreSystemd=yes\n' "$MARKER" >"$CONF_DIR/cgroup.conf"
    slurmd -N "$(hostname -s)" && sleep 0.5 && pid_alive "$STATE/slurmd.pid" && return 0
  fi
  die "slurmd did not start; last lines of $STATE/log/slurmd.log:
$(tail -n 8 "$STATE/log/slurmd.log" 2>/dev/null)"
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  if command -v sinfo >/dev/null && cluster_ok; then
    log "cluster already running: $(sinfo -h -o '%P %D %T %C' | head -1)"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "need root to start a local SLURM cluster"
  install_packages
  mkdir -p "$STATE"
  start_munge
  write_conf
  if ! pid_alive "$STATE/slurmctld.pid"; then
    slurmctld -i || die "slurmctld did not start; see $STATE/log/slurmctld.log"   # -i: ignore unrecoverable state
  fi
  for _ in $(seq 100); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
  timeout 5 scontrol ping 2>/dev/null | grep -q UP || die "slurmctld does not answer; last lines of $STATE/log/slurmctld.log:
$(tail -n 8 "$STATE/log/slurmctld.log" 2>/dev/null)"
  if ! pid_alive "$STATE/slurmd.pid"; then
    start_slurmd
  fi
  for _ in $(seq 150); do
    cluster_ok && break
    case "$(node_state)" in
      down*|drain*|fail*) scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  cluster_ok || die "node not usable: $(sinfo -N -l 2>&1 | tail -n +2); logs in $STATE/log"
  log "cluster up: $(sinfo -h -o 'partition=%P nodes=%D state=%T cpus(A/I/O/T)=%C' | head -1)"
}

stop_pid() {  # stop_pid NAME PIDFILE
  local pf=$2 pid
  pid_alive "$pf" || return 0
  pid=$(cat "$pf")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  log "$1 ($pid) did not stop on SIGTERM: SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  if [ -e "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARKER"; then
    die "$CONF was not written by this script: not stopping a real cluster"
  fi
  if [ -d "$STATE" ]; then
    if pid_alive "$STATE/slurmctld.pid"; then
      timeout 10 scancel --user=root 2>/dev/null || true
      timeout 10 scancel --full --state=RUNNING 2>/dev/null || true
      sleep 1
    fi
    stop_pid slurmd "$STATE/slurmd.pid"
    stop_pid slurmctld "$STATE/slurmctld.pid"
    if [ -e "$STATE/started_munged" ]; then
      stop_pid munged /run/munge/munged.pid
    fi
    rm -rf "$STATE"
  fi
  for f in "$CONF" "$CONF_DIR/cgroup.conf"; do
    if [ -e "$f" ] && head -1 "$f" | grep -qF "$MARKER"; then rm -f "$f"; fi
  done
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) cluster_ok && { sinfo; exit 0; } || { log "no usable cluster"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
