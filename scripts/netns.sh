#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Network emulation for benchmarks: two network namespaces joined by a veth
# pair, each end rate-limited with tbf; a delay with netem only where the
# kernel has it (this host's does not).  Needs root.
#
#   scripts/netns.sh up NAME RATE [DELAY]   e.g. up vmigb 10gbit 100us
#   scripts/netns.sh down NAME
#
# NETNS_QDISC=bands: tbf's inner queue is pfifo_fast (three priority bands,
# what the kernel puts on a single-queue NIC by default) instead of tbf's
# one FIFO: packets with socket priority 6 (vmig's postcopy return path and
# preempt channel) leave before queued bulk.  An operator who shapes
# migration traffic would keep such bands; plain tbf is the worst case.
#
# "up" creates namespaces NAME-src (10.77.0.1) and NAME-dst (10.77.0.2) and
# prints one line: "netns: NAME-src 10.77.0.1 NAME-dst 10.77.0.2 rate RATE
# delay DELAY|none (why)".  Run programs with `ip netns exec NAME-src ...`.
set -euo pipefail
cmd=${1:?up|down}
name=${2:?name}
src=$name-src dst=$name-dst

down() {
	ip netns del "$src" 2>/dev/null || true
	ip netns del "$dst" 2>/dev/null || true
}

case $cmd in
down)
	down
	;;
up)
	rate=${3:?rate, e.g. 10gbit}
	delay=${4:-}
	qdisc=${NETNS_QDISC:-fifo}
	case $qdisc in fifo|bands) ;; *) echo "NETNS_QDISC: fifo or bands" >&2; exit 2;; esac
	down
	ip netns add "$src"
	ip netns add "$dst"
	ip link add veth-s netns "$src" type veth peer name veth-d netns "$dst"
	ip -n "$src" addr add 10.77.0.1/24 dev veth-s
	ip -n "$dst" addr add 10.77.0.2/24 dev veth-d
	for ns in "$src" "$dst"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$src" link set veth-s up
	ip -n "$dst" link set veth-d up
	used="none"
	if [ -n "$delay" ]; then
		# netem under tbf would be the usual stack; without netem, no delay.
		if ip netns exec "$src" tc qdisc add dev veth-s root handle 1: netem delay "$delay" 2>/dev/null; then
			ip netns exec "$src" tc qdisc add dev veth-s parent 1: handle 2: tbf rate "$rate" burst 1mb latency 2ms
			ip netns exec "$dst" tc qdisc add dev veth-d root handle 1: netem delay "$delay"
			ip netns exec "$dst" tc qdisc add dev veth-d parent 1: handle 2: tbf rate "$rate" burst 1mb latency 2ms
			tbf=2:
			used="$delay (netem)"
		else
			used="none (this kernel has no netem: sch_netem unavailable)"
		fi
	fi
	if [[ $used != *netem\)* ]]; then
		ip netns exec "$src" tc qdisc add dev veth-s root handle 1: tbf rate "$rate" burst 1mb latency 2ms
		ip netns exec "$dst" tc qdisc add dev veth-d root handle 1: tbf rate "$rate" burst 1mb latency 2ms
		tbf=1:
	fi
	if [ "$qdisc" = bands ]; then
		ip netns exec "$src" tc qdisc add dev veth-s parent "${tbf}1" pfifo_fast
		ip netns exec "$dst" tc qdisc add dev veth-d parent "${tbf}1" pfifo_fast
	fi
	echo "netns: $src 10.77.0.1 $dst 10.77.0.2 rate $rate delay $used qdisc tbf$([ "$qdisc" = bands ] && echo " + pfifo_fast bands")"
	;;
*)
	echo "usage: $0 up NAME RATE [DELAY] | down NAME" >&2
	exit 2
	;;
esac
