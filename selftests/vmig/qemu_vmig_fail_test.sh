#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vmig qemu when things go wrong (cases of qemu_vmig_test.sh): the
# destination QEMU killed mid-precopy, a load the destination QEMU refuses,
# a running QEMU offered as a destination.  In each the source guest runs
# on and verifies every page.
QVM_CASES="kill refuse notincoming" exec sh "$(dirname "$0")/qemu_vmig_test.sh"
