#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make demo: a migration on this machine with embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" all
echo "vmig demo: the migration engine is not built yet (see README, 'Status')." >&2
build/out/vmig info
exit 1
