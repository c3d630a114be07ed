/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Self-checking guest pages.  Guest RAM is a generation table (one u32 per
 * page, in the first pages of RAM, so it migrates with everything else)
 * followed by data pages.  A data page of generation 0 is all zero; of
 * generation g it holds a pattern derived from (index, g).  Whoever holds
 * the RAM can check any page against the table.
 */
#ifndef VMIG_GUEST_PAGE_H
#define VMIG_GUEST_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_PAGE_SIZE 4096u

/* Pages used by the table for a guest of npages. */
uint64_t guest_table_pages(uint64_t npages);
void guest_page_write(void *page, uint64_t index, uint32_t gen);
/* True if page holds generation gen of page index. */
bool guest_page_check(const void *page, uint64_t index, uint32_t gen);
/* What the page claims to be, for messages. */
void guest_page_describe(const void *page, uint64_t *index, uint32_t *gen);

#endif
