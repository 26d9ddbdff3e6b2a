#!/usr/bin/env bash
# Migrates every test program from this VM (src) to dst and verifies it there.
set -euo pipefail
DST=${DST:-root@192.168.56.11}
cd /vagrant
make -s -C test/programs
ssh -o StrictHostKeyChecking=accept-new "$DST" true
pass=0 fail=0
for prog in t_regs t_memory t_signals t_files t_syscall t_threads t_tree t_creds t_sysv t_cow t_precopy counter; do
  work=$(mktemp -d /tmp/crm-e2e.XXXXXX)
  ssh "$DST" mkdir -p "$work"
  setsid "test/programs/bin/$prog" "$work" </dev/null >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q '^READY$' "$work/log" && break; sleep 0.1; done
  # the program's scratch files must exist on dst too (same content, same mtimes)
  ssh "$DST" "mkdir -p $work" && scp -q -rp "$work/." "$DST:$work/"
  if crmigrate "$pid" "$DST" --quiet; then
    ssh "$DST" "kill -USR2 $pid; for i in \$(seq 200); do grep -qE '^(PASS|FAIL)$' $work/log 2>/dev/null && break; sleep 0.1; done; cat $work/log" >"$work/remote.log" || true
    if grep -q '^PASS$' "$work/remote.log"; then pass=$((pass + 1)); echo "ok - $prog"; else fail=$((fail + 1)); echo "not ok - $prog"; cat "$work/remote.log"; fi
  else
    fail=$((fail + 1)); echo "not ok - $prog: migration failed"; kill -9 "$pid" 2>/dev/null || true
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
