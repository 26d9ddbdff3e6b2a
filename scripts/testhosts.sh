#!/usr/bin/env bash
# Local test hosts for the end-to-end tests (DESIGN.md, "Test hosts").
#
#   scripts/testhosts.sh up [NAME...]        create hosts (default: crm-a crm-b)
#   scripts/testhosts.sh down [NAME...]      remove hosts (default: crm-a crm-b and
#                                            every other host this script made)
#   scripts/testhosts.sh status              one line per host: name, IP, sshd PID,
#                                            whether `ssh -F CONFIG NAME true` works
#   scripts/testhosts.sh exec NAME CMD...    run CMD inside the host's network, PID,
#                                            mount, UTS and IPC namespaces
#
# A host is a network namespace NAME whose eth0 is one end of a veth pair; the
# other end (v-NAME, cut to 15 characters) is a port of the bridge crm-br0 in
# the root namespace, which holds 10.213.7.1/24 so the root namespace reaches
# every host. The host's address is 10.213.7.(10+i) for host index i (its
# position in the `up` arguments, counted from 1, unless that address is taken
# by another host already up). Inside the network namespace an OpenSSH sshd runs
# as PID 1 of its own PID namespace, with its own UTS (hostname NAME) and IPC namespaces
# and its own mount namespace (only /proc differs: the file system is shared by
# all hosts on purpose). Per-host state lives in /run/crmigrate-testhosts/NAME:
# sshd_config, host key, authorized_keys, sshd.log, init.pid (the root-namespace
# PID of the PID namespace's init, i.e. sshd) and init.starttime (to never kill
# a recycled PID). The client side (key, known_hosts, ssh config) is in
# /run/crmigrate-testhosts/client.
#
# `up` is idempotent: a host that is fully up is kept, a half-made one is torn
# down and made again. `down` of a missing host is fine; once no host is left,
# the bridge and the whole state directory go too. Processes are only ever
# killed by recorded PID (checked against their start time) or as members of a
# host's namespaces. Missing packages are installed with apt-get. Run as root.
# shellcheck disable=SC2016 # single-quoted sh -c scripts get their arguments positionally
set -eEuo pipefail
set +m # background jobs must stay in our process group (see start_sshd)

STATE=/run/crmigrate-testhosts
CLIENT=$STATE/client
BRIDGE=crm-br0
NET=10.213.7
BRIDGE_IP=$NET.1
# Fixed MACs: a host made again (same index, same IP) keeps its MAC, and the
# bridge keeps its MAC whatever ports come and go, so no ARP cache goes stale.
BRIDGE_MAC=02:c7:d5:07:00:01
host_mac() { printf '02:c7:d5:07:01:%02x' "$1"; }
DEFAULT_NAMES=(crm-a crm-b)
SSHD=/usr/sbin/sshd
UP_TIMEOUT=${CRM_TESTHOSTS_TIMEOUT:-20} # seconds to wait for each sshd
SCRIPT=$(readlink -f "$0")

say() { echo "testhosts: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}
trap 's=$?; say "error: command failed (line $LINENO, status $s): $BASH_COMMAND"' ERR

usage() {
  sed -n '2,11p' "$SCRIPT" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, sshd)"

# --- helpers -----------------------------------------------------------------

check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || die "invalid host name '$1' (letters, digits, . _ -; at most 63)"
  [ "$1" != client ] || die "'client' is reserved"
}

veth_of() { local v="v-$1"; echo "${v:0:15}"; }

# veth_taken NAME: another host already has NAME's bridge port name
veth_taken() {
  local other v
  v=$(veth_of "$1")
  for other in $(known_hosts_list); do
    [ "$other" != "$1" ] && [ "$(cat "$STATE/$other/veth" 2>/dev/null)" = "$v" ] && return 0
  done
  return 1
}

# host_traces NAME: anything of host NAME exists (state, netns, bridge port)
host_traces() {
  [ -d "$STATE/$1" ] || netns_exists "$1" || { ! veth_taken "$1" && link_exists "$(veth_of "$1")"; }
}

# starttime PID: field 22 of /proc/PID/stat, empty if gone or a zombie
starttime() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  case $1 in Z | X) return 0 ;; esac
  echo "${20}"
}

# alive PID STARTTIME: the process still exists, is no zombie, and is the same one
alive() { [ -n "$1" ] && [ -n "$2" ] && [ "$(starttime "$1")" = "$2" ]; }

