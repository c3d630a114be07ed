#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The man pages: one for vmig and one for each command it lists, built
# from the commands' own --help, rendered by man(1) without a warning,
# naming every option the command accepts, and installed where man finds
# them.
set -u
cd "$(dirname "$0")/../.."
. selftests/helper/tap.sh
VMIG=${VMIG_BIN:-build/out/vmig}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check "the pages build from the commands' --help" scripts/mkman.sh "$VMIG" "$tmp/pages" 0.1.0

# render PAGE: the text man shows, with groff's warnings on stderr.
render() { MANWIDTH=100 man --warnings=w -l "$1" 2>"$tmp/warn"; }

cmds=$("$VMIG" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
check "vmig --help lists commands" test -n "$cmds"
for page in vmig $(sed 's/^/vmig-/' <<<"$cmds"); do
	f=$tmp/pages/$page.1
	check "$page: a page exists" test -s "$f"
	[ -s "$f" ] || continue
	render "$f" >"$tmp/$page.txt"
	check "$page: man renders it without a warning" test ! -s "$tmp/warn"
	for s in NAME DESCRIPTION "SEE ALSO"; do
		check "$page: has $s" grep -q "^$s" "$tmp/$page.txt"
	done
	# Every long option of the command's --help is on its page.
	args=${page#vmig}
	args=${args#-}
	missing=
	for o in $("$VMIG" $args --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -q -- "$o" "$tmp/$page.txt" || missing+=" $o"
	done
	check "$page: names every option of its --help${missing:+ (missing:$missing)}" test -z "$missing"
done

# A page that says nothing is caught: a program whose --help is empty.
printf '#!/bin/sh\n[ "$1" = --help ] && exit 0\necho "usage: x"\n' >"$tmp/mute"
chmod +x "$tmp/mute"
check "a command whose --help prints nothing fails the build" \
	bash -c "! scripts/mkman.sh '$tmp/mute' '$tmp/mute-pages' 0.1.0 2>/dev/null"

check "make install-man puts them where man finds them" \
	make -s install-man DESTDIR="$tmp/root" PREFIX=/usr BUILD="$(dirname "$VMIG")"
out=$(MANWIDTH=100 man -M "$tmp/root/usr/share/man" vmig-migrate 2>/dev/null)
check "man -M ROOT vmig-migrate shows the installed page" grep -q -- '--downtime-limit' <<<"$out"
tap_done
