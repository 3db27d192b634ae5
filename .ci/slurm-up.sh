#!/usr/bin/env bash
# Install (Debian 12 packages) and start a single-node Slurm cluster on this machine,
# then smoke-test it. Needs root; no systemd required: the daemons run directly.
# Idempotent: daemons already running with the same configuration are kept.
# On failure: ONE line "slurm: ..." on stderr and exit 1. Stop it with .ci/slurm-down.sh.
# Daemon logs go to $SLURM_CI_LOG_DIR (default /tmp/slurm-logs).
set -uo pipefail

LOG_DIR=${SLURM_CI_LOG_DIR:-/tmp/slurm-logs}
CONF_DIR=/etc/slurm
CTLD_STATE=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
PARTITION=ci
PKGS=(slurmd slurmctld slurm-client munge)

t_start=$EPOCHREALTIME
die() { echo "slurm: $*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
alive() { # pidfile name: is that pid running and still the named daemon?
    local pid
    pid=$(cat "$1" 2>/dev/null) && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts daemons)"
mkdir -p "$LOG_DIR" || die "cannot create log dir $LOG_DIR"

# --- 1. packages -------------------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PKGS[@]}"
    }
    # Keep the packages' init scripts from starting daemons (with no slurm.conf yet) during
    # the install, as Docker images do by default; removed again right after.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
            && policy=/usr/sbin/policy-rc.d
        trap 'rm -f "$policy"' EXIT
    fi
    installed=1
    if ! apt_install >"$LOG_DIR/apt.log" 2>&1; then
        { apt-get update && apt_install; } >>"$LOG_DIR/apt.log" 2>&1 || installed=0
    fi
    [ -n "$policy" ] && rm -f "$policy" && trap - EXIT
    [ "$installed" = 1 ] || die "apt-get install of ${missing[*]} failed (see $LOG_DIR/apt.log)"
fi
for b in munged munge unmunge slurmctld slurmd sinfo srun sbatch scontrol squeue; do
    command -v "$b" >/dev/null || die "$b not found after installing ${PKGS[*]}"
done

# --- 2. munge ----------------------------------------------------------------------------
id munge >/dev/null 2>&1 || die "user munge does not exist (munge package broken?)"
if [ ! -s "$MUNGE_KEY" ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$MUNGE_KEY" >/dev/null 2>&1
    fi
    [ -s "$MUNGE_KEY" ] || dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none \
        || die "cannot create munge key $MUNGE_KEY"
fi
{ chown munge:munge "$MUNGE_KEY" && chmod 0400 "$MUNGE_KEY"; } || die "cannot set owner/mode of $MUNGE_KEY"
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    for d in /run/munge /var/lib/munge /var/log/munge; do
        mkdir -p "$d" && chown munge:munge "$d"
    done
    chmod 0755 /run/munge
    runuser -u munge -- munged --force </dev/null >>"$LOG_DIR/munged.out" 2>&1 \
        || die "munged failed to start (see $LOG_DIR/munged.out and /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
    munge_ok || die "munged started but munge/unmunge round trip fails (see /var/log/munge/munged.log)"
fi

# --- 3. configuration --------------------------------------------------------------------
host=$(hostname -s) || die "hostname -s failed"
[ -n "$host" ] || die "hostname -s is empty"
# Hardware as slurmd sees it (avoids the node coming up DRAIN for "Low socket*core*thread count").
hw=$(slurmd -C 2>/dev/null | grep -m1 '^NodeName=') || hw=""
field() { sed -n "s/.*[[:space:]]$1=\([0-9][0-9]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs); boards=$(field Boards); sockets=$(field SocketsPerBoard)
cores=$(field CoresPerSocket); threads=$(field ThreadsPerCore); hwmem=$(field RealMemory)
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
if [ -n "$hwmem" ] && [ "$hwmem" -lt "$mem_mb" ]; then mem_mb=$hwmem; fi
if [ -n "$cpus" ] && [ -n "$boards" ] && [ -n "$sockets" ] && [ -n "$cores" ] && [ -n "$threads" ]; then
    node_hw="CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads"
else
    cpus=$(nproc)
    node_hw="CPUs=$cpus"
fi
[ "${mem_mb:-0}" -gt 0 ] || mem_mb=1024

mkdir -p "$CONF_DIR" "$CTLD_STATE" "$SLURMD_SPOOL" || die "cannot create $CONF_DIR / spool dirs"
new_conf=$(cat <<EOF
# Written by .ci/slurm-up.sh: single-node CI cluster. Edits are overwritten.
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
StateSaveLocation=$CTLD_STATE
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ReturnToService=2
SlurmctldTimeout=120
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
MinJobAge=300
MaxJobCount=50000
MaxArraySize=10001
SchedulerType=sched/backfill
# batch_sched_delay=0: start queued batch/array tasks right away (default waits 3 s per round).
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
NodeName=$host NodeAddr=127.0.0.1 $node_hw RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
conf_changed=0
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$new_conf" ]; then
    printf '%s\n' "$new_conf" >"$CONF_DIR/slurm.conf" || die "cannot write $CONF_DIR/slurm.conf"
    conf_changed=1
fi

# --- 4. daemons --------------------------------------------------------------------------
if [ "$conf_changed" = 1 ]; then  # restart with the new configuration
    pids=()
    alive "$SLURMD_PID" slurmd && pids+=("$(cat "$SLURMD_PID")")
    alive "$CTLD_PID" slurmctld && pids+=("$(cat "$CTLD_PID")")
    if [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null
        for _ in $(seq 100); do
            alive "$SLURMD_PID" slurmd || alive "$CTLD_PID" slurmctld || break
            sleep 0.1
        done
        alive "$SLURMD_PID" slurmd && kill -9 "$(cat "$SLURMD_PID")"
        alive "$CTLD_PID" slurmctld && kill -9 "$(cat "$CTLD_PID")"
    fi
fi

if ! alive "$CTLD_PID" slurmctld; then
    # -c: start with a clean job state (no jobs recovered from an earlier, unclean run).
    slurmctld -c </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 \
        || die "slurmctld failed to start (see $LOG_DIR/slurmctld.log)"
fi
ok=0
for _ in $(seq 300); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && { ok=1; break; }
    alive "$CTLD_PID" slurmctld || break
    sleep 0.1
done
[ "$ok" = 1 ] || die "slurmctld is not answering after 30 s (see $LOG_DIR/slurmctld.log)"

if ! alive "$SLURMD_PID" slurmd; then
    slurmd </dev/null >>"$LOG_DIR/slurmd.out" 2>&1 \
        || die "slurmd failed to start (see $LOG_DIR/slurmd.log)"
fi
state="" resumed=0 ok=0
for _ in $(seq 240); do  # 60 s, polled every 0.25 s
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n1)
    case "$state" in
        idle|mixed|allocated|completing) ok=1; break ;;
        inval*)  # configured CPUs/memory exceed what slurmd found: resuming cannot help
            die "node $host is INVAL: $(sinfo -h -n "$host" -o %E 2>/dev/null | head -n1) (see $LOG_DIR/slurmctld.log)" ;;
        *drain*|*down*|*fail*)
            if [ "$resumed" = 0 ]; then
                scontrol update nodename="$host" state=resume >/dev/null 2>&1
                resumed=1
            fi ;;
    esac
    sleep 0.25