# kill_recorded DIR PREFIX: TERM, then KILL, the process recorded as PREFIX.pid
kill_recorded() {
  local dir=$1 what=$2 pid start i
  pid=$(cat "$dir/$what.pid" 2>/dev/null || true)
  start=$(cat "$dir/$what.starttime" 2>/dev/null || true)
  alive "$pid" "$start" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    alive "$pid" "$start" || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    alive "$pid" "$start" || return 0
    sleep 0.05
  done
  say "warning: $what PID $pid did not exit"
}

# is_ns_init PID: PID is PID 1 of a (nested) PID namespace
is_ns_init() { grep -qE '^NSpid:[[:space:]]+[0-9]+([[:space:]]+[0-9]+)*[[:space:]]+1$' "/proc/$1/status" 2>/dev/null; }

netns_exists() { [ -e "/run/netns/$1" ] && ip netns list 2>/dev/null | grep -qE "^$1( |$)"; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

lock() {
  exec 9<"$SCRIPT"
  flock -w 300 9 || die "another testhosts.sh up/down is still running (lock on $SCRIPT)"
}

ensure_packages() {
  local need=()
  [ -x "$SSHD" ] || need+=(openssh-server)
  command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
  command -v ip >/dev/null || need+=(iproute2)
  for c in nsenter unshare setsid flock; do command -v "$c" >/dev/null || need+=(util-linux); done
  [ "${#need[@]}" -gt 0 ] || return 0
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local o=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  apt-get "${o[@]}" update -qq || die "apt-get update failed"
  apt-get "${o[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
  [ -x "$SSHD" ] || die "$SSHD missing after installing openssh-server"
}

# every host this script knows: state directories, plus netns with a bridge port
known_hosts_list() {
  local d
  for d in "$STATE"/*/; do
    [ -d "$d" ] || continue
    d=${d%/}
    d=${d##*/}
    [ "$d" = client ] || echo "$d"
  done
}

used_index() { # used_index I EXCEPT-NAME: is index I taken by another host?
  local n
  for n in $(known_hosts_list); do
    [ "$n" != "$2" ] || continue
    [ "$(cat "$STATE/$n/index" 2>/dev/null)" = "$1" ] && return 0
  done
  return 1
}

sshd_running() {
  local e
  for e in /proc/[0-9]*/exe; do
    [ "$(readlink "$e" 2>/dev/null)" = "$SSHD" ] && return 0
  done
  return 1
}

# --- bridge and client ---------------------------------------------------------

ensure_bridge() {
  if link_exists "$BRIDGE"; then
    ip -d link show dev "$BRIDGE" | grep -qw bridge || die "$BRIDGE exists but is not a bridge"
  else
    ip link add "$BRIDGE" address "$BRIDGE_MAC" type bridge
  fi
  ip link set dev "$BRIDGE" address "$BRIDGE_MAC"
  local other
  other=$(ip -4 -o addr show to "$NET.0/24" | awk -v b="$BRIDGE" '$2 != b {print $2}' | sort -u | tr '\n' ' ')
  [ -z "$other" ] || die "$NET.0/24 is already used by: $other"
  [ -e "/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6" ] && echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"
  ip addr replace "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set dev "$BRIDGE" up
}

ensure_client() {
  mkdir -p "$CLIENT"
  chmod 755 "$STATE"
  chmod 700 "$CLIENT"
  if [ ! -s "$CLIENT/id_ed25519" ] || [ ! -s "$CLIENT/id_ed25519.pub" ]; then
    rm -f "$CLIENT/id_ed25519" "$CLIENT/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C crmigrate-tests -f "$CLIENT/id_ed25519"
  fi
  # DIRs that we create (so the last `down` removes them again)
  if [ ! -d /run/sshd ]; then
    mkdir -m 755 /run/sshd
    touch "$STATE/made-run-sshd"
  fi
}

