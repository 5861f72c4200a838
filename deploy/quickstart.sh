#!/usr/bin/env bash
# The main job on one machine: a local agentmill cluster from scratch to a trained checkpoint.
#
#   deploy/quickstart.sh                 # everything (installs what is missing first)
#   deploy/quickstart.sh --quick         # fewer rollouts and a shorter idle wait (the test suite's run)
#   deploy/quickstart.sh --closed-loop   # then a second round driven by the checkpoint it trained
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
# With --closed-loop, a second round follows: the newest checkpoint is exported to GGUF
# (agentmill-learner export-gguf) and served by llama.cpp's server (llama-cpp-python, installed by
# deploy/setup.sh) on a free loopback port; the worker restarts with the `openai` policy against
# it (grammar-constrained xml tool calls, weight_version = the checkpoint's step) and the
# bundled tasks run again under new ids (<id>-r2, label round=2; round 1 has round=1). The
# learner resumes from its checkpoint and trains round 2 too, failed episodes as env_fail. The
# report then shows both rounds side by side (agentmill report --compare round).
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
#   --closed-loop       a second round with the openai policy against the trained checkpoint
#   --round2-steps N    agent steps per round-2 episode (default 10; 4 with --quick)
#
# The binaries are looked for under $CARGO_TARGET_DIR when it is set, else target/.
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
CLOSED_LOOP=0
ROUND2_STEPS=""

if [ -t 1 ]; then
  say() { printf '\033[1mquickstart\033[0m %s\n' "$*"; }
else
  say() { printf 'quickstart: %s\n' "$*"; }
fi
die() { printf 'quickstart: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ROLLOUTS=2; IDLE=8; ROUND2_STEPS="${ROUND2_STEPS:-4}" ;;
    --closed-loop) CLOSED_LOOP=1 ;;
    --round2-steps) ROUND2_STEPS="${2:?--round2-steps needs a number}"; shift ;;
    --rollouts) ROLLOUTS="${2:?--rollouts needs a number}"; shift ;;
    --profile) PROFILE="${2:?--profile needs release or dev}"; shift ;;
    --run-dir) RUN_DIR="${2:?--run-dir needs a directory}"; shift ;;
    --sandbox) SANDBOX="${2:?--sandbox needs docker, process or auto}"; shift ;;
    --no-setup) SETUP=0 ;;
    --timeout) TIMEOUT="${2:?--timeout needs a duration such as 10m}"; shift ;;
    -h|--help) sed -n '2,41p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
[[ "$ROLLOUTS" =~ ^[1-9][0-9]*$ ]] || die "--rollouts $ROLLOUTS: give a positive number"
ROUND2_STEPS="${ROUND2_STEPS:-10}"
[[ "$ROUND2_STEPS" =~ ^[1-9][0-9]*$ ]] || die "--round2-steps $ROUND2_STEPS: give a positive number"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$PROFILE" in release) BIN="$TARGET_DIR/release" ;; dev) BIN="$TARGET_DIR/debug" ;; *) die "--profile $PROFILE: use release or dev" ;; esac
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
# llama.cpp's server for --closed-loop (deploy/setup.sh installs it with the version it names).
LLAMA_PYTHON=$(ls -d "$ROOT"/.venv/llama-cpp-*/bin/python 2>/dev/null | sort | tail -1 || true)
if [ "$CLOSED_LOOP" = 1 ]; then
  [ -n "$LLAMA_PYTHON" ] && [ -x "$LLAMA_PYTHON" ] || die "--closed-loop needs llama-cpp-python's server in .venv/llama-cpp-<version>: run deploy/setup.sh"
fi

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
  stop llama TERM 10        # the model server of --closed-loop
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
"$AGENTMILL" submit --rollouts "$ROLLOUTS" --policy replay --label round=1 deploy/tasks/tasks.jsonl
"$AGENTMILL" synth --git "$HISTORY" --single-commits --repo agentmill/bundled-projects

say "running (Ctrl-C stops everything; live view: $AGENTMILL top --addr $ADDR)"
"$AGENTMILL" wait --timeout "$TIMEOUT"
ROUND1_DONE=$(date +%s)
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
# --- 6. the closed loop: round 2, driven by the checkpoint round 1 trained -----------------------
if [ "$CLOSED_LOOP" = 1 ]; then
  STEP=$(basename "$CHECKPOINT")     # step-NNNNNNNN: the weight version the records name
  MODEL_NAME=agentmill-quickstart
  N_CTX=4096
  mkdir -p "$RUN/round2"
  cp "$RUN/learner/summary.json" "$RUN/round1-learner-summary.json"
  say "closed loop: exporting ${CHECKPOINT#"$RUN"/} to GGUF and serving it with llama.cpp's server"
  "$BIN/agentmill-learner" export-gguf "$CHECKPOINT" "$RUN/round2/$STEP.gguf" >"$LOGS/export-gguf.log" 2>&1 \
    || { tail -n 20 "$LOGS/export-gguf.log" >&2; die "export-gguf failed; its log: $LOGS/export-gguf.log"; }
  LLAMA_PORT=$(free_port)
  "$LLAMA_PYTHON" -m llama_cpp.server --host 127.0.0.1 --port "$LLAMA_PORT" --model "$RUN/round2/$STEP.gguf" \
    --model_alias "$MODEL_NAME" --n_ctx "$N_CTX" >"$LOGS/llama.log" 2>&1 &
  PIDS[llama]=$!
  for _ in $(seq 600); do
    alive llama
    curl -sf "http://127.0.0.1:$LLAMA_PORT/v1/models" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf "http://127.0.0.1:$LLAMA_PORT/v1/models" >/dev/null 2>&1 || die "llama.cpp's server did not answer within 120 s (log: $LOGS/llama.log)"

  # The worker again, now with the openai policy against that server: tool calls constrained
  # by a grammar (xml), log-probabilities and usage per turn, the checkpoint's step recorded.
  cat >"$RUN/round2/worker.toml" <<EOF
