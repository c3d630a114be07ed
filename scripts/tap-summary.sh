#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Count TAP results in the given files: "ok" lines pass (or skip, with a
# "# SKIP" directive), "not ok" lines fail.  Prints the skipped tests with
# their reasons, then "N passed, N failed[, N skipped]".  Exits 1 if any
# test failed or no test ran at all.
set -uo pipefail
pass=0 fail=0 skip=0
while IFS= read -r line; do
	case $line in
	"not ok"*)
		fail=$((fail + 1))
		failed+=("$line") ;;
	"ok "*"# SKIP"* | "ok "*"# skip"*)
		skip=$((skip + 1))
		echo "skipped: ${line#ok }" ;;
	"ok "*)
		pass=$((pass + 1)) ;;
	esac
done < <(cat "$@" 2>/dev/null)
for l in "${failed[@]+"${failed[@]}"}"; do echo "failed: $l"; done
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ] && [ $((pass + skip)) -gt 0 ]
