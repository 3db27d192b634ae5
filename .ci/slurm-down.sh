#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by .ci/slurm-up.sh: cancel all jobs, then stop
# slurmd, slurmctld and munged. Quiet; always exits 0. Packages and config stay installed.
set -u

stop_pids() { # pids...: SIGTERM all at once, wait up to 10 s for them, then SIGKILL the rest
    local pid left=()
    for pid in "$@"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && left+=("$pid")
    done
    for _ in $(seq 100); do
        [ "${#left[@]}" -gt 0 ] || return 0
        for pid in "${!left[@]}"; do kill -0 "${left[$pid]}" 2>/dev/null || unset 'left[pid]'; done
        [ "${#left[@]}" -gt 0 ] || return 0
        sleep 0.1
    done
    for pid in "${left[@]}"; do kill -9 "$pid" 2>/dev/null; done
    return 0
}
pid_of() { # pidfile name: the pid, only if that process is still the named daemon
    local pid
    pid=$(cat "$1" 2>/dev/null) && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

if command -v squeue >/dev/null 2>&1 && [ -n "$(pid_of /run/slurmctld.pid slurmctld)" ]; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086  # one word per job id
        timeout 10 scancel $jobs >/dev/null 2>&1
        for _ in $(seq 50); do  # up to 10 s for the jobs to leave the node
            [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

# The three take 1-2 s each to exit: stop them together.
stop_pids "$(pid_of /run/slurmd.pid slurmd)" "$(pid_of /run/slurmctld.pid slurmctld)" \
    "$(pid_of /run/munge/munged.pid munged)"
rm -f /run/slurmd.pid /run/slurmctld.pid
exit 0
