#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests and CI (Debian, run as root, no systemd).
#
#   bash scripts/slurm_local.sh start    # install slurm-wlm + munge if needed, start munged, slurmctld, slurmd
#   bash scripts/slurm_local.sh stop     # stop slurmctld and slurmd (munged stays; files stay)
#   bash scripts/slurm_local.sh status   # sinfo and squeue
#
# `start` is idempotent: a second call only checks that the node is up (a tenth of a second).
#
# Where slurm.conf lives: Debian's slurm (22.05 on bookworm) is built to read /etc/slurm/slurm.conf, so
# `start` writes the config THERE, and sbatch/squeue/scancel/scontrol work from any shell, test or CI step
# without exporting SLURM_CONF. The file carries a marker line; a /etc/slurm/slurm.conf without the marker
# (a real site config) is never overwritten: then the config goes to $SLURM_LOCAL_DIR/slurm.conf and `start`
# ends by printing the `export SLURM_CONF=...` line that users of the cluster need.
#
# Everything else (state, spool, logs, pid files) lives under SLURM_LOCAL_DIR (default /tmp/slurm-local):
#   $SLURM_LOCAL_DIR/log/slurmctld.log, slurmd.log   -- look here first when something fails
#
# The cluster: one node named after `hostname -s` (addressed as 127.0.0.1, so no DNS is needed), with
# CPUs = nproc and RealMemory a bit below `free -m`; one partition `debug` (default, no time limit);
# select/cons_tres with CR_CPU, so each 1-CPU array task takes one CPU and `nproc` tasks run at once;
# no cgroups (proctrack/linuxproc, task/none), no accounting (so no sacct), SlurmUser=root.
#
# Environment knobs: SLURM_LOCAL_DIR (see above), SLURM_LOCAL_TIMEOUT (seconds to wait for the node to
# come up; default 60), SLURM_LOCAL_CRED_EXPIRE (job credential lifetime in seconds, default 30; a job
# requeued with `scontrol requeue` waits this long + 1 s before it may start again; Slurm's default is 120),
# SLURM_LOCAL_KEEP_JOBS (1: a freshly started slurmctld keeps the jobs saved by its previous life; default 0
# clears them, see `start`).
set -euo pipefail

LOCAL_DIR=${SLURM_LOCAL_DIR:-/tmp/slurm-local}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
CRED_EXPIRE=${SLURM_LOCAL_CRED_EXPIRE:-30}
KEEP_JOBS=${SLURM_LOCAL_KEEP_JOBS:-0}
SYSTEM_CONF=/etc/slurm/slurm.conf
MARKER_PREFIX='# Written by scripts/slurm_local.sh'  # first line of every config this script writes
MARKER="$MARKER_PREFIX (rewritten by every 'slurm_local.sh start')."
NODE=$(hostname -s 2>/dev/null || true)
NODE=${NODE:-localnode}

log() { echo "slurm_local: $*"; }
die() { echo "slurm_local: ERROR: $*" >&2; exit 1; }

# The config file to use: /etc/slurm/slurm.conf unless it is someone else's (see the header).
choose_conf() {
  if [ ! -e "$SYSTEM_CONF" ] || head -n 1 "$SYSTEM_CONF" | grep -qF "$MARKER_PREFIX"; then
    echo "$SYSTEM_CONF"
  else
    echo "$LOCAL_DIR/slurm.conf"
  fi
}
CONF=$(choose_conf)
export SLURM_CONF=$CONF  # for the slurm commands this script runs

# --- helpers -------------------------------------------------------------------------------------------

# The pid in a pid file, if that process is alive and is the named program (guards against stale files).
running_pid() {  # running_pid <pidfile> <program name>
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] || return 1
  echo "$pid"
}

show_logs() {
  local f
  for f in "$LOCAL_DIR/log/slurmctld.log" "$LOCAL_DIR/log/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] && { echo "----- tail of $f" >&2; tail -n 25 "$f" >&2; }
  done
  return 0
}

# The node's state as sinfo prints it (idle, mix, alloc, down*, drain, ...), or nothing if no answer.
node_state() { timeout 10 sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n 1 || true; }

# True once the slurmd started at or after epoch $1 has registered with slurmctld. (A restarted slurmctld
# shows the node's saved state, e.g. idle, before slurmd has registered: the state alone is not enough.)
registered_since() {
  local t
  t=$(timeout 10 scontrol -o show node "$NODE" 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' | cut -d= -f2)
  [ -n "$t" ] && [ "$t" != None ] && [ "$(date -d "$t" +%s 2>/dev/null || echo 0)" -ge "$(( $1 - 1 ))" ]
}

# --- start ---------------------------------------------------------------------------------------------

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
     && command -v munged >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "slurm is not installed and there is no apt-get to install it"
  log "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=300 -y -qq)  # wait for another apt-get instead of failing
  # On a fresh machine the package lists may be missing or stale: update once if the first try fails.
  if ! "${apt[@]}" install --no-install-recommends slurm-wlm munge >/dev/null; then
    log "apt-get install failed; retrying after apt-get update"
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install --no-install-recommends slurm-wlm munge >/dev/null
  fi
}

start_munge() {
  # munged runs as the `munge` user; its key, dirs and socket dir must belong to that user.
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  if munge -n </dev/null >/dev/null 2>&1; then return; fi  # already running
  log "starting munged"
  # 9>&-: the daemons must not inherit the lock of `start` (fd 9), or they would hold it for good and
  # every later `start` would wait on it forever.
  runuser -u munge -- /usr/sbin/munged 9>&- || { show_logs; die "munged did not start"; }
  for _ in $(seq 50); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  show_logs; die "munged started but 'munge -n | unmunge' fails"
}

