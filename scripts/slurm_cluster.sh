#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try and test profiles/slurm (see docs/cluster.md).
#   bash scripts/slurm_cluster.sh start    install (if missing) and start munge + SLURM
#   bash scripts/slurm_cluster.sh status   the daemons and the node; exit 1 when not up
#   bash scripts/slurm_cluster.sh stop     stop the daemons and remove what start wrote
#
# Needs root and Debian 12 (SLURM 22.05 from Debian's packages); no systemd is needed, the
# daemons run in the background. One partition `main` with this machine as its only node:
# all of its CPUs and its memory less a margin, no accounting (query jobs with squeue, not
# sacct). `start` and `stop` are safe to repeat. `stop` leaves the installed packages and the
# logs in /var/log/slurm; it removes the config, the state, the /etc/hosts line it added,
# and stops only the daemons that `start` started.
#
# GPUs: the node offers SLURM_CLUSTER_GPUS generic resources `gpu` (default: the NVIDIA GPUs
# found, or, on a machine without any, one placeholder per CPU so that the profile's GPU
# requests can be scheduled; such jobs find no CUDA and the encoder, with device auto, uses
# the CPU, as it does in a local run).
#
# Settings (environment): SLURM_CLUSTER_GPUS (see above), SLURM_CLUSTER_MEM_MARGIN_MB
# (memory kept from SLURM, default 1024), SLURM_CLUSTER_TIMEOUT (seconds to wait for the node
# to be idle, default 60).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
GRES_CONF="$CONF_DIR/gres.conf"
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
RUN_DIR=/run/slurm
LOG_DIR=/var/log/slurm
# What start did, so that stop undoes only that.
MARK_DIR=/run/rdls-slurm-cluster
MARK="# written by rdls scripts/slurm_cluster.sh"
PACKAGES=(munge slurmctld slurmd slurm-client)
TIMEOUT="${SLURM_CLUSTER_TIMEOUT:-60}"
MEM_MARGIN_MB="${SLURM_CLUSTER_MEM_MARGIN_MB:-1024}"