# known_hosts and ssh config for every host that has a state directory with a key
write_client_files() {
  [ -d "$CLIENT" ] || return 0
  local n ip kh=$CLIENT/known_hosts.tmp cf=$CLIENT/config.tmp
  : >"$kh"
  {
    echo "# crmigrate test hosts (written by scripts/testhosts.sh; use with ssh -F)"
    echo
  } >"$cf"
  for n in $(known_hosts_list); do
    ip=$(cat "$STATE/$n/ip" 2>/dev/null || true)
    if [ -z "$ip" ] || [ ! -s "$STATE/$n/ssh_host_ed25519_key.pub" ]; then continue; fi
    awk -v ip="$ip" '{print ip, $1, $2}' "$STATE/$n/ssh_host_ed25519_key.pub" >>"$kh"
    cat >>"$cf" <<EOF
Host $n $ip
  HostName $ip
  Port 22
  User root
  IdentityFile $CLIENT/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $CLIENT/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR

EOF
  done
  mv -f "$kh" "$CLIENT/known_hosts"
  mv -f "$cf" "$CLIENT/config"
}

# --- one host ------------------------------------------------------------------

host_healthy() {
  local n=$1 dir=$STATE/$1 ip pid start
  [ -s "$dir/ip" ] && [ -s "$dir/init.pid" ] || return 1
  ip=$(cat "$dir/ip")
  pid=$(cat "$dir/init.pid")
  start=$(cat "$dir/init.starttime" 2>/dev/null || true)
  alive "$pid" "$start" || return 1
  netns_exists "$n" || return 1
  # the recorded init really lives in this network namespace
  [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -c %i "/run/netns/$n")" ] || return 1
  ip -d link show dev "$(veth_of "$n")" 2>/dev/null | grep -q "master $BRIDGE" || return 1
  ip -n "$n" -4 -o addr show dev eth0 2>/dev/null | grep -q " $ip/24 " || return 1
  ssh_banner "$ip"
}

# ssh_banner IP: something at IP:22 answers with an SSH banner
ssh_banner() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 2 line <&3 && [[ $line == SSH-* ]]' _ "$1" 2>/dev/null
}

teardown_host() {
  local n=$1 dir=$STATE/$1 veth pids p i ip other busy
  veth=$(cat "$dir/veth" 2>/dev/null || true)
  if [ -z "$veth" ] && ! veth_taken "$n"; then veth=$(veth_of "$n"); fi
  ip=$(cat "$dir/ip" 2>/dev/null || true)
  # PID 1 of the host's PID namespace: killing it kills everything in that namespace
  kill_recorded "$dir" init
  # the unshare parent exits by itself once its child is gone
  kill_recorded "$dir" unshare
  if netns_exists "$n"; then
    # anything else still inside the network namespace (an sshd whose state is
    # lost, `ip netns exec` leftovers): PID namespace inits first, so that their
    # parents (unshare) can still reap them, then everything else
    for ((i = 0; i < 100; i++)); do
      busy=
      for p in $(ip netns pids "$n" 2>/dev/null || true); do
        if is_ns_init "$p"; then
          kill -KILL "$p" 2>/dev/null || true
          busy=1
        fi
      done
      [ -n "$busy" ] || break
      sleep 0.02
    done
    for ((i = 0; i < 50; i++)); do
      pids=$(ip netns pids "$n" 2>/dev/null || true)
      [ -n "$pids" ] || break
      for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
      sleep 0.05
    done
    [ -z "$pids" ] || say "warning: processes still in netns $n: $pids"
  fi
  if [ -n "$veth" ] && link_exists "$veth"; then ip link del dev "$veth" || true; fi
  if netns_exists "$n" || [ -e "/run/netns/$n" ]; then ip netns del "$n" 2>/dev/null || rm -f "/run/netns/$n"; fi
  # forget the host's MAC wherever it was learnt (belt and braces; MACs are fixed)
  if [ -n "$ip" ]; then
    ip neigh flush to "$ip" dev "$BRIDGE" 2>/dev/null || true
    for other in $(known_hosts_list); do
      [ "$other" = "$n" ] || ip -n "$other" neigh flush to "$ip" 2>/dev/null || true
    done
  fi
  rm -rf "$dir"
}

write_sshd_config() {
  local n=$1 dir=$2 ip=$3
  cat >"$dir/sshd_config" <<EOF
# sshd of crmigrate test host $n (written by scripts/testhosts.sh)
ListenAddress $ip
Port 22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 30:30:60
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr
LogLevel INFO
EOF
}

