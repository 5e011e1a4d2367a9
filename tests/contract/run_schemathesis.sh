#!/usr/bin/env bash
# Contract fuzzing: schemathesis against the app served by gunicorn on a fresh PostgreSQL database.
#
# Makes a database with a unique name (dropped at the end, whatever happens), migrates and seeds it,
# creates an admin key for the run, serves the app on a free port and runs `schemathesis run` over
# every operation of /v1/openapi.json (reads, authenticated writes, stateful sequences through the
# OpenAPI links). Settings live in schemathesis.toml at the repository root. Exits non-zero on any
# failure; the whole step is bounded by CONTRACT_TIMEOUT seconds (300).
#
#   CONTRACT_DATABASE_SERVER  admin database to create the run's database from
#                             (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
#   CONTRACT_TIMEOUT          seconds for the whole step (default 300)
#   CONTRACT_SEED             the seed of the generated inputs: unset or empty for the pinned seed
#                             below, `random` for none (schemathesis picks one and prints it), or
#                             an integer
#   extra arguments go to `schemathesis run` after the seed, e.g. `-n 10` or `--seed 1` (which wins)
#
# Seed: pinned to 20251201 by default, so CI (.ci/run) and `make contract` make the same random
# draws on every run: a red run comes from a change in the code, not from a new draw. Every phase is
# seeded from it (examples, coverage, fuzzing, stateful); `--generation-deterministic` adds nothing,
# as an explicit seed takes precedence over it, and the example database is off in schemathesis.toml.
# What still varies: schemathesis feeds values from the API's answers (ids, slugs) back into the
# generation, and two workers share one database, so runs differ in the number of cases and in the
# stateful scenarios (`-w 1` repeated its counts exactly in two runs, its stateful phase shallower).
# The random hunt for new findings: `make contract SEED=random` (or CONTRACT_SEED=random); replay
# what it finds with `make contract SEED=<the seed its summary prints>`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z "${CONTRACT_BOUNDED:-}" ]]; then
    # timeout signals its whole process group: schemathesis and gunicorn stop, the trap below cleans up.
    CONTRACT_BOUNDED=1 exec timeout --kill-after=15 "${CONTRACT_TIMEOUT:-300}" bash "$0" "$@"
fi

PINNED_SEED=20251201  # see "Seed" above; README "Contract fuzzing" names it too
case "${CONTRACT_SEED:-}" in
    "") SEED_ARGS=(--seed "$PINNED_SEED") ;;
    random) SEED_ARGS=() ;;
    *[!0-9]*) echo "CONTRACT_SEED must be empty, 'random' or an integer, not '$CONTRACT_SEED'" >&2; exit 2 ;;
    *) SEED_ARGS=(--seed "$CONTRACT_SEED") ;;
esac

BIN=.venv/bin
SERVER_URL="${CONTRACT_DATABASE_SERVER:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
DB_NAME="tpa_contract_$(date +%s)_$$"
WORK_DIR="$(mktemp -d -t tpa-contract.XXXXXX)"
SERVER_PID=""
started=$SECONDS

database() {  # database create|drop NAME: through the admin database, as tests/databases.py does
    "$BIN/python" - "$SERVER_URL" "$1" "$2" <<'PY'
import sys
from sqlalchemy import create_engine, text
url, action, name = sys.argv[1:]
engine = create_engine(url, isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    if action == "create":
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    else:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
engine.dispose()
PY
}

cleanup() {
    local status=$?
    set +e  # clean up everything, whatever fails
    trap - EXIT INT TERM
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    database drop "$DB_NAME" || echo "could not drop database $DB_NAME" >&2
    local errors
    errors="$(grep -E '"level": "(error|critical)"|Traceback' "$WORK_DIR/server.log" 2>/dev/null | tail -40 || true)"
    if [[ $status -ne 0 && -n "$errors" ]]; then
        printf -- '-- server errors (last 40) --\n%s\n' "$errors" >&2
    fi
    rm -rf "$WORK_DIR"
    echo "contract fuzzing: $((SECONDS - started)) s, exit $status"
    exit $status
}
trap cleanup EXIT
trap 'exit 143' INT TERM

database create "$DB_NAME"
export DATABASE_URL
DATABASE_URL="$("$BIN/python" -c 'import sys; from sqlalchemy.engine import make_url
print(make_url(sys.argv[1]).set(database=sys.argv[2]).render_as_string(hide_password=False))' \
    "$SERVER_URL" "$DB_NAME")"
export TPA_LOG_REQUESTS=false TPA_RATELIMIT_ENABLED=false  # fuzzing is not abuse: no rate limits
TPA_SECRET_KEYS="$("$BIN/flask" --app api connectors new-key)"  # connectors encrypt their credentials
export TPA_SECRET_KEYS
export HYPOTHESIS_STORAGE_DIRECTORY="$WORK_DIR/hypothesis"  # nothing left in the tree

setup() {  # a setup step, its output kept in setup.log and shown only if it fails
    "$@" 2>>"$WORK_DIR/setup.log" || { cat "$WORK_DIR/setup.log" >&2; return 1; }
}
setup "$BIN/flask" --app api db upgrade >>"$WORK_DIR/setup.log"
setup "$BIN/flask" --app api seed >>"$WORK_DIR/setup.log"
CONTRACT_API_KEY="$(setup "$BIN/flask" --app api keys create --name schemathesis --role admin | tail -1)"
export CONTRACT_API_KEY  # read by schemathesis.toml ([auth.openapi.bearerAuth])

PORT="$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export TPA_PUBLIC_BASE_URL="http://127.0.0.1:$PORT"  # a server refuses to start without it
TPA_SECRET_KEY="$("$BIN/python" -c 'import secrets; print(secrets.token_hex(32))')"
export TPA_SECRET_KEY  # a server refuses to start without it (the staff console's forms)
"$BIN/gunicorn" --no-control-socket --workers 3 --bind "127.0.0.1:$PORT" --timeout 30 \
    'api:create_app()' >"$WORK_DIR/server.log" 2>&1 &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"
ready() { "$BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$BASE/health/ready" 2>/dev/null; }
for _ in $(seq 1 100); do
    ready && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK_DIR/server.log" >&2; exit 1; }
    sleep 0.2
done
ready || { echo "the app did not become ready on $BASE" >&2; cat "$WORK_DIR/server.log" >&2; exit 1; }

echo "== schemathesis against $BASE (database $DB_NAME, seed ${SEED_ARGS[1]:-random}) =="
"$BIN/schemathesis" run "$BASE/v1/openapi.json" --url "$BASE" --output-sanitize false \
    ${SEED_ARGS[@]+"${SEED_ARGS[@]}"} "$@"
