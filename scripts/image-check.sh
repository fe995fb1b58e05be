#!/usr/bin/env bash
# `make image-check`: the production image and the compose file, run for real (not in `make test`:
# it builds an image and starts containers, a few minutes).
#
# 1. Builds deploy/Dockerfile, then on a network of its own runs PostgreSQL (postgres:16-bookworm),
#    the migrations, the web app (the image's default command, gunicorn) and a worker; creates a
#    clinic and an API key with the `aftercare` command as an operator would; checks /readyz (200
#    once the worker beats), an enrolment through the API (201) and its first text on the console
#    channel (the worker's output), and that the processes run unprivileged.
# 2. Brings up deploy/compose.yaml with its PostgreSQL service, from a copy of the build context with
#    a .env made from deploy/aftercare.env.example (a real deploy/.env is never read or touched),
#    the app image tagged aftercare:check instead of aftercare:latest; checks /readyz on the
#    published 127.0.0.1:8000, both worker replicas alive, an enrolment and its first text, then
#    `down -v`.
# Everything it starts is removed at the end, also on failure (KEEP=1 leaves it for a look).
#
# Settings (environment), for hosts where the defaults are not enough:
#   CONTAINER_ENGINE      docker or podman; default: docker when its engine answers, else podman
#   CONTAINER_ARGS        global arguments for the engine, e.g. "--runtime /usr/sbin/runc"
#   CONTAINER_BUILD_ARGS  extra arguments for its build, e.g. "--pull=never --network host"
#   COMPOSE               the compose command; default: "docker compose" with Docker, podman-compose
#                         (on PATH, or the dev dependency in .venv) with Podman
#   CONTAINERS_CONF       Podman's own configuration file, honoured as usual
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'image-check: FAILED: %s\n' "$*" >&2; exit 1; }
command -v curl >/dev/null || fail "curl is needed on the host"

if [ -z "${CONTAINER_ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then CONTAINER_ENGINE=docker
  elif command -v podman >/dev/null; then CONTAINER_ENGINE=podman
  else fail "no container engine: neither a Docker engine that answers nor Podman"; fi
fi
read -r -a engine_args <<< "${CONTAINER_ARGS:-}"
read -r -a build_args <<< "${CONTAINER_BUILD_ARGS:-}"
E=("$CONTAINER_ENGINE" "${engine_args[@]}")
if [ -n "${COMPOSE:-}" ]; then
  read -r -a C <<< "$COMPOSE"
elif [ "$CONTAINER_ENGINE" = docker ]; then
  C=(docker compose)
else
  pc=$(command -v podman-compose || echo "$PWD/.venv/bin/podman-compose")
  [ -x "$pc" ] || fail "podman-compose not found (it is a dev dependency: make test installs it)"
  C=("$pc" --podman-args="${CONTAINER_ARGS:-}" --podman-build-args="${CONTAINER_BUILD_ARGS:-}")
fi

IMAGE=aftercare:check
run=aftercare-check-$$
net=$run db=$run-db web=$run-web worker=$run-worker
work=$(mktemp -d)
standalone_up="" compose_up=""
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then  # what the app said, for the failure above
    [ -z "$standalone_up" ] || for name in "$web" "$worker"; do
      "${E[@]}" logs --tail 20 "$name" 2>&1 | sed "s/^/$name: /" || true
    done
    [ -z "$compose_up" ] || (cd "$work/ctx/deploy" && "${CC[@]}" logs 2>&1 | tail -n 40) || true
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "KEEP=1: left running ($run, compose project $run; files in $work)"; return; fi
  if [ -n "$compose_up" ]; then (cd "$work/ctx/deploy" && "${CC[@]}" down -v >/dev/null 2>&1) || true; fi
  for name in "$worker" "$web" "$db"; do "${E[@]}" rm -f "$name" >/dev/null 2>&1 || true; done
  "${E[@]}" network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
  [ "$status" = 0 ] && echo "image-check: OK" || true
}
trap cleanup EXIT

# The settings as an operator writes them: the example file, filled in. No Twilio or SMTP
# settings, so texts and emails go to the console channel (the worker's output).
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
env_file() {  # env_file PATH DATABASE_URL
  grep -vE '^(DATABASE_URL|POSTGRES_PASSWORD|SECRET_KEY|PUBLIC_BASE_URL|TWILIO_[A-Z_]+|SMTP_HOST)=' \
    deploy/aftercare.env.example > "$1"
  printf '%s\n' "DATABASE_URL=$2" "POSTGRES_PASSWORD=$pg_password" "SECRET_KEY=$(secret)" \
    "PUBLIC_BASE_URL=http://127.0.0.1:8000" >> "$1"
}
pg_password=$(secret)