# start_sshd NAME DIR: sshd as PID 1 of new PID+mount+UTS+IPC namespaces inside netns NAME
start_sshd() {
  local n=$1 dir=$2 upid init i
  # fd 9 (our lock) and our stdout/stderr must not reach the long-lived processes.
  # No job control (set +m), so the subshell is not a process group leader and
  # setsid(1) calls setsid() without forking: $! is the PID of what becomes unshare.
  (
    exec 9<&-
    exec setsid ip netns exec "$n" \
      unshare --pid --fork --mount --mount-proc --uts --ipc --propagation slave --kill-child=SIGKILL -- \
      /bin/sh -c 'printf %s "$1" >/proc/sys/kernel/hostname && exec "$2" -D -f "$3" -E "$4"' \
      sh "$n" "$SSHD" "$dir/sshd_config" "$dir/sshd.log"
  ) </dev/null >>"$dir/console.log" 2>&1 &
  upid=$!
  # the init is unshare's only child
  init=
  for ((i = 0; i < 200; i++)); do
    if [ "$(readlink "/proc/$upid/exe" 2>/dev/null)" = "$(readlink -f "$(command -v unshare)")" ]; then
      init=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null || true)
      init=${init%% *}
      [ -n "$init" ] && break
    fi
    [ -n "$(starttime "$upid")" ] || break
    sleep 0.02
  done
  [ -n "$init" ] || die "$n: could not start sshd (unshare PID $upid); $(tail -n 5 "$dir/console.log" 2>/dev/null)"
  is_ns_init "$init" || die "$n: PID $init is not the init of a new PID namespace"
  echo "$upid" >"$dir/unshare.pid"
  starttime "$upid" >"$dir/unshare.starttime"
  echo "$init" >"$dir/init.pid"
  starttime "$init" >"$dir/init.starttime"
}

create_host() {
  local n=$1 index=$2 dir=$STATE/$1 ip veth start
  ip=$NET.$((10 + index))
  veth=$(veth_of "$n")
  if link_exists "$veth"; then ip link del dev "$veth"; fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  echo "$index" >"$dir/index"
  echo "$ip" >"$dir/ip"
  echo "$veth" >"$dir/veth"
  ssh-keygen -q -t ed25519 -N '' -C "crmigrate-testhost-$n" -f "$dir/ssh_host_ed25519_key"
  cp "$CLIENT/id_ed25519.pub" "$dir/authorized_keys"
  write_sshd_config "$n" "$dir" "$ip"
  "$SSHD" -t -f "$dir/sshd_config" || die "$n: sshd rejects $dir/sshd_config"

  ip netns add "$n"
  ip link add "$veth" type veth peer name eth0 address "$(host_mac "$index")" netns "$n"
  [ -e "/proc/sys/net/ipv6/conf/$veth/disable_ipv6" ] && echo 1 >"/proc/sys/net/ipv6/conf/$veth/disable_ipv6"
  ip link set dev "$veth" master "$BRIDGE" up
  ip netns exec "$n" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6' 2>/dev/null || true
  ip -n "$n" link set dev lo up
  ip -n "$n" addr add "$ip/24" dev eth0
  ip -n "$n" link set dev eth0 up

  start_sshd "$n" "$dir"
  start=$SECONDS
  until ssh_banner "$ip"; do
    if ! alive "$(cat "$dir/init.pid")" "$(cat "$dir/init.starttime")"; then
      die "$n: sshd exited; $dir/sshd.log says: $(tail -n 5 "$dir/sshd.log" 2>/dev/null) $(tail -n 5 "$dir/console.log" 2>/dev/null)"
    fi
    if ((SECONDS - start >= UP_TIMEOUT)); then
      die "$n: sshd (PID $(cat "$dir/init.pid")) does not accept connections on $ip:22 after ${UP_TIMEOUT}s; see $dir/sshd.log"
    fi
    sleep 0.05
  done
}

# --- commands --------------------------------------------------------------------

