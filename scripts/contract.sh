#!/usr/bin/env bash
# The API contract gate (DESIGN.md principle 9: every response matches the schema).
#
# Starts a live server (gunicorn, test settings, DEBUG off) on a FRESH PostgreSQL database and its own Redis
# database, with a moto server as the cloud; seeds it (manage.py load_templates + contract_seed); then runs
# schemathesis over every operation of /api/v1/schema/ with a bearer token and these checks:
#   not_a_server_error           no 5xx
#   status_code_conformance      every status an operation answers is listed in the schema
#   response_schema_conformance  every body matches its schema (the error envelope included)
#   content_type_conformance     every response has the content type the schema lists
#   negative_data_rejection      no invalid request is accepted
# Any failure fails the script (and CI). Run it alone: bash scripts/contract.sh
#
# Settings (environment):
#   CARREL_CONTRACT_DATABASE   database name on the local PostgreSQL (default carrel_contract; dropped and made anew)
#   CARREL_CONTRACT_REDIS_URL  default redis://127.0.0.1:6379/14 (flushed)
#   CARREL_CONTRACT_MAX_EXAMPLES  examples per operation and phase (default 15)
#   CARREL_CONTRACT_SEED       schemathesis's random seed (default fixed, so CI runs are repeatable)
#   CARREL_CONTRACT_REPORT     folder for the JUnit reports and server logs (default var/contract)
#   CARREL_CONTRACT_SERVE=1    seed and start the server, print its address and token, and wait (Ctrl-C ends
#                              it): to reproduce a failure with the curl schemathesis printed
# Arguments are passed to schemathesis, and then only the main run is made, e.g. to look at one operation:
#   bash scripts/contract.sh --include-path-regex '^/api/v1/jobs/'
#
# Tokens. Three schemathesis runs, so that no operation can end the token the others use (they would all
# become 401s, which conform to the schema and so would hide everything):
#   1. every operation except the three below, with the seeded owner's read + write token;
#   2. DELETE /tokens/{token_id} and POST /tokens/revoke/{digest}, with a second user's token: the seeded ids
#      they draw are that user's OTHER tokens (revoking or deleting one's own token is allowed, and schemathesis
#      cannot learn this token's id or digest in a run that has no operation listing them);
#   3. POST /tokens/purge, with a third user's token: the first purge that succeeds deletes it, and the rest of
#      the run checks the 401s that follow (purging with an e-mail and password is tried throughout).
# Nothing else is excluded. /api/v1/schema/ and /api/v1/docs/ are not operations of the schema.
source "$(dirname "$0")/_venv.sh"
set -euo pipefail

DB_NAME="${CARREL_CONTRACT_DATABASE:-carrel_contract}"
PG_HOST=127.0.0.1
export DATABASE_URL="postgres://postgres@${PG_HOST}:5432/${DB_NAME}"
export REDIS_URL="${CARREL_CONTRACT_REDIS_URL:-redis://127.0.0.1:6379/14}"
export DJANGO_SETTINGS_MODULE=platform_site.settings.test
export DJANGO_DEBUG=0
export CARREL_CACHE_PREFIX=carrel-contract
export CARREL_ACCESS_LOG=1  # Carrel's own access log (secrets redacted), in the server log
# Limits raised so that schemathesis measures the API, not the rate limiter (429s would conform and hide the rest).
export CARREL_RATE_LIMIT_TOKEN=1000000/hour CARREL_RATE_LIMIT_USER=1000000/hour CARREL_RATE_LIMIT_IP=1000000/hour
export CARREL_FAILED_AUTH_LIMIT=1000000/15min
export CARREL_INVITATIONS_PER_INVITER_PER_DAY=1000000 CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY=1000000
export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_DEFAULT_REGION=us-east-1
export CARREL_CLOUD_MAX_ATTEMPTS=2 CARREL_LAUNCH_POLL_SECONDS=10
MAX_EXAMPLES="${CARREL_CONTRACT_MAX_EXAMPLES:-15}"
SEED="${CARREL_CONTRACT_SEED:-20261123}"
REPORT="${CARREL_CONTRACT_REPORT:-$ROOT/var/contract}"
WORK="$(mktemp -d)"
export CARREL_VAR_DIR="$WORK/var"
mkdir -p "$REPORT" "$CARREL_VAR_DIR"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() {  # url, what, pid, log
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "contract: $2 exited; its log:" >&2
      tail -50 "$4" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "contract: $2 did not answer at $1" >&2
  tail -50 "$4" >&2
  return 1
}

