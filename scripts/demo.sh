#!/usr/bin/env bash
# The local demo: a counter process is checkpointed into a directory, killed,
# and restored with its PID; it goes on counting where it stopped.
# (With the SSH work this becomes a migration between two local test hosts.)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x native/build/subreaper ] && [ -f dist/cli/main.js ] || bash scripts/setup.sh
make -s -C test/programs

# PID 1 on these machines does not reap orphans: run the demo under a subreaper.
if [ "${CRM_DEMO_REAPED:-}" != 1 ]; then
  CRM_DEMO_REAPED=1 exec native/build/subreaper bash "$0" "$@"
fi

work=$(mktemp -d /tmp/crmigrate-demo.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

setsid test/programs/bin/counter "$work" </dev/null >"$work/counter.log" 2>&1 &
pid=$!
sleep 2.5
echo "== counter running as PID $pid:"; tail -n 2 "$work/counter.log"

echo "== crmigrate dump $pid --dir $work/image"
node dist/cli/main.js dump "$pid" --dir "$work/image"
{ wait "$pid"; } 2>/dev/null || true
echo "== the process is gone:"; if kill -0 "$pid" 2>/dev/null; then echo "still running?!"; exit 1; else echo "no PID $pid"; fi

echo "== crmigrate restore --dir $work/image"
node dist/cli/main.js restore --dir "$work/image" --pidfile "$work/pid"
echo "== restored as PID $(cat "$work/pid"), counting on:"
sleep 2.5
tail -n 3 "$work/counter.log"
kill -USR2 "$pid"
sleep 0.3
pid=
echo "== demo done"
