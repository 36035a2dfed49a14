#!/usr/bin/env bash
# Load test: wrk against the web server (`socialcare serve --workers 2`) on PostgreSQL with a
# million messages, as logged-in users, while `socialcare worker` ingests 100 items a second.
#
#   bench/load.sh                                  # 30 s per page after a 5 s warm-up
#   bench/load.sh --duration 60 --connections 16
#   LOAD_USERS=50 LOAD_RATE=0 bench/load.sh       # 50 agents, no worker, no ingestion
#
# Options (or environment variables):
#   --duration S     LOAD_DURATION     seconds measured per page            (30)
#   --warmup S       LOAD_WARMUP       seconds of unmeasured load before    (5)
#   --connections N  LOAD_CONNECTIONS  wrk's open connections               (8)
#   --threads N      LOAD_THREADS      wrk's threads                        (2)
#   --users N        LOAD_USERS        agents logged in, 1 to 50; each request is the next's (20)
#   --rate R         LOAD_RATE         items a second the worker ingests, 0: no worker (100)
#   --port P         LOAD_PORT         the web server's port on 127.0.0.1   (8765)
#                    LOAD_WEB_WORKERS  web server processes                 (2)
#                    LOAD_DATA_DIR     logs, research store, results        (/tmp/socialcare-load)
#                    LOAD_PG_URL       the scratch database, copied from socialcare_bench
#                    LOAD_VENV         the virtualenv to run in             (./.venv)
#
# The code measured is the checkout this script is in (PYTHONPATH points there), so a copy
# made with `git archive HEAD` measures a commit while the working tree changes.
#
# What it does: installs wrk (Debian package) if missing; seeds the PostgreSQL database
# socialcare_bench with bench/inbox.py unless it is seeded already (a few minutes the first
# time); copies it into the scratch database socialcare_load (the benchmark's own stays as it
# was); pauses its five accounts (fake credentials) and connects four offline demo accounts
# that post LOAD_RATE items a second together; starts the web server (`socialcare serve`:
# gunicorn with gthread workers; plain `gunicorn -w` where that command does not exist) and one
# `socialcare worker`, which polls the demo accounts every second through the real connector,
# ingestion and anonymization code; logs LOAD_USERS agents and a marketing user in through the
# login form (CSRF token included); then measures, one page after the other, the conversation
# list (first page), a conversation (200 random ones of the seeded data, in turn) and the
# trend report (as marketing). It prints requests/s, wrk's latency percentiles, answers other
# than 200 (a redirect to the login form counts too), the rate at which messages arrived
# meanwhile, and the CPU time per request of the web server and of its database backends (on a
# shared machine the wall times grow with the other load, CPU per request much less). Session
# cookies go to files only their owner can read, removed on exit, never to the output.
# Everything it started is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${LOAD_DURATION:-30}
WARMUP=${LOAD_WARMUP:-5}
CONNECTIONS=${LOAD_CONNECTIONS:-8}
THREADS=${LOAD_THREADS:-2}
USERS=${LOAD_USERS:-20}
RATE=${LOAD_RATE:-100}
PORT=${LOAD_PORT:-8765}
WEB_WORKERS=${LOAD_WEB_WORKERS:-2}
DATA=${LOAD_DATA_DIR:-/tmp/socialcare-load}
PG_URL=${LOAD_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/socialcare_load}
BENCH_DIR=/tmp/socialcare-bench # where bench/inbox.py keeps its encryption key
FEEDERS=4
USER_AGENT=socialcare-load/1 # must match bench/load_setup.py: sessions are bound to it

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2 ;;
    --warmup) WARMUP=$2 ;;
    --connections) CONNECTIONS=$2 ;;
    --threads) THREADS=$2 ;;
    --users) USERS=$2 ;;
    --rate) RATE=$2 ;;
    --port) PORT=$2 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "load.sh: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
    shift 2
done

say() { echo "load $(date +%T): $*" >&2; }
VENV=${LOAD_VENV:-$PWD/.venv}
PY=$VENV/bin/python
export PYTHONPATH=$PWD
SETUP="$PY bench/load_setup.py"
BASE="http://127.0.0.1:$PORT"

