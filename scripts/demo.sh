#!/usr/bin/env bash
# The demo: a counter that prints a line every second runs on test host
# crm-a; `crmigrate PID crm-b` moves it, live, to test host crm-b, where it
# keeps its PID and goes on counting. Test hosts are namespaces with a real
# sshd each (scripts/testhosts.sh); they are torn down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x native/build/subreaper ] && [ -f dist/cli/main.js ] && command -v sshd >/dev/null 2>&1 || bash scripts/setup.sh
make -s -C test/programs

hosts=(crm-a crm-b)
config=/run/crmigrate-testhosts/client/config
work=$(mktemp -d /tmp/crmigrate-demo.XXXXXX)
in_host() { bash scripts/testhosts.sh exec "$@"; }
cleanup() {
  bash scripts/testhosts.sh down "${hosts[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== bringing up test hosts ${hosts[*]}"
bash scripts/testhosts.sh up "${hosts[@]}"

# Start the counter inside crm-a (its own PID namespace); learn its PID there.
# (descriptors leaked by whoever started the demo are closed: crmigrate would
# rightly refuse a process holding an unknown pipe)
# A fresh PID namespace hands out small PIDs that crm-b's sshd also uses:
# start the counter at a higher one so that its PID is free on crm-b.
in_host crm-a bash -c "echo 20000 > /proc/sys/kernel/ns_last_pid; for fd in \$(ls /proc/\$\$/fd); do [ \$fd -gt 2 ] && eval \"exec \$fd>&-\"; done
  setsid $PWD/test/programs/bin/counter $work </dev/null >$work/counter.log 2>&1 & echo \$! > $work/pid"
pid=$(cat "$work/pid")
sleep 3
echo "== counter running on crm-a as PID $pid:"
tail -n 2 "$work/counter.log"

echo "== crmigrate $pid crm-b   (run on crm-a)"
in_host crm-a "$(command -v node)" "$PWD/dist/cli/main.js" "$pid" crm-b -F "$config" \
  --remote-crmigrate "$(command -v node) $PWD/dist/cli/main.js"

echo "== on crm-a now:"; in_host crm-a sh -c "test -d /proc/$pid && echo 'still there?!' || echo 'no PID $pid'"
echo "== on crm-b:";     in_host crm-b sh -c "grep -E '^(Name|Pid|State)' /proc/$pid/status"
sleep 3
echo "== the counter carries on from crm-b:"
tail -n 3 "$work/counter.log"
in_host crm-b kill -USR2 "$pid"
sleep 0.5
echo "== demo done"
