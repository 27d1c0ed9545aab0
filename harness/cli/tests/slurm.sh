#!/usr/bin/env bash
# Tests `qbench run --backend slurm` for real: starts a one-node Slurm cluster on this machine
# (munged, slurmctld, slurmd, with a slurm.conf written here), runs a small grid through it with
# the --quick budget, kills one cell task midway, checks that `qbench runs status` reports it
# failed, resubmits, and checks that the aggregate equals a local run of the same spec, cell for
# cell. Every daemon it starts is stopped by pid on exit. Without root (or passwordless sudo) the
# daemons cannot run: it then prints "SKIPPED: <reason>" and exits 0.
#
# Usage: harness/cli/tests/slurm.sh   (QBENCH=/path/to/qbench to test a given binary)
set -euo pipefail
cd "$(dirname "$0")/../../.."
t0=$(date +%s)
skip() { echo "SKIPPED: Slurm backend test: $*"; exit 0; }
fail() { echo "FAILED: Slurm backend test: $*" >&2; exit 1; }

# Root runs the daemons (slurmd must start tasks as the submitting user).
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  skip "slurmd needs root, and this user is not root and has no passwordless sudo"
fi

# Debian's Slurm and munge.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
  echo "installing slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq slurm-wlm munge >/dev/null \
    || { "${as_root[@]}" apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq jq >/dev/null

# The binary under test.
target="${CARGO_TARGET_DIR:-target}"
QBENCH="${QBENCH:-$target/release/qbench}"
[ -x "$QBENCH" ] || cargo build --release -q -p qbench-cli
QBENCH="$(realpath "$QBENCH")"

