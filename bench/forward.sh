#!/usr/bin/env bash
# forward.sh: forwarding throughput of tungate against two references, in
# one run on one machine, so the ratios mean something even where absolute
# numbers do not (shared CPUs, VMs, noisy neighbours).
#
# Every row uses its own three network namespaces (client, router, server):
#
#   kernel   client --veth-- router (ip_forward=1) --veth-- server
#   copy     client --tun-- [bench/tuncopy in router ns] --tun-- server
#   tungate  client --tun-- [tungate run -c CONFIG]      --tun-- server
#   tungate-tap  the same with TAP interfaces: Ethernet, ARP, MAC rewrite
#   kernel-nat   kernel, plus nftables masquerade out of the server-side veth
#   tungate-nat  tungate (TUN), plus [[snat]] masquerade out of the server side
#
# In the two NAT rows the server has a route to its own /24 only, none to
# the client's: a reply reaches the client only if the router translated.
# Nothing is configured in the namespace the script is started in: the TUN
# devices are created inside the router namespace and moved out from there.
# All names carry this shell's pid, and the EXIT trap removes exactly what
# this run created, also when it fails or is interrupted.

set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/forward.sh [--help]

Measures forwarding throughput with iperf3 through three routers, and
through the kernel and tungate as masquerading NATs, and prints a table (TCP
1 stream, TCP 4 streams, UDP 64-byte payload packet rate) plus ratio rows.
Needs root, iproute2, iperf3, python3, nft (for kernel-nat) and go (to build
the programs unless given).

Environment:
  DURATION=5          seconds per iperf3 test
  OMIT=1              seconds of TCP slow start left out of the TCP results
  ROUNDS=1            run all rows this many times, interleaved; each cell
                      shows the best round (other load only lowers numbers)
  MTU=1500            MTU of every link
  SKIP_KERNEL=1       skip the kernel ip_forward row
  SKIP_COPY=1         skip the bare tuncopy row
  SKIP_TUNGATE=1      skip the tungate rows
  SKIP_TAP=1          skip the tungate row over TAP interfaces
  SKIP_NAT=1          skip the masquerade rows (kernel-nat, tungate-nat)
  TUNCOPY=PATH        use this tuncopy binary instead of building bench/tuncopy
  TUNGATE=PATH        use this tungate binary instead of building ./cmd/tungate
  LOGDIR=DIR          keep logs, iperf3 JSON and generated configs in DIR
                      (default: a temporary directory removed at exit)
EOF
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*)
	usage >&2
	exit 2
	;;
esac

DURATION=${DURATION:-5}
OMIT=${OMIT:-1}
ROUNDS=${ROUNDS:-1}
MTU=${MTU:-1500}
SKIP_KERNEL=${SKIP_KERNEL:-0}
SKIP_COPY=${SKIP_COPY:-0}
SKIP_TUNGATE=${SKIP_TUNGATE:-0}
SKIP_TAP=${SKIP_TAP:-0}
SKIP_NAT=${SKIP_NAT:-0}

# The same addresses serve every row: each row has its own namespaces, so
# they never meet, and none of them exists outside those namespaces.
CLI_NET=10.201.1
SRV_NET=10.201.2
CLI_IP=$CLI_NET.2
SRV_IP=$SRV_NET.2
RTR_SRV_IP=$SRV_NET.1 # the router's address on the server side: NAT's source

tag="tgb$$" # short: interface names are limited to 15 bytes
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() {
	log "forward.sh: $*"
	exit 1
}

# --- cleanup: exactly what this run created ---------------------------------

pids=()    # background processes (routers, iperf3 servers)
netns=()   # namespaces
workdir="" # temporary directory, if we made one

# stop_all ends every background process of the current row: TERM, up to
# 5 s to exit (tungate and tuncopy close their devices on TERM), then KILL.
stop_all() {
	local pid i
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}