write_conf() {
  local cpus mem_total mem tmp
  cpus=$(nproc)
  mem_total=$(free -m | awk '/^Mem:/ {print $2}')
  mem=$(( mem_total * 95 / 100 ))  # a bit below the total, so slurmd never finds less than configured
  mkdir -p "$(dirname "$CONF")"
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
$MARKER
# Single-node cluster for tests and CI; state, spool and logs under $LOCAL_DIR.
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# Requeued jobs wait cred_expire + 1 s before they may run again (Slurm's default 120 s is slow for tests).
AuthInfo=cred_expire=$CRED_EXPIRE
MpiDefault=none
MailProg=/bin/true
# No cgroups: plain /proc process tracking, no task binding or confinement, no accounting.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Schedule single CPUs, so several 1-CPU array tasks share the node.
SchedulerType=sched/backfill
# Scan pending jobs every few seconds (defaults: 60 s / 30 s), so jobs that become eligible by time alone
# (a requeued job after cred_expire, --begin) start promptly. Cheap on one node.
SchedulerParameters=sched_interval=5,bf_interval=5,batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# A node that was down comes back as soon as it registers; the configured size counts, not the probed one.
ReturnToService=2
SlurmdParameters=config_overrides
JobRequeue=1
MaxArraySize=10001
# Seconds between SIGTERM and SIGKILL (scancel, time limit); seconds a finished job stays known to
# slurmctld (scontrol show job; squeue lists only pending/running jobs by default).
KillWait=30
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=120
SlurmdTimeout=300
StateSaveLocation=$LOCAL_DIR/state
SlurmdSpoolDir=$LOCAL_DIR/spool
SlurmctldPidFile=$LOCAL_DIR/run/slurmctld.pid
SlurmdPidFile=$LOCAL_DIR/run/slurmd.pid
SlurmctldLogFile=$LOCAL_DIR/log/slurmctld.log
SlurmdLogFile=$LOCAL_DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$NODE NodeHostname=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
    return 1  # unchanged
  fi
  log "writing $CONF (node $NODE: CPUs=$cpus RealMemory=$mem)"
  install -m 0644 "$tmp" "$CONF"
  rm -f "$tmp"
  return 0  # changed
}

stop_daemons() {
  local name pid
  for name in slurmd slurmctld; do
    if pid=$(running_pid "$LOCAL_DIR/run/$name.pid" "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
      done
      if [ -d "/proc/$pid" ]; then
        log "$name did not exit after 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  done
}

start() {
  local t0=$SECONDS changed=0 state deadline resumed=0 slurmd_started=0
  [ "$(id -u)" = 0 ] || die "run as root (installs packages and starts daemons as SlurmUser=root)"
  # One `start` at a time (e.g. parallel CI steps); the lock is released when this script exits.
  mkdir -p "$(dirname "$LOCAL_DIR")"
  exec 9>"$LOCAL_DIR.lock"
  flock 9
  install_packages
  start_munge
  mkdir -p "$LOCAL_DIR"/{state,spool,log,run}
  write_conf && changed=1
  if [ "$changed" = 1 ]; then
    stop_daemons  # daemons started with an older config would not see the new one
  fi
  if ! running_pid "$LOCAL_DIR/run/slurmctld.pid" slurmctld >/dev/null; then
    # -i: ignore unreadable saved state (e.g. left by another slurm version) instead of refusing to start.
    # -c: a fresh controller forgets the jobs of its previous life. Saved state outlives the daemons (a
    # machine image, a container snapshot, a killed CI run), and JobRequeue=1 would start those jobs again
    # and hold the node's CPUs for good, so that every test job queues forever ("waiting for resources").
    # SLURM_LOCAL_KEEP_JOBS=1 keeps them (e.g. after `stop` + `start` to change the config).
    local clear=(-c)
    [ "$KEEP_JOBS" = 1 ] && clear=()
    log "starting slurmctld${clear:+ (previous jobs cleared)}"
    slurmctld -i "${clear[@]}" -f "$CONF" 9>&- || { show_logs; die "slurmctld did not start"; }
  fi
  if ! running_pid "$LOCAL_DIR/run/slurmd.pid" slurmd >/dev/null; then
    log "starting slurmd"
    slurmd_started=$(date +%s)
    slurmd -N "$NODE" -f "$CONF" 9>&- || { show_logs; die "slurmd did not start"; }
  fi

  # Wait until the node is up (and, if slurmd was just started, has registered); resume it (once) if it
  # registered as down or drained. A trailing * in the state (idle*, down*) means "not responding".
  deadline=$(( SECONDS + TIMEOUT ))
  while :; do
    state=$(node_state)
    if [ "$slurmd_started" = 0 ] || registered_since "$slurmd_started"; then
      case "$state" in
        idle|mix|alloc|comp) break ;;
        down|drain|drng|fail) if [ "$resumed" = 0 ]; then
            log "node $NODE is '$state'; resuming it"
            scontrol update nodename="$NODE" state=resume || true
            resumed=1
          fi ;;
      esac
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "slurm_local: ERROR: node $NODE not up after $TIMEOUT s (sinfo state: '${state:-no answer}')" >&2
      timeout 10 scontrol show node "$NODE" >&2 2>&1 || true
      show_logs
      exit 1
    fi
    sleep 0.5
  done
  log "node $NODE is $state (partition debug); start took $(( SECONDS - t0 )) s"
  if [ "$CONF" != "$SYSTEM_CONF" ]; then
    echo "export SLURM_CONF=$CONF"
  fi
}

stop() {
  stop_daemons
  log "slurmctld and slurmd stopped (munged left running; files kept in $LOCAL_DIR)"
}

status() {
  sinfo
  squeue
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
