// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Postcopy on the destination: register guest RAM for MISSING faults, in
 * the VMM's process (the mapping the vCPUs fault on).  The uffd goes to
 * the helper, which reads the faults and places pages with UFFDIO_COPY.
 */
#include "uffd_compat.h"
#include "uffd_track.h"

int uffd_missing_register(const struct uffd_span *spans, unsigned int n)
{
	return uffd_register_spans(uffd_create(UFFD_FEATURE_MISSING_SHMEM), spans, n,
				   UFFDIO_REGISTER_MODE_MISSING, 1ull << _UFFDIO_COPY);
}