if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (Debian package)"
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    apt() {
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 "$@"
    }
    apt install wrk >/dev/null 2>&1 || { apt update >/dev/null && apt install wrk >/dev/null; }
fi
case "$USERS" in
[1-9] | [1-4][0-9] | 50) ;;
*)
    echo "load.sh: --users must be 1 to 50 (the benchmark's agents)" >&2
    exit 2
    ;;
esac

mkdir -p "$DATA"
chmod 700 "$DATA"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -f "$DATA"/*.cookies
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "seeding socialcare_bench unless it is seeded already (bench/inbox.py)"
$PY bench/inbox.py --backend postgresql --seed-only | sed 's/^/  /' >&2

# Secrets of this run only: a fresh signing key; the benchmark's Fernet key, which encrypted
# its accounts' (fake) credentials. Both stay in the environment of the processes started here.
SOCIALCARE_SECRET_KEY=$($PY -c 'import secrets; print(secrets.token_urlsafe(48))')
SOCIALCARE_ENCRYPTION_KEYS=$(cat "$BENCH_DIR/fernet.key")
export SOCIALCARE_SECRET_KEY SOCIALCARE_ENCRYPTION_KEYS
export SOCIALCARE_DATABASE_URL=$PG_URL
export SOCIALCARE_RESEARCH_DATABASE_URL="sqlite:///$DATA/research.db"
export SOCIALCARE_INSTANCE_PATH=$DATA/instance
# Plain HTTP on 127.0.0.1: the cookie must not be "Secure" or the login client would drop it.
export SOCIALCARE_SESSION_COOKIE_SECURE=false
export SOCIALCARE_LOG_LEVEL=WARNING
rm -f "$DATA"/research.db*
mkdir -p "$DATA/instance"

say "copying socialcare_bench into the scratch database, connecting $FEEDERS demo feeders"
$SETUP prepare --data-dir "$DATA" --feeders "$FEEDERS" --rate "$(
    [ "$RATE" = 0 ] && echo 1 || echo "$RATE"
)" | sed 's/^/  /' >&2

if SOCIALCARE_TESTING=false "$VENV/bin/socialcare" serve --help >/dev/null 2>&1; then
    say "starting socialcare serve --workers $WEB_WORKERS"
    PGAPPNAME=socialcare-load-web "$VENV/bin/socialcare" serve --workers "$WEB_WORKERS" \
        --bind "127.0.0.1:$PORT" \
        >"$DATA/web.log" 2>&1 &
else
    say "starting gunicorn -w $WEB_WORKERS (socialcare serve is not there yet)"
    PGAPPNAME=socialcare-load-web "$VENV/bin/gunicorn" --no-control-socket -w "$WEB_WORKERS" \
        -b "127.0.0.1:$PORT" 'inbox:create_app()' \
        >"$DATA/web.log" 2>&1 &
fi
WEB_PID=$!
PIDS+=("$WEB_PID")
for _ in $(seq 1 120); do
    curl -fso /dev/null "$BASE/login" && break
    sleep 0.5
done
curl -fso /dev/null "$BASE/login" || {
    tail -20 "$DATA/web.log" >&2
    exit 1
}

say "logging in $USERS agents and a marketing user through the login form"
$SETUP login --base "$BASE" --role agent --users "$USERS" --out "$DATA/agent.cookies" >&2
$SETUP login --base "$BASE" --role marketing --out "$DATA/marketing.cookies" >&2

WORKER_PID=''
snapshot() { $SETUP snapshot --web "$WEB_PID" ${WORKER_PID:+--worker "$WORKER_PID"} "$@"; }
field() { $PY -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
# What happened between two snapshots, as key=value words: messages stored, seconds, CPU.
between() {
    $PY -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
words = {"ingested": b["new_messages"], "window": round(b["time"] - a["time"], 3)}
words.update(outbox=b["outbox"], research=b["research_records"])
words.update({k: round(b[k] - a[k], 3) for k in a if k.startswith("cpu_")})
for k in ("pg_web", "pg_worker"):  # backends by pid; JSON made the pids strings
    words[f"cpu_{k}"] = round(sum(t - a[k].get(p, 0.0) for p, t in b[k].items()), 3)
print(" ".join(f"{k}={v}" for k, v in words.items()))' "$1" "$2"
}

if [ "$RATE" != 0 ]; then
    say "starting socialcare worker"
    $SETUP feed
    PGAPPNAME=socialcare-load-worker "$VENV/bin/socialcare" worker >"$DATA/worker.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
    # Wait for the first polls, then let ingestion settle into its pace.
    START=$(field "$(snapshot)" newest_id)
    for _ in $(seq 1 60); do
        [ "$(field "$(snapshot --since-id "$START")" new_messages)" -gt 0 ] && break
        sleep 1
    done
    sleep 5
fi

measure() { # name, cookie file, paths file
    local name=$1 cookies=$2 paths=$3 before after load out
    LOAD_COOKIES=$cookies LOAD_PATHS=$paths LOAD_USER_AGENT=$USER_AGENT \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" -s bench/load.lua "$BASE" >/dev/null
    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(snapshot)
    out=$(LOAD_COOKIES=$cookies LOAD_PATHS=$paths LOAD_USER_AGENT=$USER_AGENT \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s -s bench/load.lua \
        "$BASE" | grep '^LOAD_RESULT')
    after=$(snapshot --since-id "$(field "$before" newest_id)")
    echo "$name $out load=$load $(between "$before" "$after")"
}

say "measuring: ${WARMUP}s warm-up + ${DURATION}s per page, $THREADS threads," \
    "$CONNECTIONS connections, $USERS agents; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS=$(
    measure list "$DATA/agent.cookies" "$DATA/list.paths"
    measure conversation "$DATA/agent.cookies" "$DATA/thread.paths"
    measure report "$DATA/marketing.cookies" "$DATA/report.paths"
)
echo "$RESULTS" >"$DATA/results.txt"

echo
WORK="worker ingesting, target $RATE items/s"
[ "$RATE" = 0 ] && WORK="no worker"
echo "wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s per page, $USERS agents," \
    "$WEB_WORKERS web processes; $WORK; $(nproc) CPUs"
echo "$RESULTS" | awk '
function v(key,    i, kv) {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return kv[2] }
}
BEGIN {
    printf "%-20s %7s %7s %7s %7s %7s %7s %8s %5s %8s %8s %7s\n", "page", "req/s", "p50 ms",
        "p90 ms", "p99 ms", "max ms", "not 200", "ingest/s", "load", "web CPU", "db CPU",
        "worker"
    printf "%-20s %7s %7s %7s %7s %7s %7s %8s %5s %8s %8s %7s\n", "", "", "", "", "", "", "",
        "", "", "ms/req", "ms/req", "% core"
}
{
    url = ($1 == "list") ? "/conversations" : "/reports"
    if ($1 == "conversation") url = "/conversations/<id>"
    n = v("requests") > 0 ? v("requests") : 1
    printf "%-20s %7.1f %7.1f %7.1f %7.1f %7.0f %7d %8.1f %5.1f %8.1f %8.1f %7.0f\n", url,
        v("rps"), v("p50"), v("p90"), v("p99"), v("max"),
        v("not_ok") + v("socket_errors") + v("timeouts"), v("ingested") / v("window"),
        v("load"), 1000 * v("cpu_web") / n, 1000 * v("cpu_pg_web") / n,
        100 * (v("cpu_worker") + v("cpu_pg_worker")) / v("window")
    if (v("statuses") != "-") printf "%-20s answers other than 200: %s\n", "", v("statuses")
    outbox = v("outbox"); research = v("research")
}
END { printf "research outbox left: %d rows; research store: %d records\n", outbox, research }
'
cat <<'EOF'
not 200: answers other than 200, socket errors and timeouts. ingest/s: messages stored per
second during the page's measurement. load: 1-minute load average just before it. CPU: user +
system time of the web server's processes and of the database backends serving them, per
request; worker: the worker's and its database backends' share of one core. On a shared
machine these say more than wall times: 2 cores allow about 2,000 / (web + db) requests a
second at best, less the worker's share.
EOF