# delete_netns runs after stop_all, so the routers have already closed their
# TUN devices and no process is left inside a namespace being deleted.
delete_netns() {
	local ns
	for ns in "${netns[@]}"; do
		ip netns delete "$ns" 2>/dev/null || true
	done
	netns=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	delete_netns
	if [[ -n $workdir ]]; then
		rm -rf -- "$workdir"
	fi
	exit "$rc"
}
trap cleanup EXIT
# Say which setup step failed before errexit ends the run; once, since with
# errtrace the trap also fires in each function the failure returns through.
set -o errtrace
err_reported=0
on_err() {
	if ((!err_reported)); then
		err_reported=1
		log "forward.sh: line $1: '$2' failed"
	fi
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers -----------------------------------------------------------------

# mkns NAME creates a namespace, remembers it for cleanup, and brings lo up.
mkns() {
	ip netns add "$1"
	netns+=("$1")
	ip -n "$1" link set lo up
}

# start_bg LOG CMD... runs CMD in the background with output to LOG and
# remembers its pid for cleanup; the pid is left in BG_PID. `ip netns exec`
# execs its command, so the pid is the program's own.
start_bg() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	BG_PID=$!
	pids+=("$BG_PID")
}

# wait_until SECONDS WHAT PID LOG CMD... polls CMD until it succeeds. It
# fails after SECONDS, or at once when PID (a process CMD depends on; "-"
# for none) has exited, showing the tail of LOG.
wait_until() {
	local secs=$1 what=$2 pid=$3 logf=$4
	shift 4
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [[ $pid != - ]] && ! kill -0 "$pid" 2>/dev/null; then
			log "process $pid exited while waiting for $what; last lines of $logf:"
			tail -n 20 "$logf" >&2 || true
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "timed out after ${secs}s waiting for $what"
			if [[ $logf != - ]]; then
				tail -n 20 "$logf" >&2 || true
			fi
			return 1
		fi
		sleep 0.1
	done
}

has_addr() { # NS DEV ADDR
	ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null | grep -qF " $3/"
}

iperf_listening() { # NS
	ip netns exec "$1" ss -Hltn 'sport = :5201' | grep -q .
}

has_default_route() { # NS
	ip -n "$1" -4 route show default 2>/dev/null | grep -q .
}

# no_route_back NS: a NAT row's server must not reach the client's subnet
# except through the translation. Fails loudly if it can.
no_route_back() {
	if ip -n "$1" -4 route get "$CLI_IP" >/dev/null 2>&1; then
		log "$1 has a route to $CLI_IP; the NAT row would not show that NAT works:"
		ip -n "$1" -4 route get "$CLI_IP" >&2 || true
		return 1
	fi
}

# check_peers ROW: every connection the iperf3 server of ROW accepted came
# from the router's address, none from the client's: the translation held
# for all tests, not only for the first ping.
check_peers() {
	local row=$1 logf="$logdir/$1-iperf3-server.log" seen
	seen=$(grep -oE '(Accepted connection from|connected to) [0-9.]+' "$logf" |
		awk '{ print $NF }' | sort -u | tr '\n' ' ') || true
	if [[ $seen != "$RTR_SRV_IP " ]]; then
		log "$row: NAT check failed: the server saw connections from '${seen% }'," \
			"expected only $RTR_SRV_IP (see $logf)"
		return 1
	fi
}

