#!/usr/bin/env bash
# The main job on one machine: a local agentmill cluster from scratch to a trained checkpoint.
#
#   deploy/quickstart.sh                 # everything (installs what is missing first)
#   deploy/quickstart.sh --quick         # fewer rollouts and a shorter idle wait (the test suite's run)
#
# It sets up what is missing (deploy/setup.sh), builds the binaries, and starts, as separate
# processes: redis-server, agentmill-coordinator, one agentmill-worker and agentmill-learner
# (on the GPU when libtorch finds one, else the CPU). It submits the bundled tasks
# (deploy/tasks/tasks.jsonl) with the replay policy and several rollouts each, and a
# contextual-synthesis job over a git history it generates from the bundled projects (an import
# commit per project, then the fix of its issue); shows progress; and ends with a summary:
# tasks by resolution, trajectories by kind, tokens trained, loss first -> last, throughput. The
# learner's last checkpoint is then loaded with Hugging Face transformers.
#
# Everything it starts is stopped at the end, on Ctrl-C and on failure: processes, the worker's
# containers, the ports. The run's files stay in the run directory (logs/, learner/ with
# checkpoints, summary.json, report.txt).
#
# Options:
#   --quick             2 rollouts per task, the learner stops after 8 s without records
#   --rollouts N        rollouts per task (default 3)
#   --profile P         cargo profile of the binaries: dev (default: the profile the tests build,
#                       a few minutes on a fresh machine) or release (a longer first build)
#   --run-dir DIR       where the run's files go (default runs/quickstart-<time>)
#   --sandbox S         docker, process or auto (default auto: Docker when an engine answers)
#   --no-setup          skip deploy/setup.sh (it is idempotent; this only saves its checks)
#   --timeout D         give up when the tasks are not finished after D (default 10m)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROLLOUTS=3
IDLE=20
PROFILE=dev
RUN_DIR=""
SANDBOX=auto
SETUP=1
TIMEOUT=10m

if [ -t 1 ]; then
  say() { printf '\033[1mquickstart\033[0m %s\n' "$*"; }
else
  say() { printf 'quickstart: %s\n' "$*"; }
fi
die() { printf 'quickstart: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ROLLOUTS=2; IDLE=8 ;;
    --rollouts) ROLLOUTS="${2:?--rollouts needs a number}"; shift ;;
    --profile) PROFILE="${2:?--profile needs release or dev}"; shift ;;
    --run-dir) RUN_DIR="${2:?--run-dir needs a directory}"; shift ;;
    --sandbox) SANDBOX="${2:?--sandbox needs docker, process or auto}"; shift ;;
    --no-setup) SETUP=0 ;;
    --timeout) TIMEOUT="${2:?--timeout needs a duration such as 10m}"; shift ;;
    -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
[[ "$ROLLOUTS" =~ ^[1-9][0-9]*$ ]] || die "--rollouts $ROLLOUTS: give a positive number"
case "$PROFILE" in release) BIN="$ROOT/target/release" ;; dev) BIN="$ROOT/target/debug" ;; *) die "--profile $PROFILE: use release or dev" ;; esac
case "$SANDBOX" in docker|process|auto) ;; *) die "--sandbox $SANDBOX: use docker, process or auto" ;; esac

STARTED=$(date +%s)

# --- 1. prerequisites and binaries ------------------------------------------------------------
if [ "$SETUP" = 1 ]; then
  say "setting up (deploy/setup.sh: skips what is already there)"
  deploy/setup.sh | sed 's/^/  /'
