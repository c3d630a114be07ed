#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the man pages of vmig and of each of its commands from their own
# --help text (help2man), so a page cannot drift from the program: the
# options, their defaults and the examples are written once, in the
# command's usage text.  docs/man/NAME.h2m adds what --help does not say
# (see help2man's --include: [SEE ALSO], [FILES], [ENVIRONMENT] ...).
#
# usage: mkman.sh VMIG OUTDIR VERSION
#   writes OUTDIR/vmig.1 and OUTDIR/vmig-COMMAND.1 for every command that
#   'VMIG --help' lists.
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,/^set/p' "$0" | sed 's/^# \{0,1\}//;/^set/d' >&2; exit 2; }
vmig=$(realpath "$1") out=$2 version=$3
here=$(cd "$(dirname "$0")/.." && pwd)
command -v help2man >/dev/null || { echo "mkman: help2man is missing (scripts/deps.sh installs it)" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# page NAME SUMMARY ARGS...: one page from 'VMIG ARGS --help'.
page() {
	local name=$1 summary=$2
	shift 2
	local inc=() wrap=$work/$name
	# help2man names the page after the program it runs: a wrapper per command.
	printf '#!/bin/sh\nexec %q %s "$@"\n' "$vmig" "$*" >"$wrap"
	chmod +x "$wrap"
	[ -r "$here/docs/man/$name.h2m" ] && inc=(--include "$here/docs/man/$name.h2m")
	printf '[SEE ALSO]\n%s\n' "$see_also" >"$work/$name.see"
	inc+=(--include "$work/$name.see")
	help2man --no-info --no-discard-stderr --section 1 --source "vmig $version" \
		--version-string "$version" --name "$summary" "${inc[@]}" \
		--output "$out/$name.1" "$wrap"
	# A page whose --help printed nothing would come out empty, silently.
	grep -q '^\.SH' "$out/$name.1" || { echo "mkman: empty page for $name" >&2; exit 1; }
}

# The command list of 'vmig --help': two-space indent, name, summary.
cmds=$("$vmig" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)  *\(.*\)$/\1 \2/p')
[ -n "$cmds" ] || { echo "mkman: 'vmig --help' lists no commands" >&2; exit 1; }
docs="The guide, operations, protocols and performance figures: docs/ in the source tree
(README.md names each file).  The module's ABI: /usr/include/linux/vmig.h."
see_also="$(cut -d' ' -f1 <<<"$cmds" | sed 's/.*/.BR vmig-&\ (1),/' | sed '$ s/,$//')
.PP
$docs"
page vmig "live-migrate virtual machines' memory"
see_also=".BR vmig (1)
.PP
$docs"
while read -r cmd summary; do
	page "vmig-$cmd" "$summary" "$cmd"
done <<<"$cmds"
