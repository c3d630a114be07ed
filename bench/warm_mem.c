// SPDX-License-Identifier: GPL-2.0
/*
 * warm_mem GIB: write GIB of anonymous memory in 2 MiB pages and free it.
 *
 * On a VM that reports its free memory to its host (virtio-balloon free
 * page reporting), a page the host took back costs a fault in the host at
 * its next first touch, and which pages a process gets depends on what was
 * freed how recently.  vs_qemu_bench.sh runs this right before each side's
 * migration so that both destinations allocate from memory the host backs,
 * as on a host without reporting, instead of whichever side follows the
 * larger free getting it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int main(int argc, char **argv)
{
	double gib = argc == 2 ? strtod(argv[1], NULL) : 0;
	size_t len = gib > 0 && gib < 1 << 20 ? (size_t)(gib * (1 << 30)) : 0;
	char *p;

	if (!len) {
		fprintf(stderr, "usage: warm_mem GIB\n");
		return 2;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("warm_mem: mmap");
		return 1;
	}
	madvise(p, len, MADV_HUGEPAGE);
	if (madvise(p, len, MADV_POPULATE_WRITE)) {
		size_t i;

		for (i = 0; i < len; i += 4096)
			p[i] = 1;
	}
	munmap(p, len);
	return 0;
}
