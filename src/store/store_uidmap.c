/*
 * store_uidmap: a folder's UIDs at one moment, the sequence map of every
 * session that has the folder selected. A handle keeps the newest map of
 * each folder it was asked for and hands the same one to every caller
 * while the folder's HIGHESTMODSEQ stays, so a hundred sessions idling in
 * a folder of 50,000 messages hold one 200 KiB array, not a hundred; and
 * a SELECT costs a lookup instead of a walk over the folder's rows.
 *
 * When the folder changed, the next map is made from the previous one:
 * its UIDs, without those tombstoned since its MODSEQ, with the rows
 * above its last UID (UIDs only grow, and a folder's rows are committed
 * in UID order under the write lock, so a snapshot holds a prefix of
 * them). A map older than half the tombstones' retention is read whole
 * instead, as the tombstones it would need may be gone.
 *
 * Maps are never changed once made; their reference counts belong to the
 * thread that owns the handle (the loop, for the shared handles).
 * Public: store_uidmap, store_uidmap_release; store_int.h:
 * store_uidmap_drop_all.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"
#include "util/xalloc.h"

struct store_map {
	struct store_uidmap pub;     /* what callers see: first */
	int refs;
	int64_t folder;
	uint32_t uidvalidity;        /* a folder deleted and made again is another */
	long long made;
	struct store_map *next;      /* the handle's newest maps */
	uint32_t v[];
};

static struct store_map *
store_map_of(const struct store_uidmap *m)
{
	return (struct store_map *)(void *)((char *)(uintptr_t)m - offsetof(struct store_map, pub));
}

static struct store_map *
store_map_new(const struct store_frow *fr, uint32_t cap)
{
	struct store_map *m = xmalloc(sizeof(*m) + (size_t)cap * sizeof(uint32_t));

	m->refs = 1;
	m->folder = fr->id;
	m->uidvalidity = fr->uidvalidity;
	m->made = (long long)time(NULL);
	m->next = NULL;
	m->pub.modseq = fr->highestmodseq;
	m->pub.n = 0;
	m->pub.uids = m->v;
	return m;
}

static void
store_map_unref(struct store_map *m)
{
	if (m != NULL && --m->refs == 0)
		free(m);
}

/* Rows above after (a UID) into *mp, growing it: 0 or -1. */
static int
store_map_rows(struct store_account *a, int64_t folder, uint32_t after, struct store_map **mp,
	       uint32_t *cap)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_MSG_UIDS);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, STORE_MID(folder, (uint64_t)after + 1));
	sqlite3_bind_int64(st, 3, STORE_MID(folder, UINT32_MAX));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_map *m = *mp;

		if (m->pub.n == *cap) {
			*cap = *cap < 1024 ? 1024 : *cap * 2;
			m = xrealloc(m, sizeof(*m) + (size_t)*cap * sizeof(uint32_t));
			m->pub.uids = m->v;
			*mp = m;
		}
		m->v[m->pub.n++] = (uint32_t)(sqlite3_column_int64(st, 0) & 0xffffffff);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The previous map without the UIDs tombstoned since it was made. */
static struct store_map *
store_map_next(struct store_account *a, const struct store_map *old, const struct store_frow *fr)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_TOMB_SINCE);
	uint32_t cap = old->pub.n + 64, *gone = NULL, ngone = 0, agone = 0, k = 0;
	struct store_map *m;
	int rc;

	if (st == NULL)
		return NULL;
	sqlite3_bind_int64(st, 1, old->folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)old->pub.modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (ngone == agone) {
			agone = agone ? agone * 2 : 64;
			gone = xrealloc(gone, agone * sizeof(*gone));
		}
		gone[ngone++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(gone);
		return NULL;
	}
	m = store_map_new(fr, cap);
	/* both ascending: one merge */
	for (uint32_t i = 0; i < old->pub.n; i++) {
		while (k < ngone && gone[k] < old->v[i])
			k++;
		if (k < ngone && gone[k] == old->v[i])
			continue;
		m->v[m->pub.n++] = old->v[i];
	}
	free(gone);
	if (store_map_rows(a, old->folder, old->pub.n ? old->v[old->pub.n - 1] : 0, &m, &cap) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

/* The whole map from the folder's runs (uidruns, kept by triggers): as
 * many rows as the folder has gaps, not one per message. */
static struct store_map *
store_map_read(struct store_account *a, const struct store_frow *fr)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_RUNS);
	uint32_t cap = fr->messages + 16, n = 0;
	struct store_map *m;
	int rc;

	if (st == NULL)
		return NULL;
	m = store_map_new(fr, cap);
	sqlite3_bind_int64(st, 1, fr->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 lo = sqlite3_column_int64(st, 0), hi = sqlite3_column_int64(st, 1);

		if (lo < 1 || hi < lo || hi > UINT32_MAX || (n > 0 && lo <= m->v[n - 1]) ||
		    (uint64_t)(hi - lo) + 1 > (uint64_t)(cap - n)) {
			rc = SQLITE_CORRUPT;   /* runs and counters disagree: read the rows */
			break;
		}
		for (sqlite3_int64 u = lo; u <= hi; u++)
			m->v[n++] = (uint32_t)u;
	}
	sqlite3_reset(st);
	m->pub.n = n;
	if (rc == SQLITE_DONE && n == fr->messages)
		return m;
	m->pub.n = 0;
	cap = fr->messages + 16;
	if (store_map_rows(a, fr->id, 0, &m, &cap) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

const struct store_uidmap *
store_uidmap(struct store_folder *f)
{
	struct store_account *a = f->a;
	struct store_map **pp, *old = NULL, *m = NULL;
	struct store_frow fr;
	int in_txn;

	/* one snapshot: the counter and the rows agree */
	in_txn = sqlite3_get_autocommit(a->db) && store_index_exec(a, "BEGIN") == 0;
	if (store_index_folder_get(a, NULL, f->id, &fr) != 0)
		goto done;
	for (pp = &a->maps; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->folder == f->id)
			break;
	old = *pp;
	if (old != NULL && old->uidvalidity == fr.uidvalidity &&
	    old->pub.modseq == fr.highestmodseq) {
		m = old;
		goto done;
	}
	if (old != NULL && old->uidvalidity == fr.uidvalidity &&
	    (long long)time(NULL) - old->made < a->s->retention / 2)
		m = store_map_next(a, old, &fr);
	else
		m = store_map_read(a, &fr);
	if (m == NULL)
		goto done;
	/* the handle keeps the newest (one reference), the caller gets one */
	if (old != NULL) {
		*pp = old->next;
		store_map_unref(old);
	}
	m->next = a->maps;
	a->maps = m;
done:
	if (in_txn)
		store_index_exec(a, "COMMIT");
	if (m == NULL)
		return NULL;
	m->refs++;
	return &m->pub;
}

void
store_uidmap_release(const struct store_uidmap **mp)
{
	if (*mp == NULL)
		return;
	store_map_unref(store_map_of(*mp));
	*mp = NULL;
}

/* The handle's maps (sessions may keep theirs: they are theirs to
 * release). */
void
store_uidmap_drop_all(struct store_account *a)
{
	while (a->maps != NULL) {
		struct store_map *m = a->maps;

		a->maps = m->next;
		m->next = NULL;
		store_map_unref(m);
	}
}