echo "==> contract: fresh database $DB_NAME, Redis $REDIS_URL"
psql -h "$PG_HOST" -U postgres -q -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null
psql -h "$PG_HOST" -U postgres -q -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
redis-cli -u "$REDIS_URL" flushdb >/dev/null

MOTO_PORT="$(free_port)"
.venv/bin/python -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$REPORT/moto.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$MOTO_PORT/moto-api/" "the moto server" "${PIDS[-1]}" "$REPORT/moto.log"

echo "==> contract: migrate and seed"
.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py load_templates >/dev/null
.venv/bin/python manage.py contract_seed --cloud-url "http://127.0.0.1:$MOTO_PORT" --output "$WORK"
set -a
# shellcheck disable=SC1091
source "$WORK/tokens.env"
set +a
cat >>"$WORK/schemathesis.toml" <<'TOML'

# Every run starts from nothing: no state carried over from an earlier run (.schemathesis/).
[cache]
enabled = false

# Refusals by size count as refusals: 413 (body) and 414 (request line, from gunicorn) besides the defaults.
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 428, 429, "5xx"]
TOML

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
.venv/bin/gunicorn platform_site.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --timeout 60 --error-logfile "$REPORT/server.log" --capture-output >/dev/null 2>&1 &
PIDS+=($!)
wait_for "$BASE/api/v1/healthcheck" "the server" "${PIDS[-1]}" "$REPORT/server.log"
echo "==> contract: server $BASE, cloud http://127.0.0.1:$MOTO_PORT, $MAX_EXAMPLES examples, seed $SEED"
if [ "${CARREL_CONTRACT_SERVE:-}" = "1" ]; then
  echo "contract: serving; try: curl -H 'Authorization: Bearer $CONTRACT_TOKEN' $BASE/api/v1/projects"
  echo "contract: server log: $REPORT/server.log; Ctrl-C stops it"
  wait "${PIDS[-1]}"
  exit 0
fi

CHECKS=not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance
CHECKS+=,negative_data_rejection
TOKEN_OPS='^/api/v1/tokens/(purge|revoke/|\{token_id\})'

run_schemathesis() {  # name, token, filters...
  local name="$1" token="$2"
  shift 2
  echo "==> contract: schemathesis ($name)"
  .venv/bin/schemathesis --config-file "$WORK/schemathesis.toml" run "$BASE/api/v1/schema/" \
    --url "$BASE" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 30 \
    --generation-database none \
    --suppress-health-check all \
    --no-color \
    --report junit --report-junit-path "$REPORT/$name.xml" \
    "$@"
}

status=0
if [ "$#" -gt 0 ]; then
  run_schemathesis main "$CONTRACT_TOKEN" --exclude-path-regex "$TOKEN_OPS" "$@" || exit 1
  exit 0
fi
run_schemathesis main "$CONTRACT_TOKEN" --exclude-path-regex "$TOKEN_OPS" || status=1
run_schemathesis tokens "$CONTRACT_TOKENS_TOKEN" \
  --include-path-regex '^/api/v1/tokens/(revoke/|\{token_id\})' --include-method-regex '^(DELETE|POST)$' || status=1
run_schemathesis purge "$CONTRACT_PURGE_TOKEN" --include-path '/api/v1/tokens/purge' || status=1

if [ "$status" -ne 0 ]; then
  echo "contract: FAILED (reports and server log in $REPORT)" >&2
  exit 1
fi
echo "==> contract: passed"
