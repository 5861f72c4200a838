#!/usr/bin/env bash
# The test suite, from a fresh clone: installs what is missing (deploy/setup.sh), starts a
# private redis-server on a free port, checks the bundled corpora (deploy/tasks, deploy/multilingual)
# are in sync with their sources,
# runs clippy (a full run only), and runs every crate's tests against the real services. Whatever it started is stopped on exit,
# also on failure or Ctrl-C.
#
#   deploy/test.sh                 # everything
#   deploy/test.sh -p agentmill-proto   # extra arguments go to `cargo test`
#   AGENTMILL_NO_DOCKER=1 deploy/test.sh   # a run that declares it has no Docker engine
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$(date +%s)

"$ROOT/deploy/setup.sh"

work="$(mktemp -d)"
redis_pid=""
cleanup() {
  status=$?
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  echo "test: finished in $(( $(date +%s) - started ))s (exit $status)"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 1 50); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$port" ping >/dev/null || { cat "$work/redis.log" >&2; echo "test: redis-server did not start" >&2; exit 1; }
export AGENTMILL_TEST_REDIS_URL="redis://127.0.0.1:$port/"
echo "test: redis-server on 127.0.0.1:$port"

deploy/tasks/build.sh --check
deploy/multilingual/build.sh --check

# Lints (the workspace's [lints] plus clippy's defaults), on the whole suite only: a warning fails
# the run, so main stays clean for the next reader.
if [ "$#" -eq 0 ]; then
  cargo clippy --version >/dev/null 2>&1 || { echo "test: cargo clippy is missing; install it with: rustup component add clippy" >&2; exit 1; }
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  echo "test: clippy clean"
fi

# The cross-process tests run the real binaries: build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