[agent]
context_tokens = $N_CTX
step_timeout_s = 60   # a sampled command that hangs (sleep, a read) costs a minute, not three

[policy]
default = "replay"

[policy.endpoints.local]
base_url = "http://127.0.0.1:$LLAMA_PORT/v1"
model = "$MODEL_NAME"
api_key_env = ""
temperature = 1.0
max_tokens = 512
logprobs = true
tool_call_format = "xml"
grammar_max_value_chars = 400
weight_version = "$STEP"
EOF
  stop worker TERM 20
  AGENTMILL_SANDBOX="$SANDBOX" AGENTMILL_METRICS_LISTEN="127.0.0.1:$WORKER_METRICS" AGENTMILL_DRAIN_GRACE=10s \
    "$BIN/agentmill-worker" --config "$RUN/round2/worker.toml" --coordinator "$ADDR" --redis-url "$REDIS_URL" \
    --worker-id "$WORKER_ID" --label quickstart=yes >>"$LOGS/worker.log" 2>&1 &
  PIDS[worker]=$!
  cat >>"$RUN/cluster.env" <<EOF
PORTS="$REDIS_PORT $GRPC_PORT $COORD_METRICS $WORKER_METRICS $LEARNER_METRICS $LLAMA_PORT"
PIDS="${PIDS[*]}"
LLAMA_PID=${PIDS[llama]}
LLAMA_URL=http://127.0.0.1:$LLAMA_PORT/v1
EOF

  # The bundled tasks again under new ids (ids are idempotent): <id>-r2, label round=2, at most
  # ROUND2_STEPS agent steps each; archives named from here, as the file moved.
  sed -e 's/"instance_id": "\([^"]*\)"/"instance_id": "\1-r2"/' \
      -e "s|\"archive\": \"|\"archive\": \"$ROOT/deploy/tasks/|" \
      -e "s/^{/{\"limits\": {\"max_steps\": $ROUND2_STEPS}, /" deploy/tasks/tasks.jsonl >"$RUN/round2/tasks.jsonl"
  alive worker
  say "round 2: the bundled tasks with the openai policy on $STEP, $ROLLOUTS rollouts each, at most $ROUND2_STEPS steps"
  ROUND2_START=$(date +%s)
  "$AGENTMILL" submit --rollouts "$ROLLOUTS" --policy local --label round=2 "$RUN/round2/tasks.jsonl"
  "$AGENTMILL" wait --label round=2 --timeout "$TIMEOUT"
  alive worker
  alive llama

  # The learner resumes from its last checkpoint and trains round 2's records (failed episodes
  # as env_fail), stopping IDLE seconds after the last one. The server served that checkpoint's
  # tokenizer, so each turn trains the tokens the model sampled (assistant_tokens = "recorded";
  # llama.cpp names them by text, and the learner maps each text to its id).
  say "round 2 done in $(( $(date +%s) - ROUND2_START )) s; the learner trains it"
  AGENTMILL_LEARNER_TOKENIZER_BOOTSTRAP_RECORDS=8 AGENTMILL_LEARNER_TOKENIZER_VOCAB=4096 \
  AGENTMILL_LEARNER_ASSISTANT_TOKENS=recorded AGENTMILL_LEARNER_TOKENIZER="$CHECKPOINT/tokenizer.json" \
  AGENTMILL_LEARNER_EVAL_FRACTION=0.3 AGENTMILL_LEARNER_EVAL_EVERY=10 \
    "$BIN/agentmill-learner" train --redis-url "$REDIS_URL" --output-dir "$RUN/learner" \
    --metrics-listen "127.0.0.1:$LEARNER_METRICS" --until-idle "$IDLE" --schedule-steps $((ROLLOUTS * 12 + 20)) \
    --checkpoint-every 25 --log-every 5 >>"$LOGS/learner.log" 2>&1 &
  PIDS[learner]=$!
  learner_code=0
  wait "${PIDS[learner]}" || learner_code=$?
  unset "PIDS[learner]"
  [ "$learner_code" = 0 ] || die "the learner failed on round 2 (exit $learner_code); its log: $LOGS/learner.log"
  grep -h "stopped (" "$LOGS/learner.log" | tail -1 | sed 's/^.*stopped (/  learner stopped (/' || true

  { echo; echo "both rounds (round 1: replay; round 2: the openai policy on $STEP through llama.cpp's server):"
    "$AGENTMILL" report --compare round --learner "$RUN/learner"; } | tee -a "$RUN/report.txt"
  "$AGENTMILL" --json report --compare round --learner "$RUN/learner" >"$RUN/rounds.json"
fi
say "done in $(( $(date +%s) - STARTED )) s; files in $RUN"
