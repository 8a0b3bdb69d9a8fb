/*
 * guard: test buffers that end at an inaccessible page, so a parser that
 * reads one byte past its input faults and the test fails without valgrind.
 * Include after cmocka.h. guard_init: s[0..len) ends just before a
 * PROT_NONE page; guard_init_nul: the same followed by a NUL, the NUL being
 * the last readable byte.
 */
#ifndef TANDEM_TEST_GUARD_H
#define TANDEM_TEST_GUARD_H
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard {
	void *map;
	size_t maplen;
	char *p;
};

static void
guard_map(struct guard *g, const char *s, size_t len, int nul)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	size_t npages = (len + nul + ps - 1) / ps + 1;

	g->maplen = npages * ps;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect((char *)g->map + (npages - 1) * ps, ps, PROT_NONE), 0);
	g->p = (char *)g->map + (npages - 1) * ps - len - nul;
	memcpy(g->p, s, len);
	if (nul)
		g->p[len] = '\0';
}

static inline void
guard_init(struct guard *g, const char *s, size_t len)
{
	guard_map(g, s, len, 0);
}

static inline void
guard_init_nul(struct guard *g, const char *s, size_t len)
{
	guard_map(g, s, len, 1);
}

static inline void
guard_free(struct guard *g)
{
	munmap(g->map, g->maplen);
}

#endif
