// SPDX-License-Identifier: GPL-2.0
#include <string.h>

#include "guest_page.h"
#include "zero.h"

#define WORDS (GUEST_PAGE_SIZE / 8)

uint64_t guest_table_pages(uint64_t npages)
{
	return (npages * 4 + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE;
}

static uint64_t seed(uint64_t index, uint32_t gen)
{
	return ((index << 32) | gen) * 0xd6e8feb86659fd93ull;
}

void guest_page_write(void *page, uint64_t index, uint32_t gen)
{
	uint64_t *w = page, s = seed(index, gen);
	unsigned int i;

	w[0] = (index << 32) | gen;
	for (i = 1; i < WORDS; i++)
		w[i] = s ^ (i * 0x9e3779b97f4a7c15ull);
}

bool guest_page_check(const void *page, uint64_t index, uint32_t gen)
{
	const uint64_t *w = page;
	uint64_t s = seed(index, gen);
	unsigned int i;

	if (!gen)
		return page_is_zero(page);
	if (w[0] != ((index << 32) | gen))
		return false;
	for (i = 1; i < WORDS; i++)
		if (w[i] != (s ^ (i * 0x9e3779b97f4a7c15ull)))
			return false;
	return true;
}

void guest_page_describe(const void *page, uint64_t *index, uint32_t *gen)
{
	const uint64_t *w = page;

	*index = w[0] >> 32;
	*gen = (uint32_t)w[0];
}
