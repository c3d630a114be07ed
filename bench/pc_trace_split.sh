#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Split the "PCT SEQ src|dst RECORD" and "KT SEQ LINE" lines a traced
# bench/qemu_vmig_bench.sh run (PCTRACE=1) printed into DIR/SEQ.src,
# DIR/SEQ.dst (for bench/pc_stages.py DIR/SEQ) and DIR/SEQ.kt (the
# module's missing-page events, for bench/pc_ktrace.py).
#   bench/pc_trace_split.sh LOG DIR
[ $# -eq 2 ] || { echo "usage: $0 LOG DIR" >&2; exit 2; }
mkdir -p "$2"
# (PCT SEQ json: the destination's postcopy report goes to DIR/SEQ.json.)
tr -d '\r' <"$1" | awk -v dir="$2" '
	$1 == "PCT" && ($3 == "src" || $3 == "dst" || $3 == "json") {
		f = dir "/" $2 "." $3
		$1 = $2 = $3 = ""
		sub(/^ +/, "")
		print >f
	}
	$1 == "KT" {
		f = dir "/" $2 ".kt"
		$1 = $2 = ""
		sub(/^ +/, "")
		print >f
	}'
ls "$2"