tmp="$(mktemp -d /tmp/qbench-slurm.XXXXXX)"
chmod 755 "$tmp"
pids=()
cleanup() {
  local rc=$?
  if command -v squeue >/dev/null && [ -n "${SLURM_CONF:-}" ] && [ ${#pids[@]} -gt 1 ]; then
    # Our private cluster: every job on it is ours.
    jobs_left="$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')"
    if [ -n "${jobs_left// /}" ]; then
      # shellcheck disable=SC2086
      scancel $jobs_left 2>/dev/null || true
      sleep 3
    fi
  fi
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    "${as_root[@]}" kill "${pids[$i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    "${as_root[@]}" kill -9 "$pid" 2>/dev/null || true
  done
  if [ $rc -eq 0 ]; then
    rm -rf "$tmp"
  else
    echo "daemon logs and results kept in $tmp" >&2
    tail -n 20 "$tmp"/*.log >&2 2>/dev/null || true
  fi
}
trap cleanup EXIT

# munge, on its own key and socket.
mkdir -p "$tmp/munge" "$tmp/munge-key" "$tmp/ctld" "$tmp/spool"
chmod 755 "$tmp/munge"
chmod 700 "$tmp/munge-key"
dd if=/dev/urandom of="$tmp/munge-key/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge-key/munge.key"
"${as_root[@]}" munged --foreground --force --key-file="$tmp/munge-key/munge.key" \
  --socket="$tmp/munge/munge.socket" --pid-file="$tmp/munge-key/munged.pid" \
  --seed-file="$tmp/munge-key/seed" --log-file="$tmp/munged.log" >"$tmp/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/munge/munge.socket" ] && break; sleep 0.2; done
[ -S "$tmp/munge/munge.socket" ] || fail "munged did not start (see $tmp/munged.log)"

# A one-node cluster on localhost.
host="$(hostname -s)"
cpus="$(nproc)"
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
slurm_user="$( [ "$(id -u)" -eq 0 ] && echo root || id -un)"
export SLURM_CONF="$tmp/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=qbenchtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16917
SlurmdPort=16918
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/ctld
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
echo "submitting user: $slurm_user; cluster: $host, $cpus CPUs, ${mem_mb} MB"
"${as_root[@]}" env SLURM_CONF="$SLURM_CONF" slurmctld -D -c -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
"${as_root[@]}" env SLURM_CONF="$SLURM_CONF" slurmd -D -N "$host" -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 120); do
  state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "node $host is not idle after 60 s (state: '${state:-none}')"
echo "cluster up: node $host idle"

# Weights to import (as a user imports torchvision's), named relative to the spec's folder.
"$QBENCH" train --model mlp --epochs 1 --train-limit 2000 --results "$tmp/import-source" >/dev/null 2>&1 \
  || fail "training the mlp to import failed"
cp "$(ls "$tmp"/import-source/models/*/model.safetensors)" "$tmp/mlp.safetensors"

# A small grid: two float models (one trained, one imported), eight cells.
cat > "$tmp/spec.yaml" <<'SPEC'
name: slurm-test
dataset: fashion-mnist
seeds: [0]
models:
  - {model: cnn, epochs: 2, train_limit: 4000}
  - {model: mlp, weights: mlp.safetensors}
methods:
  - {method: int8}
  - method: djq
    grid: {weight_bits: [8, 4]}
    activation_bits: 8
  - {method: linear, bits: 4}
hardware: {enabled: false}
quick: {epochs: 1, train_limit: 3000}
SPEC
results="$tmp/results-slurm"
wait_queue_empty() {
  for _ in $(seq 1800); do
    [ -z "$(squeue -h -o %i)" ] && return 0
    sleep 1
  done
  fail "jobs still queued after 30 min"
}

echo "== submit"
"$QBENCH" run "$tmp/spec.yaml" --quick --backend slurm --results "$results" --cpus-per-task 1
run="$(ls "$results/runs")"
run_dir="$results/runs/$run"
cells_job="$(jq -r '.submissions[0].cells.job_id' "$run_dir/slurm/jobs.json")"
float_job="$(jq -r '.submissions[0].float.job_id' "$run_dir/slurm/jobs.json")"
echo "run $run: float job $float_job, cell job $cells_job"

# Kill one cell task once it has started its cell.
victim=""
for _ in $(seq 1200); do
  for task in $(squeue -h -r -j "$cells_job" -t RUNNING -o %i); do
    if grep -q "start cell" "$run_dir/slurm/logs/$task.err" 2>/dev/null; then victim="$task"; break 2; fi
  done
  sleep 0.2
done
[ -n "$victim" ] || fail "no cell task of job $cells_job started"
scancel --signal=KILL --full "$victim"
echo "killed task $victim with SIGKILL (scancel) while it ran its cell"
wait_queue_empty

echo "== status after the kill"
status="$("$QBENCH" runs status "$run" --results "$results")"
echo "$status"
victim_index="${victim#*_}"
echo "$status" | grep -qE "^ +$victim_index .*failed" || fail "runs status does not report task $victim failed"
echo "$status" | grep -q "8 cells: 7 done, 0 running, 0 pending, 1 failed" || fail "unexpected counts"

echo "== resubmit"
"$QBENCH" run "$tmp/spec.yaml" --quick --backend slurm --results "$results" --cpus-per-task 1
resubmitted="$(jq -c '.submissions[1].cells.indices' "$run_dir/slurm/jobs.json")"
[ "$resubmitted" = "[$victim_index]" ] || fail "resubmitted $resubmitted, expected [$victim_index]"
[ "$(jq -r '.submissions[1].float' "$run_dir/slurm/jobs.json")" = null ] || fail "float model resubmitted"
wait_queue_empty
status="$("$QBENCH" runs status "$run" --results "$results")"
echo "$status" | tail -n 2
echo "$status" | grep -q "8 cells: 8 done" || fail "not every cell done after the resubmission"
"$QBENCH" aggregate "$run" --results "$results" >/dev/null

echo "== the same spec locally"
local_results="$tmp/results-local"
"$QBENCH" run "$tmp/spec.yaml" --quick --results "$local_results" >/dev/null 2>&1 \
  || fail "local run failed"
local_dir="$local_results/runs/$run"
[ -d "$local_dir" ] || fail "the local run has another id than $run"
key='[.cell_id, .model, .seed, .method, .options, .float.weights_sha256, .float.test_accuracy,
      .result.graph_sha256, .result.int_accuracy, .result.fake_accuracy]'
n=0
for f in "$local_dir"/cells/*.json; do
  g="$run_dir/cells/$(basename "$f")"
  [ -f "$g" ] || fail "cell $(basename "$f" .json) has no Slurm record"
  [ "$(jq -c "$key" "$f")" = "$(jq -c "$key" "$g")" ] || fail "cell $(basename "$f" .json) differs"
  n=$((n + 1))
done
[ "$n" -eq 8 ] && [ "$(ls "$run_dir/cells" | wc -l)" -eq 8 ] || fail "expected 8 cells each, local has $n"
cmp -s "$local_dir/tables/summary.json" "$run_dir/tables/summary.json" \
  || fail "aggregate tables differ (diff $local_dir/tables/summary.json $run_dir/tables/summary.json)"
echo "PASSED: Slurm backend test: $n cells equal to a local run; killed $victim, resubmitted it alone;" \
  "$(( $(date +%s) - t0 )) s"