# pyjson runs the small JSON and table helper below with python3.
pyjson() {
	python3 - "$@" <<'PY'
import json, sys

def metric(kind, path):
    with open(path) as f:
        d = json.load(f)
    if "error" in d:
        raise SystemExit(d["error"])
    r = d["end"]["sum_received"]
    if kind == "tcp":  # receiver's goodput, Gbit/s
        print("%.2f" % (r["bits_per_second"] / 1e9))
    else:  # packets that reached the receiver: thousands per second, loss %
        got = r["packets"] - r["lost_packets"]
        print("%.0f %.1f" % (got / r["seconds"] / 1e3, r["lost_percent"]))

def num(x):
    try:
        return float(x)
    except ValueError:
        return None

def table(path):
    # One line per row and round; a cell shows the best round. Other load
    # on the machine only ever lowers a number, so the best is the closest
    # to what the path can do.
    runs, order = {}, []
    with open(path) as f:
        for line in f:
            name, *vals = line.split()
            if name not in runs:
                order.append(name)
            runs.setdefault(name, []).append(vals)
    best = {}
    for name, rs in runs.items():
        b = []
        for col in range(3):
            vals = [num(r[col]) for r in rs if num(r[col]) is not None]
            b.append(max(vals) if vals else None)
        # The loss that goes with the best packet rate, from the same round.
        udp = [r for r in rs if num(r[2]) is not None]
        b.append(num(max(udp, key=lambda r: num(r[2]))[3]) if udp else None)
        best[name] = b
    cell = lambda v, f: "err" if v is None else f % v
    out = [[n] + [cell(v, f) for v, f in zip(best[n], ("%.2f", "%.2f", "%.0f", "%.1f"))] for n in order]
    for a, b in (("copy", "kernel"), ("tungate", "kernel"), ("tungate", "copy"), ("tungate-tap", "kernel"),
                 ("tungate-nat", "kernel-nat")):
        if a in best and b in best:
            r = ["%s/%s" % (a, b)]
            for x, y in zip(best[a][:3], best[b][:3]):
                r.append("-" if x is None or not y else "%.2f" % (x / y))
            out.append(r + [""])  # a ratio of losses means nothing
    head = ["path", "TCP x1 Gbit/s", "TCP x4 Gbit/s", "UDP 64B kpps", "UDP loss %"]
    w = [max(len(r[i]) for r in [head] + out) for i in range(len(head))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) + " |"
    rounds = max(len(rs) for rs in runs.values())
    if rounds > 1:
        print("best of %d rounds per cell" % rounds)
    print(fmt(head))
    print("|" + "|".join("-" * (x + 1) + ("-" if i == 0 else ":") for i, x in enumerate(w)) + "|")
    for r in out:
        print(fmt(r))

if sys.argv[1] == "table":
    table(sys.argv[2])
else:
    metric(sys.argv[1], sys.argv[2])
PY
}

# run_iperf ROW TEST CLIENT_NS ARGS... runs one iperf3 test and leaves its
# metric in RESULT, or "err" (the details stay in the log directory). One
# retry: the server may still be tearing down the previous test.
run_iperf() {
	local row=$1 test=$2 cli=$3
	shift 3
	local json="$logdir/$row-$test.json" kind=tcp attempt client
	[[ $test == udp* ]] && kind=udp
	for attempt in 1 2; do
		# In the background and waited for, so that a signal runs the trap
		# at once instead of after the test; cleanup then stops `timeout`,
		# which passes the signal on to iperf3.
		timeout -k 5 $((DURATION + OMIT + 30)) \
			ip netns exec "$cli" iperf3 -c "$SRV_IP" -t "$DURATION" \
			--connect-timeout 3000 -J "$@" >"$json" 2>"$logdir/$row-$test.stderr" &
		client=$!
		pids+=("$client")
		if wait "$client" &&
			RESULT=$(pyjson "$kind" "$json" 2>>"$logdir/$row-$test.stderr"); then
			unset 'pids[-1]'
			return 0
		fi
		unset 'pids[-1]'
		log "  $row $test: attempt $attempt failed, see $logdir/$row-$test.*"
		sleep 1
	done
	RESULT=err
	if [[ $kind == udp ]]; then RESULT="err err"; fi
}

# measure ROW CLIENT_NS SERVER_NS [nat] runs the three tests through a
# router that is already forwarding, and appends the row to the results
# file. With nat, the row counts only if the server saw the router's
# address on every connection; otherwise it returns 1 and appends nothing.
measure() {
	local row=$1 cli=$2 srv=$3 nat=${4:-} tcp1 tcp4 udp
	# --forceflush: the log is read by check_peers while iperf3 still runs.
	start_bg "$logdir/$row-iperf3-server.log" ip netns exec "$srv" iperf3 -s -B "$SRV_IP" --forceflush
	wait_until 5 "iperf3 server ($row)" "$BG_PID" "$logdir/$row-iperf3-server.log" \
		iperf_listening "$srv" || return 1

	log "  $row: TCP x1"
	run_iperf "$row" tcp1 "$cli" -O "$OMIT"
	tcp1=$RESULT
	log "  $row: TCP x4"
	run_iperf "$row" tcp4 "$cli" -O "$OMIT" -P 4
	tcp4=$RESULT
	# No -O for UDP: omitting resets counters but not sequence numbers,
	# which would show up as loss.
	log "  $row: UDP 64 B"
	run_iperf "$row" udp64 "$cli" -u -l 64 -b 0
	udp=$RESULT
	if [[ -n $nat ]]; then
		check_peers "$row" || return 1
	fi
	printf '%s %s %s %s\n' "$row" "$tcp1" "$tcp4" "$udp" >>"$results"
}