cmd_up() {
  local names=("$@") n i index
  [ "${#names[@]}" -gt 0 ] || names=("${DEFAULT_NAMES[@]}")
  for n in "${names[@]}"; do check_name "$n"; done
  lock
  ensure_packages
  mkdir -p "$STATE"
  [ -d /run/netns ] || touch "$STATE/made-run-netns"
  ensure_client
  ensure_bridge
  i=0
  for n in "${names[@]}"; do
    i=$((i + 1))
    if host_healthy "$n"; then
      echo "$n $(cat "$STATE/$n/ip") up (already; sshd PID $(cat "$STATE/$n/init.pid"))"
      continue
    fi
    veth_taken "$n" && die "$n: bridge port name $(veth_of "$n") is already used by another host (names too alike in their first 13 characters)"
    index=$(cat "$STATE/$n/index" 2>/dev/null || true)
    if host_traces "$n"; then
      say "$n: cleaning up a half-made host"
      teardown_host "$n"
    fi
    # keep a host's former index; else its position in the arguments; else the lowest free one
    if [ -z "$index" ] || used_index "$index" "$n"; then
      index=$i
      if used_index "$index" "$n"; then
        for ((index = 1; index <= 240; index++)); do used_index "$index" "$n" || break; done
        ((index <= 240)) || die "no free address in $NET.0/24"
      fi
    fi
    create_host "$n" "$index"
    write_client_files
    echo "$n $(cat "$STATE/$n/ip") up (sshd PID $(cat "$STATE/$n/init.pid"))"
  done
  write_client_files
}

cmd_down() {
  local names=("$@") n
  if [ "${#names[@]}" -eq 0 ]; then
    mapfile -t names < <({ printf '%s\n' "${DEFAULT_NAMES[@]}"; known_hosts_list; } | awk '!seen[$0]++')
  fi
  for n in "${names[@]}"; do check_name "$n"; done
  lock
  command -v ip >/dev/null || {
    rm -rf "$STATE"
    return 0
  }
  for n in "${names[@]}"; do
    if host_traces "$n"; then
      teardown_host "$n"
      echo "$n down"
    fi
  done
  if [ -z "$(known_hosts_list)" ]; then
    # last host gone: bridge, client files, and what we created in /run
    if link_exists "$BRIDGE"; then ip link del dev "$BRIDGE" || true; fi
    # (/run/sshd only if no sshd at all runs any more: a system sshd needs it)
    if [ -e "$STATE/made-run-sshd" ] && [ -d /run/sshd ] && ! sshd_running; then rmdir /run/sshd 2>/dev/null || true; fi
    if [ -e "$STATE/made-run-netns" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
      umount /run/netns 2>/dev/null || true
      rmdir /run/netns 2>/dev/null || true
    fi
    rm -rf "$STATE"
  else
    write_client_files
  fi
}

cmd_status() {
  local names n ip pid start sshok rc=0
  mapfile -t names < <({ printf '%s\n' "${DEFAULT_NAMES[@]}"; known_hosts_list; } | awk '!seen[$0]++')
  printf '%-16s %-14s %-9s %s\n' NAME IP SSHD-PID SSH
  for n in "${names[@]}"; do
    ip=$(cat "$STATE/$n/ip" 2>/dev/null || echo -)
    pid=$(cat "$STATE/$n/init.pid" 2>/dev/null || true)
    start=$(cat "$STATE/$n/init.starttime" 2>/dev/null || true)
    if ! alive "$pid" "$start"; then
      printf '%-16s %-14s %-9s %s\n' "$n" "$ip" - "down"
      rc=1
      continue
    fi
    if [ -f "$CLIENT/config" ] && timeout 15 ssh -F "$CLIENT/config" -o ConnectTimeout=5 "$n" true </dev/null 2>/dev/null; then
      sshok=ok
    else
      sshok=FAILED
      rc=1
    fi
    printf '%-16s %-14s %-9s %s\n' "$n" "$ip" "$pid" "$sshok"
  done
  [ -d "$CLIENT" ] && echo "ssh config: $CLIENT/config (ssh -F $CLIENT/config NAME)"
  return $rc
}

cmd_exec() {
  [ $# -ge 2 ] || usage
  local n=$1 pid start
  shift
  check_name "$n"
  pid=$(cat "$STATE/$n/init.pid" 2>/dev/null || true)
  start=$(cat "$STATE/$n/init.starttime" 2>/dev/null || true)
  alive "$pid" "$start" || die "host $n is not up"
  trap - ERR
  # nsenter forks: CMD runs in the host's PID namespace. It starts in our
  # working directory (the file system is shared), or / if that is gone.
  exec nsenter --target "$pid" --net --pid --mount --uts -- \
    /bin/sh -c 'cd -- "$1" 2>/dev/null || cd /; shift; exec "$@"' sh "$PWD" "$@"
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
status) shift; cmd_status || exit $? ;;
exec) shift; cmd_exec "$@" ;;
*) usage ;;
esac