say() { echo "slurm_cluster: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# The pid in a pid file when that process is alive.
live_pid() {
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

need_root() {
    [[ "$(id -u)" == 0 ]] || die "must run as root (it installs packages and starts daemons)"
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
    say "installing ${missing[*]} from Debian's packages"
    # No daemon may start from the packages' init scripts: this script starts them itself.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get -qq install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
        apt-get -qq update >/dev/null && apt-get -qq install -y --no-install-recommends \
            "${PACKAGES[@]}" >/dev/null || rc=$?
    fi
    ((added_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${PACKAGES[*]} failed (exit $rc)"
}

# This machine's short name, resolvable: SLURM finds its node by it.
node_name() {
    local name
    name="$(hostname -s)"
    [[ -n "$name" ]] || die "hostname -s printed nothing"
    if ! getent hosts "$name" >/dev/null; then
        say "adding '127.0.0.1 $name' to /etc/hosts (stop removes it)"
        echo "127.0.0.1 $name $MARK" >>/etc/hosts
    fi
    echo "$name"
}

gpu_count() {
    if [[ -n "${SLURM_CLUSTER_GPUS:-}" ]]; then
        [[ "$SLURM_CLUSTER_GPUS" =~ ^[0-9]+$ ]] || die "SLURM_CLUSTER_GPUS must be a number"
        echo "$SLURM_CLUSTER_GPUS"
        return
    fi
    local n
    n="$(find /dev -maxdepth 1 -regex '/dev/nvidia[0-9]+' 2>/dev/null | wc -l)"
    # Without GPUs: one placeholder per CPU, so that GPU requests never limit the jobs.
    echo $((n > 0 ? n : $(nproc)))
}

# The device of GPU i: the NVIDIA device where there is one, else a placeholder file (SLURM
# wants a distinct file per GPU).
gpu_file() {
    if [[ -e "/dev/nvidia$1" ]]; then
        echo "/dev/nvidia$1"
    else
        touch "$MARK_DIR/gpu$1"
        echo "$MARK_DIR/gpu$1"
    fi
}

write_config() {
    local node="$1" cpus layout mem gpus
    if [[ -e "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: is this a real SLURM host?" \
            "Refusing to overwrite it."
    fi
    # CPUs and their layout as slurmd sees them (it drains a node configured otherwise).
    layout="$(slurmd -C | head -1 |
        grep -oE '(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' |
        tr '\n' ' ')"
    [[ "$layout" == *CPUs=* ]] || layout="CPUs=$(nproc) "
    cpus="$(nproc)"
    mem="$(free -m | awk '/^Mem:/ {print $2}')"
    mem=$((mem - MEM_MARGIN_MB))
    ((mem > 500)) || die "too little memory for a node: $mem MB after the margin"
    gpus="$(gpu_count)"
    mkdir -p "$CONF_DIR"
    cat >"$CONF" <<EOF
$MARK: a one-node test cluster; stop removes it.
ClusterName=rdls
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroups: linuxproc tracks a job's processes, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# No accounting database: sacct has nothing to show, status comes from squeue, which keeps
# finished jobs for MinJobAge seconds (the Snakemake SLURM plugin needs at least 120; an
# hour lets a test look at all of a run's jobs afterwards).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Take CPUs, memory and GPUs from this file even where slurmd counts otherwise.
SlurmdParameters=config_overrides
GresTypes=gpu
KillWait=5
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
NodeName=$node ${layout}RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$GRES_CONF" <<EOF
$MARK
AutoDetect=off
EOF
    local i
    for ((i = 0; i < gpus; i++)); do
        echo "NodeName=$node Name=gpu File=$(gpu_file "$i")" >>"$GRES_CONF"
    done
    say "node $node: $cpus CPUs, $mem MB, $gpus GPU(s)"
}

start_munge() {
    if pgrep -x munged >/dev/null; then
        say "munged is already running: using it"
        return
    fi
    [[ -s /etc/munge/munge.key ]] || {
        say "creating the munge key"
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    }
    [[ -d /run/munge ]] || touch "$MARK_DIR/run-munge"
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged --force ||
        fail_start "munged did not start (see /var/log/munge/munged.log)"
    touch "$MARK_DIR/munged"
    local i
    for i in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    fail_start "munge does not answer (see /var/log/munge/munged.log)"
}

node_state() {
    sinfo -h -N -n "$1" -o %T 2>/dev/null | head -1
}

wait_idle() {
    local node="$1" state="" deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        state="$(node_state "$node")"
        case "$state" in
            idle | mixed | allocated | completing) return 0 ;;
            drain* | down*)
                scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
                ;;
        esac
        sleep 0.5
    done
    say "node $node is '${state:-not known}' after ${TIMEOUT} s; the logs say:"
    tail -n 15 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 2>/dev/null || true
    return 1
}

# Undo a start that went wrong half way, then stop with the error.
fail_start() {
    say "error: $*"
    cmd_stop >/dev/null 2>&1 || true
    exit 1
}

cmd_start() {
    need_root
    local t0=$SECONDS node ctld=0 d=0
    install_packages
    node="$(node_name)"
    live_pid "$RUN_DIR/slurmctld.pid" >/dev/null && ctld=1
    live_pid "$RUN_DIR/slurmd.pid" >/dev/null && d=1
    if ((ctld && d)); then
        say "already running"
        wait_idle "$node" || die "the running cluster's node is not idle"
        sinfo
        return
    elif ((ctld || d)); then
        say "half running (one daemon ended): restarting"
        cmd_stop
    fi
    mkdir -p "$MARK_DIR" "$RUN_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
    if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
        die "a slurmctld or slurmd not started by this script is running; stop it first"
    fi
    write_config "$node"
    start_munge
    # -c: a clean start, without jobs left in the state of an earlier run.
    slurmctld -c || fail_start "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    slurmd || fail_start "slurmd did not start (see $LOG_DIR/slurmd.log):" \
        "$(tail -n 3 "$LOG_DIR/slurmd.log" 2>/dev/null)"
    wait_idle "$node" || fail_start "the cluster did not come up"
    sinfo
    say "up in $((SECONDS - t0)) s; stop it with: bash scripts/slurm_cluster.sh stop"
}

stop_daemon() {
    local name="$1" pidfile="$2" pid i
    pid="$(live_pid "$pidfile")" || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "$name ($pid) did not stop within 10 s: killing it"
    kill -9 "$pid" 2>/dev/null || true
}

cmd_stop() {
    need_root
    if [[ -e "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF was not written by this script: leaving this SLURM alone"
    fi
    # Jobs first, so that none outlives the cluster (this cluster runs only root's jobs).
    if live_pid "$RUN_DIR/slurmctld.pid" >/dev/null; then
        scancel --full --user root >/dev/null 2>&1 || true
        local i
        for i in $(seq 60); do
            [[ -z "$(squeue -h -t RUNNING,COMPLETING 2>/dev/null)" ]] && break
            sleep 0.5
        done
    fi
    stop_daemon slurmd "$RUN_DIR/slurmd.pid"
    stop_daemon slurmctld "$RUN_DIR/slurmctld.pid"
    if [[ -e "$MARK_DIR/munged" ]]; then
        stop_daemon munged /run/munge/munged.pid
        [[ -e "$MARK_DIR/run-munge" ]] && rm -rf /run/munge
    fi
    if grep -qF "$MARK" /etc/hosts 2>/dev/null; then
        local hosts
        hosts="$(grep -vF "$MARK" /etc/hosts)"
        # Rewrite in place: /etc/hosts may be a bind mount that cannot be replaced.
        printf '%s\n' "$hosts" >/etc/hosts
    fi
    if [[ -e "$CONF" ]]; then
        rm -f "$CONF" "$GRES_CONF"
        rm -rf "$STATE_DIR" "$SPOOL_DIR" "$RUN_DIR"
    fi
    rm -rf "$MARK_DIR"
    say "stopped"
}

cmd_status() {
    local ok=0 name pidfile pid
    for name in slurmctld slurmd; do
        pidfile="$RUN_DIR/$name.pid"
        if pid="$(live_pid "$pidfile")"; then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    if pgrep -x munged >/dev/null; then echo "munged: running"; else
        echo "munged: not running"
        ok=1
    fi
    if ((ok == 0)); then
        sinfo -N -l || ok=1
        squeue || ok=1
    fi
    return "$ok"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: bash scripts/slurm_cluster.sh start|stop|status" >&2
        exit 2
        ;;
esac