# ping_through CLIENT_NS: the end-to-end check that a router forwards.
ping_through() {
	ip netns exec "$1" ping -c 1 -W 1 -q "$SRV_IP"
}

# --- the rows ------------------------------------------------------------------

# row_kernel ROW [nat] measures the kernel's forwarding as row ROW. With
# nat, the router masquerades what leaves towards the server (nftables) and
# the server has no route to the client's subnet. It returns non-zero when
# the router does not forward or, with nat, does not translate.
row_kernel() {
	local row=$1 nat=${2:-} id=kernel
	[[ -z $nat ]] || id=knat
	local cli="$tag-$id-cli" rtr="$tag-$id-rtr" srv="$tag-$id-srv"
	mkns "$cli" || return 1
	mkns "$rtr" || return 1
	mkns "$srv" || return 1
	ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1 || return 1
	# veth peers are created inside the namespaces, never in ours.
	ip -n "$rtr" link add to-cli mtu "$MTU" type veth peer name to-rtr netns "$cli" mtu "$MTU" || return 1
	ip -n "$rtr" link add to-srv mtu "$MTU" type veth peer name to-rtr netns "$srv" mtu "$MTU" || return 1
	ip -n "$rtr" addr add "$CLI_NET.1/24" dev to-cli || return 1
	ip -n "$rtr" addr add "$RTR_SRV_IP/24" dev to-srv || return 1
	ip -n "$rtr" link set to-cli up || return 1
	ip -n "$rtr" link set to-srv up || return 1
	ip -n "$cli" addr add "$CLI_IP/24" dev to-rtr || return 1
	ip -n "$cli" link set to-rtr up || return 1
	ip -n "$cli" route add default via "$CLI_NET.1" || return 1
	ip -n "$srv" addr add "$SRV_IP/24" dev to-rtr || return 1
	ip -n "$srv" link set to-rtr up || return 1
	if [[ -z $nat ]]; then
		ip -n "$srv" route add default via "$RTR_SRV_IP" || return 1
		wait_until 5 "ping through the kernel router" - - ping_through "$cli" || return 1
	else
		# The server keeps only its connected /24: replies to the client's
		# address have no route, so only translated flows come back.
		ip netns exec "$rtr" nft -f - <<EOF || return 1
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "to-srv" masquerade
	}
}
EOF
		no_route_back "$srv" || return 1
		wait_until 5 "ping through the kernel router (masquerade; the server has no route back)" \
			- - ping_through "$cli" || return 1
	fi
	measure "$row" "$cli" "$srv" "$nat"
}

row_copy() {
	local cli="$tag-copy-cli" rtr="$tag-copy-rtr" srv="$tag-copy-srv"
	local a="${tag}a" b="${tag}b" logf="$logdir/copy-tuncopy.log" pid
	mkns "$cli"
	mkns "$rtr"
	mkns "$srv"
	start_bg "$logf" ip netns exec "$rtr" "$tuncopy" -a "$a" -b "$b" -mtu "$MTU"
	pid=$BG_PID
	wait_until 5 "tuncopy's devices" "$pid" "$logf" \
		ip -n "$rtr" link show dev "$b"
	wait_until 1 "tuncopy's devices" "$pid" "$logf" \
		ip -n "$rtr" link show dev "$a"
	# tuncopy copies raw IP between its devices, so each side's TUN is the
	# whole link: an on-link route to the far subnet, no gateway.
	ip -n "$rtr" link set "$a" netns "$cli"
	ip -n "$rtr" link set "$b" netns "$srv"
	ip -n "$cli" addr add "$CLI_IP/24" dev "$a"
	ip -n "$cli" link set "$a" up
	ip -n "$cli" route add "$SRV_NET.0/24" dev "$a"
	ip -n "$srv" addr add "$SRV_IP/24" dev "$b"
	ip -n "$srv" link set "$b" up
	ip -n "$srv" route add "$CLI_NET.0/24" dev "$b"
	wait_until 5 "ping through tuncopy" "$pid" "$logf" ping_through "$cli"
	measure copy "$cli" "$srv"
}