done
if [ "$ok" != 1 ]; then
    reason=$(sinfo -h -n "$host" -o %E 2>/dev/null | head -n1)
    die "slurmd did not register within 60 s (node $host state '${state:-none}'${reason:+, reason: $reason}; see $LOG_DIR/slurmd.log)"
fi

# --- 5. smoke test -----------------------------------------------------------------------
timeout 60 srun -N1 -n1 -t 1 true >/dev/null 2>"$LOG_DIR/smoke-srun.err" \
    || die "smoke test 'srun -N1 -n1 true' failed (see $LOG_DIR/smoke-srun.err)"
smoke=$(mktemp -d /tmp/slurm-smoke.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$smoke"' EXIT
# Poll squeue ourselves: 'sbatch --wait' checks only after 2 s, then 10 s (slow for a smoke test).
jid=$(sbatch --parsable --array=0-3%2 -t 1 -o /dev/null -e "$smoke/err.%a" \
    --wrap "echo \$SLURM_ARRAY_TASK_ID > $smoke/out.\$SLURM_ARRAY_TASK_ID" 2>"$LOG_DIR/smoke-array.err") \
    || die "smoke test 'sbatch --array=0-3%2' was rejected (see $LOG_DIR/smoke-array.err)"
jid=${jid%%;*}
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$jid" -o %i 2>/dev/null)" ] && break
    sleep 0.1
done
[ -z "$(squeue -h -j "$jid" -o %i 2>/dev/null)" ] \
    || { scancel "$jid" 2>/dev/null; die "smoke test array job $jid (--array=0-3%2) did not finish within 60 s (see $LOG_DIR/slurmctld.log)"; }
for i in 0 1 2 3; do
    [ "$(cat "$smoke/out.$i" 2>/dev/null)" = "$i" ] \
        || { cp "$smoke/err.$i" "$LOG_DIR/smoke-array.err.$i" 2>/dev/null
             die "smoke test array task $i wrote no output (stderr, if any: $LOG_DIR/smoke-array.err.$i)"; }
done

echo "slurm: up ($cpus CPUs, node $host) in $(elapsed "$t_start") s"
