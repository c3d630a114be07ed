#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# --help and getopt agree: every option a command's --help lists is one its
# parser knows, taking a value exactly when --help shows a placeholder; the
# test-only options parse but stay out of --help.  Fails if an option's help
# line and its getopt entry drift apart.
set -u
. "$(dirname "$0")/tap.sh"

bin=${VMIG_BIN:?}
getopt_err='unrecognized option|requires an argument|allow an argument'

# The "  --name [ARG]" lines of a command's --help, as "name<TAB>ARG".
help_options() {
	"$bin" "$1" --help | while IFS= read -r line; do
		if [[ $line =~ ^\ \ --([a-z0-9-]+)(\ ([^ ]+( [^ ]+)*))?(\ {2,}.*)?$ ]]; then
			printf '%s\t%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}"
		fi
	done
}

# Run vmig CMD ARGS... with a trailing operand, so that nothing starts; stderr out.
parse_only() {
	local cmd=$1
	shift
	"$bin" "$cmd" "$@" stray-operand 2>&1 >/dev/null
}

for cmd in migrate listen guest; do
	opts=$(help_options $cmd)
	n=$(grep -c . <<<"$opts")
	check "$cmd: --help lists its options (found $n)" test "$n" -ge 10
	check "$cmd: no option is listed twice in --help" \
		test -z "$(cut -f1 <<<"$opts" | sort | uniq -d)"
	bad_known=() bad_arity=()
	while IFS=$'\t' read -r name arg; do
		[ "$name" = help ] && continue
		if [ -n "$arg" ]; then
			err=$(parse_only $cmd "--$name" 1)
			grep -Eq "$getopt_err" <<<"$err" && bad_known+=("--$name")
			err=$("$bin" $cmd "--$name" 2>&1 >/dev/null)
			grep -q "requires an argument" <<<"$err" || bad_arity+=("--$name")
		else
			err=$(parse_only $cmd "--$name")
			grep -Eq "$getopt_err" <<<"$err" && bad_known+=("--$name")
			err=$(parse_only $cmd "--$name=x")
			grep -q "allow an argument" <<<"$err" || bad_arity+=("--$name")
		fi
	done <<<"$opts"
	check "$cmd: getopt knows every option --help lists${bad_known:+ (not: ${bad_known[*]})}" \
		test ${#bad_known[@]} -eq 0
	check "$cmd: an option takes a value exactly when --help shows one${bad_arity:+ (not: ${bad_arity[*]})}" \
		test ${#bad_arity[@]} -eq 0
done

# The test-injection options (docs/testing.md): parsed, never shown.
for spec in "migrate inject-cut=pages:1" "migrate inject-corrupt=1" "migrate wire-version=1" \
	    "migrate inject-hint-before-tracking" "migrate inject-tls-binding=x" \
	    "migrate inject-no-reply-return"; do
	read -r cmd opt <<<"$spec"
	err=$(parse_only $cmd "--$opt")
	check "$cmd --${opt%%=*}: accepted" bash -c '! grep -Eq "$1" <<<"$2"' _ "$getopt_err" "$err"
	check "$cmd --${opt%%=*}: hidden from --help" \
		bash -c '! "$1" "$2" --help | grep -q -- "--$3"' _ "$bin" "$cmd" "${opt%%=*}"
done
tap_done