# row_tungate KIND ROW [nat] measures tungate with both interfaces of KIND
# (tun or tap) as row ROW. With nat, tungate masquerades what leaves by the
# server-side interface ([[snat]]) and the server has no route to the
# client's subnet. It returns non-zero (instead of exiting) when tungate
# does not come up or does not translate, so the rows measured so far are
# still printed.
row_tungate() {
	local kind=$1 row=$2 nat=${3:-} id=$1
	[[ -z $nat ]] || id=nat
	local cli="$tag-$id-cli" rtr="$tag-$id-rtr" srv="$tag-$id-srv"
	local a="${tag}${id}l" b="${tag}${id}w" conf="$logdir/$row.toml" logf="$logdir/$row.log" pid ok=1
	mkns "$cli" || return 1
	mkns "$rtr" || return 1
	mkns "$srv" || return 1
	# tungate creates both devices in the router namespace, moves each into
	# its host's namespace and configures the kernel side there (address,
	# up, default route via the interface's first address).
	cat >"$conf" <<EOF
# generated by bench/forward.sh
[router]
admin_socket = "$logdir/$row.sock"
log_level = "warn"

[[interface]]
name = "$a"
kind = "$kind"
addresses = ["$CLI_NET.1/24"]
mtu = $MTU
netns = "$cli"
peer = ["$CLI_IP/24"]

[[interface]]
name = "$b"
kind = "$kind"
addresses = ["$RTR_SRV_IP/24"]
mtu = $MTU
netns = "$srv"
peer = ["$SRV_IP/24"]
EOF
	if [[ -n $nat ]]; then
		cat >>"$conf" <<EOF

[[snat]]
out = "$b"
from = ["$CLI_NET.0/24"]
to = "masquerade"
EOF
	fi
	start_bg "$logf" ip netns exec "$rtr" "$tungate" run -c "$conf"
	pid=$BG_PID
	wait_until 10 "tungate to configure $cli" "$pid" "$logf" has_addr "$cli" "$a" "$CLI_IP" &&
		wait_until 5 "tungate to configure $srv" "$pid" "$logf" has_addr "$srv" "$b" "$SRV_IP" ||
		ok=0
	if ((ok)) && [[ -n $nat ]]; then
		# tungate gave the server a default route via the router; remove it,
		# leaving only the connected /24, so replies come back only if
		# tungate translated the client's address to its own.
		wait_until 5 "tungate's default route in $srv" "$pid" "$logf" has_default_route "$srv" &&
			ip -n "$srv" -4 route del default &&
			no_route_back "$srv" ||
			ok=0
	fi
	if ((ok)); then
		wait_until 5 "ping through tungate${nat:+ (masquerade; the server has no route back)}" \
			"$pid" "$logf" ping_through "$cli" || ok=0
	fi
	if ((ok)); then
		measure "$row" "$cli" "$srv" "$nat" || ok=0
	fi
	# Drop counters (and, with nat, the flow table) explain a bad row; also
	# kept when the row failed. Best effort.
	timeout -k 1 5 "$tungate" stats --socket "$logdir/$row.sock" \
		>"$logdir/$row-stats.txt" 2>&1 || true
	if [[ -n $nat ]]; then
		timeout -k 1 5 "$tungate" nat --socket "$logdir/$row.sock" \
			>"$logdir/$row-conntrack.txt" 2>&1 || true
	fi
	((ok))
}

# --- main ----------------------------------------------------------------------

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, TUN devices)"
for cmd in ip iperf3 python3 ping ss timeout; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done
if [[ $SKIP_NAT != 1 ]]; then
	command -v nft >/dev/null || die "nft not found (needed by kernel-nat; SKIP_NAT=1 skips the NAT rows)"
