/*
 * imap_seqset: RFC 3501 sequence sets into sorted, merged ranges (see
 * imap_seqset.h). Public: imap_seqset_parse, imap_seqset_free,
 * imap_seqset_contains.
 *
 * The items are read into an array, sorted and merged, so the set's size
 * is bounded by the item count whatever the numbers are.
 */
#include "imap/imap_seqset.h"

#include <stdlib.h>

#include "util/xalloc.h"

#define IMAP_SEQSET_MAX_ITEMS 10000

/* One number or '*' (0 when star is 0: the item then names nothing). */
static int
seqset_number(const char **sp, uint32_t star, uint32_t *v_r, int *star_r)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s == '*') {
		*v_r = star;
		*star_r = 1;
		*sp = s + 1;
		return 0;
	}
	/* nz-number: no 0, no leading zero */
	if (*s < '1' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -1;
		s++;
	}
	*v_r = (uint32_t)v;
	*star_r = 0;
	*sp = s;
	return 0;
}

static int
seqset_cmp(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Sort and merge overlapping or adjacent ranges in place. */
static void
seqset_merge(struct imap_seqset *set)
{
	size_t out = 0;

	if (set->n == 0)
		return;
	qsort(set->r, set->n, sizeof(*set->r), seqset_cmp);
	for (size_t i = 1; i < set->n; i++) {
		if ((uint64_t)set->r[i][0] <= (uint64_t)set->r[out][1] + 1) {
			if (set->r[i][1] > set->r[out][1])
				set->r[out][1] = set->r[i][1];
		} else {
			out++;
			set->r[out][0] = set->r[i][0];
			set->r[out][1] = set->r[i][1];
		}
	}
	set->n = out + 1;
}

int
imap_seqset_parse(const char *s, uint32_t star, struct imap_seqset *set_r)
{
	size_t cap = 8, items = 0;

	set_r->r = xmalloc(cap * sizeof(*set_r->r));
	set_r->n = 0;
	for (;;) {
		uint32_t lo, hi;
		int lo_star, hi_star = 0;

		if (++items > IMAP_SEQSET_MAX_ITEMS || seqset_number(&s, star, &lo, &lo_star) < 0)
			goto fail;
		hi = lo;
		if (*s == ':') {
			s++;
			if (seqset_number(&s, star, &hi, &hi_star) < 0)
				goto fail;
		}
		/* '*' in an empty folder: the item is empty */
		if (!((lo_star || hi_star) && star == 0)) {
			if (lo > hi) {
				uint32_t t = lo;

				lo = hi;
				hi = t;
			}
			if (set_r->n == cap) {
				cap *= 2;
				set_r->r = xrealloc(set_r->r, cap * sizeof(*set_r->r));
			}
			set_r->r[set_r->n][0] = lo;
			set_r->r[set_r->n][1] = hi;
			set_r->n++;
		}
		if (*s == '\0')
			break;
		if (*s++ != ',')
			goto fail;
	}
	seqset_merge(set_r);
	return 0;
fail:
	imap_seqset_free(set_r);
	return -1;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t v)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v < set->r[mid][0])
			hi = mid;
		else if (v > set->r[mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}
