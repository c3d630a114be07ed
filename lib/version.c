// SPDX-License-Identifier: LGPL-2.1-or-later
#include "libvmig.h"

#ifndef VMIG_VERSION
#define VMIG_VERSION "0.0.0"
#endif

const char *vmig_version(void)
{
	return VMIG_VERSION;
}