fi
say "building the binaries (cargo, profile $PROFILE)"
cargo build --profile "$PROFILE" -p agentmill-coordinator -p agentmill-cli -p agentmill-worker -p agentmill-learner --bins
for b in agentmill agentmill-coordinator agentmill-worker agentmill-learner; do
  [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
done
PYTHON="$ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || die ".venv is missing: run deploy/setup.sh"

RUN="${RUN_DIR:-$ROOT/runs/quickstart-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RUN/logs" "$RUN/redis"
RUN="$(cd "$RUN" && pwd)"
LOGS="$RUN/logs"
WORKER_ID="quickstart-$(hostname -s 2>/dev/null || echo host)-$$"

# --- 2. stopping everything, whatever happens --------------------------------------------------
declare -A PIDS=()
stop() { # name signal seconds: signal, wait up to seconds, then SIGKILL
  local name=$1 sig=$2 secs=$3 pid=${PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
  fi
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  stop worker TERM 20       # drains: running episodes are handed back, containers removed
  stop learner TERM 30      # checkpoints first
  stop coordinator TERM 10
  stop redis TERM 10
  if command -v docker >/dev/null 2>&1; then
    local left
    left=$(docker ps -aq --filter "label=org.agentmill.worker=$WORKER_ID" 2>/dev/null || true)
    if [ -n "$left" ]; then
      say "removing containers the worker left: $(echo "$left" | wc -l)"
      docker rm -f $left >/dev/null 2>&1 || true
    fi
  fi
  if [ "$code" != 0 ]; then
    say "stopped (exit $code); logs in $LOGS"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'say "interrupted: stopping everything"; exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 200); do
    # Below the kernel's ephemeral range (32768 and up by default), so no outgoing connection
    # takes the port between this check and the service's bind.
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free TCP port found"
}
wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up within ${secs}s (log: $LOGS)"
}
alive() {
  kill -0 "${PIDS[$1]}" 2>/dev/null && return 0
  tail -n 20 "$LOGS/$1.log" >&2 || true
  die "$1 exited early; its log: $LOGS/$1.log"
}

REDIS_PORT=$(free_port); GRPC_PORT=$(free_port); COORD_METRICS=$(free_port)
WORKER_METRICS=$(free_port); LEARNER_METRICS=$(free_port)
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
ADDR="http://127.0.0.1:$GRPC_PORT"
export AGENTMILL_ADDR="$ADDR"
AGENTMILL="$BIN/agentmill"

# --- 3. the cluster ---------------------------------------------------------------------------
say "run directory $RUN"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" --appendonly yes --save "" \
  --logfile "$LOGS/redis.log" >/dev/null 2>&1 &
PIDS[redis]=$!
wait_for "redis-server" 20 redis-cli -p "$REDIS_PORT" ping

"$BIN/agentmill-coordinator" --listen "127.0.0.1:$GRPC_PORT" --metrics-listen "127.0.0.1:$COORD_METRICS" \
  --redis-url "$REDIS_URL" >"$LOGS/coordinator.log" 2>&1 &
PIDS[coordinator]=$!
wait_for "the coordinator" 30 "$AGENTMILL" stats

AGENTMILL_SANDBOX="$SANDBOX" AGENTMILL_METRICS_LISTEN="127.0.0.1:$WORKER_METRICS" AGENTMILL_DRAIN_GRACE=10s \
  "$BIN/agentmill-worker" --coordinator "$ADDR" --redis-url "$REDIS_URL" --worker-id "$WORKER_ID" \
  --label quickstart=yes >"$LOGS/worker.log" 2>&1 &
PIDS[worker]=$!

# The learner trains as records arrive: a tokenizer on the first records, then steps; it stops
# once the stream has been quiet for IDLE seconds after the last record, with a final checkpoint.
# It holds out about 30% of the tasks (every rollout of each) and of the pull requests, never
# trains on them, and measures its loss on them every 10 steps.
# Its idle clock would run from its start, so it starts once the first record is in the stream: a
# slow first episode (seen: over 8 s on a loaded machine) must not end it before it has begun. The
# subshell becomes the learner (exec), so its pid is the learner's.
( until [ "$(redis-cli -p "$REDIS_PORT" XLEN agentmill:trajectories 2>/dev/null)" -gt 0 ] 2>/dev/null; do sleep 0.2; done
  AGENTMILL_LEARNER_TOKENIZER_BOOTSTRAP_RECORDS=8 AGENTMILL_LEARNER_TOKENIZER_VOCAB=4096 \
  AGENTMILL_LEARNER_EVAL_FRACTION=0.3 AGENTMILL_LEARNER_EVAL_EVERY=10 \
  exec "$BIN/agentmill-learner" train --redis-url "$REDIS_URL" --output-dir "$RUN/learner" \
  --metrics-listen "127.0.0.1:$LEARNER_METRICS" --until-idle "$IDLE" --schedule-steps $((ROLLOUTS * 12 + 20)) \
  --checkpoint-every 25 --log-every 5 ) >"$LOGS/learner.log" 2>&1 &
PIDS[learner]=$!
# What this run started, for scripts and for checking that the end stopped all of it.
cat >"$RUN/cluster.env" <<EOF
REDIS_URL=$REDIS_URL
COORDINATOR=$ADDR
STATUS_PAGE=http://127.0.0.1:$COORD_METRICS/
PORTS="$REDIS_PORT $GRPC_PORT $COORD_METRICS $WORKER_METRICS $LEARNER_METRICS"
PIDS="${PIDS[*]}"
WORKER_ID=$WORKER_ID
EOF
say "redis :$REDIS_PORT  coordinator :$GRPC_PORT (status page and metrics http://127.0.0.1:$COORD_METRICS/)  worker metrics :$WORKER_METRICS  learner metrics :$LEARNER_METRICS"

# --- 4. the work ------------------------------------------------------------------------------
# A git history for contextual synthesis: one import commit per bundled project, then a commit
# with its fix (code and tests) whose message is the issue's title and text.
HISTORY="$RUN/history"
make_history() {
  export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 TZ=UTC
  export GIT_AUTHOR_NAME="agentmill" GIT_AUTHOR_EMAIL="quickstart@agentmill.invalid"
  export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
  git init -q -b main "$HISTORY"
  local n=0 dir id project title body
  for dir in deploy/tasks/src/*/; do
    id=$(basename "$dir"); project=${id#agentmill__}; project=${project%-*}
    n=$((n + 1))
    export GIT_AUTHOR_DATE="2024-01-$(printf %02d "$n")T10:00:00Z" GIT_COMMITTER_DATE="2024-01-$(printf %02d "$n")T10:00:00Z"
    cp -r "$dir/repo" "$HISTORY/$project"
    git -C "$HISTORY" add -A && git -C "$HISTORY" commit -q -m "$project: import the project"
    git -C "$HISTORY" apply --directory="$project" "$ROOT/$dir/gold.patch" "$ROOT/$dir/test.patch"
    # The issue text from task.json (one JSON string on one line): its first line is the title.
    body=$(sed -n 's/^  "problem_statement": "\(.*\)",$/\1/p' "$dir/task.json" | sed 's/\\"/"/g')
    title=$(printf '%s' "${body%%\\n*}" | tr -d '`')
    export GIT_AUTHOR_DATE="2024-01-$(printf %02d "$n")T16:00:00Z" GIT_COMMITTER_DATE="2024-01-$(printf %02d "$n")T16:00:00Z"
    git -C "$HISTORY" add -A && git -C "$HISTORY" commit -q -m "$project: $title" -m "$(printf '%b' "$body")"
  done
}
( make_history )
say "generated a git history of $(git -C "$HISTORY" rev-list --count HEAD) commits for synthesis"

alive worker
say "submitting the bundled tasks: replay policy, $ROLLOUTS rollouts each"
"$AGENTMILL" submit --rollouts "$ROLLOUTS" --policy replay deploy/tasks/tasks.jsonl
"$AGENTMILL" synth --git "$HISTORY" --single-commits --repo agentmill/bundled-projects

say "running (Ctrl-C stops everything; live view: $AGENTMILL top --addr $ADDR)"
"$AGENTMILL" wait --timeout "$TIMEOUT"
alive worker

say "episodes done; the learner trains what arrived and stops after ${IDLE}s without new records"
learner_code=0
wait "${PIDS[learner]}" || learner_code=$?
unset "PIDS[learner]"
[ "$learner_code" = 0 ] || die "the learner failed (exit $learner_code); its log: $LOGS/learner.log"
grep -h "stopped (" "$LOGS/learner.log" | tail -1 | sed 's/^.*stopped (/  learner stopped (/' || true

# --- 5. the summary ----------------------------------------------------------------------------
"$AGENTMILL" report --learner "$RUN/learner" | tee "$RUN/report.txt"
"$AGENTMILL" --json report --learner "$RUN/learner" >"$RUN/summary.json"

CHECKPOINT=$(ls -d "$RUN"/learner/checkpoints/step-* 2>/dev/null | sort | tail -1)
[ -n "$CHECKPOINT" ] || die "the learner left no checkpoint in $RUN/learner/checkpoints"
if "$PYTHON" deploy/examples/load_checkpoint.py "$CHECKPOINT" >"$RUN/transformers_check.json" 2>"$LOGS/transformers_check.log"; then
  printf 'transformers loads %s: %s\n' "${CHECKPOINT#"$RUN"/}" "$(cat "$RUN/transformers_check.json")" | tee -a "$RUN/report.txt"
else
  die "transformers could not load $CHECKPOINT (see $LOGS/transformers_check.log)"
fi
say "done in $(( $(date +%s) - STARTED )) s; files in $RUN"