fi
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer"
[[ $OMIT =~ ^[0-9]+$ ]] || die "OMIT must be a non-negative integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $MTU =~ ^[0-9]+$ ]] || die "MTU must be an integer"

if [[ -n ${LOGDIR:-} ]]; then
	mkdir -p -- "$LOGDIR"
	logdir=$(cd "$LOGDIR" && pwd)
	bindir=$logdir
else
	workdir=$(mktemp -d "${TMPDIR:-/tmp}/tungate-bench.XXXXXX")
	logdir=$workdir
	bindir=$workdir
fi
results="$logdir/results.txt"
: >"$results"

tuncopy=${TUNCOPY:-}
if [[ $SKIP_COPY != 1 && -z $tuncopy ]]; then
	log "building bench/tuncopy"
	(cd "$repo_root" && go build -o "$bindir/tuncopy" ./bench/tuncopy) ||
		die "go build ./bench/tuncopy failed"
	tuncopy=$bindir/tuncopy
fi

# tungate is measured only when a binary exists: given, or buildable now.
tungate=${TUNGATE:-}
if [[ $SKIP_TUNGATE != 1 ]]; then
	if [[ -n $tungate ]]; then
		[[ -x $tungate ]] || die "TUNGATE=$tungate is not executable"
	elif (cd "$repo_root" && CGO_ENABLED=0 go build -o "$bindir/tungate" ./cmd/tungate) \
		>"$logdir/tungate-build.log" 2>&1; then
		tungate=$bindir/tungate
	else
		log "tungate: not built (go build ./cmd/tungate failed; skipping its rows)"
		SKIP_TUNGATE=1
	fi
fi

log "forward.sh: ${DURATION}s per test, $ROUNDS round(s), MTU $MTU, $(nproc) CPUs, kernel $(uname -r), $(iperf3 --version | head -n 1)"
# The endpoints and the router share the CPUs with everything else running;
# say so when that is visibly the case rather than print quiet noise.
read -r load1 _ </proc/loadavg
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
	log "warning: load average $load1 on $(nproc) CPUs: expect noisy numbers; ROUNDS=3 helps"
fi

# Rounds interleave the rows, so a burst of other load hurts one round of
# every row rather than all rounds of one row.
for ((round = 1; round <= ROUNDS; round++)); do
	((ROUNDS == 1)) || log "round $round/$ROUNDS"
	if [[ $SKIP_KERNEL != 1 ]]; then
		log "kernel: ip_forward between veth pairs"
		row_kernel kernel
		stop_all
		delete_netns
	fi
	if [[ $SKIP_COPY != 1 ]]; then
		log "copy: bench/tuncopy between two TUN devices"
		row_copy
		stop_all
		delete_netns
	fi
	if [[ $SKIP_TUNGATE != 1 ]]; then
		for kind in tun tap; do
			row=tungate
			[[ $kind == tun ]] || row=tungate-$kind
			[[ $kind == tap && $SKIP_TAP == 1 ]] && continue
			log "$row: tungate run, $kind interfaces"
			if ! row_tungate "$kind" "$row"; then
				log "$row: did not come up; logs in $logdir (use LOGDIR= to keep them)"
				echo "$row err err err err" >>"$results"
			fi
			stop_all
			delete_netns
		done
	fi
	# The two NAT rows run back to back, so they see the same load.
	if [[ $SKIP_NAT != 1 ]]; then
		log "kernel-nat: ip_forward between veth pairs, nftables masquerade"
		if ! row_kernel kernel-nat nat; then
			log "kernel-nat: failed; logs in $logdir (use LOGDIR= to keep them)"
			echo "kernel-nat err err err err" >>"$results"
		fi
		stop_all
		delete_netns
		if [[ $SKIP_TUNGATE != 1 ]]; then
			log "tungate-nat: tungate run, tun interfaces, [[snat]] masquerade"
			if ! row_tungate tun tungate-nat nat; then
				log "tungate-nat: did not come up or did not translate; logs in $logdir (use LOGDIR= to keep them)"
				echo "tungate-nat err err err err" >>"$results"
			fi
			stop_all
			delete_netns
		fi
	fi
done

[[ -s $results ]] || die "nothing measured"
echo
pyjson table "$results"