wait_for() {  # wait_for SECONDS COMMAND...: until the command succeeds; 1 when time is up
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}
logged() {  # logged NAME COMMAND...: its output in $work/NAME.log, shown whole if it fails
  "${@:2}" > "$work/$1.log" 2>&1 || { cat "$work/$1.log"; fail "$1"; }
}
ready() { [ "$(curl -s -o "$work/readyz" -w '%{http_code}' "$1/readyz")" = 200 ]; }

# A client zone where it is daytime now, so quiet hours (21:00-08:00 client-local) hold nothing.
daytime_zone() {
  "${E[@]}" run --rm "$IMAGE" python -c '
from datetime import datetime
from zoneinfo import ZoneInfo
zones = ["Pacific/Auckland", "Asia/Tokyo", "Asia/Kolkata", "Europe/London", "America/New_York",
         "America/Los_Angeles", "Pacific/Honolulu"]
print(next(z for z in zones if 9 <= datetime.now(ZoneInfo(z)).hour < 20))'
}

enrol() {  # enrol BASE_URL API_KEY EXTERNAL_ID: one visit through the API, 201
  local body status
  body=$(printf '{"external_id": "%s", "channels": ["sms"], "pain_before": 6, "pain_after": 3,
    "client": {"name": "Sam Lee", "phone": "+12025550142", "sms_consent": true, "time_zone": "%s"}}' \
    "$3" "$zone")
  status=$(curl -s -o "$work/enrol.json" -w '%{http_code}' -X POST "$1/api/v1/visits" \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$body")
  [ "$status" = 201 ] || fail "enrolment answered $status: $(cat "$work/enrol.json")"
  echo "POST /api/v1/visits -> 201 (client time zone $zone)"
}

text_in() {  # text_in LOG_COMMAND...: the enrolment's first text (the 24-hour window), as the
  # console channel printed it in those logs
  local logs
  logs=$("$@" 2>&1) || return 1
  sed 's/\x1b\[[0-9;]*m//g' <<< "$logs" | grep -m1 -A3 '===== SMS (console, not sent) to +12025550142' \
    | grep -C3 'no exercise'
}

say "engine: ${E[*]}; compose: ${C[*]}"
"${E[@]}" version --format '{{.Client.Version}}' 2>/dev/null || true

say "build deploy/Dockerfile as $IMAGE"
"${E[@]}" build "${build_args[@]}" -f deploy/Dockerfile -t "$IMAGE" .
zone=$(daytime_zone)

say "PostgreSQL, migrations, web and worker from the image"
"${E[@]}" network create "$net" >/dev/null
standalone_up=1
# LANG: initdb takes the database's encoding from the locale. The official image's is UTF-8
# already; a base image without one would make it SQL_ASCII, which the app cannot read (its
# first connection fails with "cannot use a string pattern on a bytes-like object").
"${E[@]}" run -d --name "$db" --network "$net" -e LANG=C.UTF-8 -e POSTGRES_USER=aftercare \
  -e POSTGRES_PASSWORD="$pg_password" -e POSTGRES_DB=aftercare postgres:16-bookworm >/dev/null
wait_for 60 "${E[@]}" exec "$db" pg_isready -h 127.0.0.1 -U aftercare -d aftercare \
  || fail "PostgreSQL did not start: $("${E[@]}" logs "$db" 2>&1 | tail -n 20)"
env_file "$work/app.env" "postgresql+psycopg://aftercare:$pg_password@$db:5432/aftercare"
app=("${E[@]}" run --network "$net" --env-file "$work/app.env")
logged migrate "${app[@]}" --rm "$IMAGE" aftercare db upgrade
tail -n 1 "$work/migrate.log"
clinic=$("${app[@]}" --rm "$IMAGE" aftercare create-clinic "Image Check Clinic" --phone +12025550100 \
  --on-call-email oncall@example.com | sed -n 's/^created clinic \([0-9]*\):.*/\1/p')
[ -n "$clinic" ] || fail "create-clinic printed no id"
key=$("${app[@]}" --rm "$IMAGE" aftercare create-api-key "$clinic" | tail -n 1)
# As compose.yaml runs it: listening on the container's interface (the example file's WEB_BIND is
# for a host without containers), published on a free port of the host's loopback.
"${app[@]}" -d --name "$web" -e WEB_BIND=0.0.0.0:8000 -p 127.0.0.1::8000 "$IMAGE" >/dev/null
"${app[@]}" -d --name "$worker" "$IMAGE" aftercare worker >/dev/null
base="http://$("${E[@]}" port "$web" 8000 | head -n 1)"
wait_for 90 ready "$base" || fail "/readyz never answered 200: $(cat "$work/readyz" 2>/dev/null)"
echo "GET $base/readyz -> 200 $(cat "$work/readyz")"
[ "$("${E[@]}" exec "$web" id -u)" = 10001 ] || fail "the web process runs as root"
enrol "$base" "$key" image-check-1
wait_for 30 text_in "${E[@]}" logs "$worker" || fail "no first text in the worker's output"
text_in "${E[@]}" logs "$worker"
for name in "$worker" "$web" "$db"; do "${E[@]}" rm -f "$name" >/dev/null; done
"${E[@]}" network rm "$net" >/dev/null
standalone_up=""

say "deploy/compose.yaml with its PostgreSQL service"
# A copy of what the image is built from (the Dockerfile's sources, as .dockerignore leaves them).
mkdir "$work/ctx"
tar -c --exclude=__pycache__ --exclude=deploy/.env pyproject.toml uv.lock .dockerignore service jobs \
  templates deploy | tar -x -C "$work/ctx"
env_file "$work/ctx/deploy/.env" "postgresql+psycopg://unused@127.0.0.1/unused"  # compose sets its own
printf 'services:\n  db: {environment: {LANG: C.UTF-8}}  # as above\n' > "$work/ctx/deploy/compose.check.yaml"
printf '  %s: {image: "%s"}\n' migrate "$IMAGE" web "$IMAGE" worker "$IMAGE" >> "$work/ctx/deploy/compose.check.yaml"
cd "$work/ctx/deploy"
CC=("${C[@]}" -p "$run" -f compose.yaml -f compose.check.yaml)
compose_up=1
if [ "$CONTAINER_ENGINE" = docker ]; then
  logged compose-up "${CC[@]}" up -d --build  # compose keeps the order of depends_on itself
else
  # podman-compose leaves depends_on's conditions to Podman, whose health checks run from systemd
  # timers (none in many containers and CI machines) and whose --requires chains of three fail
  # on Podman 4.3: so the order is kept here, as compose.yaml's conditions say.
  logged compose-build "${CC[@]}" build
  logged compose-db "${CC[@]}" up -d --no-deps db
  wait_for 60 "${E[@]}" healthcheck run "${run}_db_1" || fail "db never passed its health check"
  logged compose-migrate "${CC[@]}" up -d --no-deps migrate
  [ "$("${E[@]}" wait "${run}_migrate_1")" = 0 ] || fail "migrate: $("${E[@]}" logs "${run}_migrate_1" 2>&1)"
  logged compose-up "${CC[@]}" up -d --no-deps web worker
fi
"${E[@]}" ps --filter "label=com.docker.compose.project=$run" --format '{{.Names}}: {{.Status}}'
base=http://127.0.0.1:8000
wait_for 180 ready "$base" || fail "/readyz on the published port never answered 200: $(cat "$work/readyz" 2>/dev/null)"
echo "GET $base/readyz -> 200 $(cat "$work/readyz")"
workers_alive() { curl -s "$base/metrics" | sed -n 's/^aftercare_workers_alive \([0-9]*\).*/\1/p'; }
two_alive() { [ "$(workers_alive)" = 2 ]; }
wait_for 30 two_alive || fail "expected the 2 worker replicas alive, /metrics says $(workers_alive)"
echo "aftercare_workers_alive $(workers_alive)"
clinic=$("${CC[@]}" exec -T web aftercare create-clinic "Compose Check Clinic" \
  --phone +12025550100 --on-call-email oncall@example.com | sed -n 's/^created clinic \([0-9]*\):.*/\1/p')
[ -n "$clinic" ] || fail "create-clinic printed no id"
key=$("${CC[@]}" exec -T web aftercare create-api-key "$clinic" | tail -n 1)
enrol "$base" "$key" compose-check-1
wait_for 30 text_in "${CC[@]}" logs worker || fail "no first text in the workers' output"
text_in "${CC[@]}" logs worker
