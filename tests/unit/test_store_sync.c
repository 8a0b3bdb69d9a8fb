/*
 * test_store_sync: what lets an open skip the directory scan, and what
 * SELECT shares — the "directories seen" marks kept true through
 * overlapping deliveries (inferred, then checked in the background,
 * which finds a file another program dropped in meanwhile), and the
 * UID maps a handle shares among its callers and makes anew from the
 * previous one after deliveries, expunges and a folder made again; and
 * the upgrade of an index from version 1; the UID runs the triggers keep,
 * against the rows, through random deliveries, expunges and a folder's
 * deletion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store.h"
#include "store/store_int.h"
#include "util/worker.h"

#define ADDR "alice@example.com"
#define THREADS 4
#define EACH 25

struct fx {
	char dir[64];
	char root[STORE_PATH];
	struct event_base *base;
	struct worker_pool *pool;
	struct store *s;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_settings set = { 0 };
	const char *err;
	struct store_account *a;

	strcpy(fx->dir, "/tmp/tandem-test-sync-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	evthread_use_pthreads();
	fx->base = event_base_new();
	fx->pool = worker_pool_new(fx->base, 2);
	set.data_dir = fx->dir;
	set.expunged_retention = 86400;
	set.pool = fx->pool;
	fx->s = store_new(&set, NULL, &err);
	assert_non_null(fx->s);
	a = store_account_open(fx->s, ADDR, &err);
	assert_non_null(a);
	store_account_close(&a);
	maildir_path(fx->dir, ADDR, fx->root, sizeof(fx->root));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	worker_pool_free(&fx->pool);
	store_free(&fx->s);
	event_base_free(fx->base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	free(fx);
	return system(cmd) == 0 ? 0 : -1;
}

static int
deliver(struct store *s, const char *qid)
{
	char buf[256];
	FILE *f = tmpfile();
	int n = snprintf(buf, sizeof(buf), "From: bob@example.org\r\nSubject: %s\r\n\r\nHi\r\n", qid);
	const char *err = NULL;
	int rc;

	fwrite(buf, 1, n, f);
	fflush(f);
	rc = store_deliver(s, ADDR, NULL, qid, "", fileno(f), 0, n, 0, NULL, &err);
	fclose(f);
	return rc;
}

struct runner {
	struct store *s;
	int id;
	int *done;          /* deliveries finished, all threads (atomic) */
};

static void *
run(void *arg)
{
	struct runner *r = arg;

	for (int i = 0; i < EACH; i++) {
		char qid[32];

		snprintf(qid, sizeof(qid), "Q%02d%03d", r->id, i);
		if (deliver(r->s, qid) != STORE_OK)
			return (void *)1;
		__atomic_add_fetch(r->done, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/* THREADS threads delivering EACH messages at once; with drop, a file
 * from elsewhere lands in new/ while they run. */
static void
deliver_at_once(struct fx *fx, int round, int drop)
{
	pthread_t t[THREADS];
	struct runner r[THREADS];
	int done = 0, dropped = !drop;

	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct runner){ fx->s, round * THREADS + i, &done };
		assert_int_equal(pthread_create(&t[i], NULL, run, &r[i]), 0);
	}
	while (!dropped) {
		int n = __atomic_load_n(&done, __ATOMIC_SEQ_CST);

		if (n >= THREADS * EACH / 3) {
			char p[STORE_PATH + 64];
			FILE *f;

			snprintf(p, sizeof(p), "%s/new/1700000000.foreign.host", fx->root);
			f = fopen(p, "w");
			assert_non_null(f);
			fputs("From: x@example.org\nSubject: foreign\n\nbody\n", f);
			fclose(f);
			dropped = 1;
		} else {
			usleep(200);
		}
	}
	for (int i = 0; i < THREADS; i++) {
		void *rv;

		pthread_join(t[i], &rv);
		assert_null(rv);
	}
}

struct frow {
	long long sync_new, sync_cur;
	int checked, messages;
};

static void
inbox_row(struct fx *fx, struct frow *r)
{
	char p[STORE_PATH + 16];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(p, sizeof(p), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT sync_new, sync_cur, sync_checked, messages"
					    " FROM folders WHERE name = 'INBOX'", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	r->sync_new = sqlite3_column_int64(st, 0);
	r->sync_cur = sqlite3_column_int64(st, 1);
	r->checked = sqlite3_column_int(st, 2);
	r->messages = sqlite3_column_int(st, 3);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static long long
mtime_ns(struct fx *fx, const char *sub)
{
	char p[STORE_PATH + 8];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", fx->root, sub);
	assert_int_equal(stat(p, &sb), 0);
	return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

static void
test_overlapping_deliveries_keep_the_marks(void **state)
{
	struct fx *fx = *state;
	struct frow r;

	deliver_at_once(fx, 0, 0);
	inbox_row(fx, &r);
	assert_int_equal(r.messages, THREADS * EACH);
	/* the last one in moved the marks past every file: no scan needed */
	assert_true(r.sync_new == mtime_ns(fx, "new"));
	assert_true(r.sync_cur == mtime_ns(fx, "cur"));
	/* ... but only inferred: the next open has them checked */
	assert_int_equal(r.checked, 0);
}

static void
test_a_foreign_file_among_them_is_found(void **state)
{
	struct fx *fx = *state;
	const char *err = NULL;
	struct store_account *a;
	struct store_folder *f;
	struct store_folder_info fi;
	struct frow r;
	int n = 0;

	deliver_at_once(fx, 0, 1);
	a = store_account_open(fx->s, ADDR, &err);
	assert_non_null(a);
	/* the open may trust the marks; a worker scans behind it */
	f = store_folder_open(a, "INBOX", NULL, &err);
	assert_non_null(f);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(store_folder_info(f, &fi), 0);
		if ((n = (int)fi.messages) == THREADS * EACH + 1)
			break;
		usleep(10000);
	}
	assert_int_equal(n, THREADS * EACH + 1);
	inbox_row(fx, &r);
	assert_int_equal(r.messages, THREADS * EACH + 1);
	store_folder_close(&f);
	store_account_close(&a);
}

static int
has(const struct store_uidmap *m, uint32_t uid)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (m->uids[i] == uid)
			return 1;
	return 0;
}

static void
test_uid_maps_are_shared_and_made_anew(void **state)
{
	struct fx *fx = *state;
	const char *err = NULL;
	struct store_account *a = store_account_open(fx->s, ADDR, &err);
	const struct store_uidmap *m1, *m2, *m3, *m4;
	struct store_folder *f;
	uint32_t r[1][2] = { { 2, 2 } };
	struct store_uidset two = { (const uint32_t(*)[2])r, 1 };

	assert_non_null(a);
	for (int i = 0; i < 5; i++) {
		char qid[16];

		snprintf(qid, sizeof(qid), "M%d", i);
		assert_int_equal(deliver(fx->s, qid), STORE_OK);
	}
	assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));
	m1 = store_uidmap(f);
	m2 = store_uidmap(f);
	assert_non_null(m1);
	assert_ptr_equal(m1, m2);   /* nothing changed: the same map */
	assert_int_equal(m1->n, 5);
	/* a delivery and an expunge: the next map has 6 and not 2, made from
	 * the previous one; the old stays as it was for whoever holds it */
	assert_int_equal(deliver(fx->s, "M5"), STORE_OK);
	assert_int_equal(store_flags(f, &two, STORE_FLAGS_ADD, STORE_F_DELETED, NULL, 0, NULL,
				     NULL, NULL, &err),
			 STORE_OK);
	assert_int_equal(store_expunge(f, &two, NULL, NULL, &err), 0);
	m3 = store_uidmap(f);
	assert_non_null(m3);
	assert_ptr_not_equal(m3, m1);
	assert_int_equal(m3->n, 5);
	assert_false(has(m3, 2));
	assert_true(has(m3, 6));
	assert_int_equal(m3->uids[m3->n - 1], 6);
	assert_int_equal(m1->n, 5);
	assert_true(has(m1, 2));
	store_uidmap_release(&m1);
	store_uidmap_release(&m2);
	assert_null(m1);
	store_uidmap_release(&m3);
	store_folder_close(&f);
	/* a folder deleted and made again is another, even with its id */
	assert_int_equal(store_folder_create(a, "Work", 0, &err), 0);
	{
		const char *e2 = NULL;
		char buf[] = "Subject: w\r\n\r\nw\r\n";
		FILE *t = tmpfile();

		fwrite(buf, 1, sizeof(buf) - 1, t);
		fflush(t);
		assert_int_equal(store_deliver(fx->s, ADDR, "Work", "W1", "", fileno(t), 0,
					       (long long)sizeof(buf) - 1, 0, NULL, &e2),
				 STORE_OK);
		fclose(t);
	}
	assert_non_null(f = store_folder_open(a, "Work", NULL, &err));
	m4 = store_uidmap(f);
	assert_int_equal(m4->n, 1);
	store_uidmap_release(&m4);
	store_folder_close(&f);
	assert_int_equal(store_folder_delete(a, "Work", &err), 0);
	assert_int_equal(store_folder_create(a, "Work", 0, &err), 0);
	assert_non_null(f = store_folder_open(a, "Work", NULL, &err));
	m4 = store_uidmap(f);
	assert_int_equal(m4->n, 0);
	store_uidmap_release(&m4);
	store_folder_close(&f);
	store_account_close(&a);
}

static void
sql(struct fx *fx, const char *q, int *result)
{
	char p[STORE_PATH + 16];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(p, sizeof(p), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	if (result == NULL) {
		assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
	} else {
		assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
		*result = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

/* An index of version 1 (and one an older tandem set back to 1 after
 * the upgrade) opens as version 3 with its messages and their runs. */
static void
test_index_upgrade(void **state)
{
	struct fx *fx = *state;
	struct store_settings set = { fx->dir, 86400, fx->pool };
	const char *err = NULL;
	struct store_account *a;
	struct store_folder *f;
	const struct store_uidmap *m;
	int v;

	for (int i = 0; i < 3; i++) {
		char qid[16];

		snprintf(qid, sizeof(qid), "U%d", i);
		assert_int_equal(deliver(fx->s, qid), STORE_OK);
	}
	for (int round = 0; round < 2; round++) {
		store_free(&fx->s);
		if (round == 0)
			sql(fx, "ALTER TABLE folders DROP COLUMN sync_checked; DROP INDEX msg_folder;"
				" DROP TRIGGER msg_ins_run; DROP TRIGGER msg_del_run; DROP TABLE uidruns;"
				" PRAGMA user_version = 1", NULL);
		else
			sql(fx, "PRAGMA user_version = 1", NULL);
		assert_non_null(fx->s = store_new(&set, NULL, &err));
		assert_non_null(a = store_account_open(fx->s, ADDR, &err));
		assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));
		assert_non_null(m = store_uidmap(f));
		assert_int_equal(m->n, 3);
		store_uidmap_release(&m);
		store_folder_close(&f);
		store_account_close(&a);
		sql(fx, "PRAGMA user_version", &v);
		assert_int_equal(v, 3);
		sql(fx, "SELECT count(*) FROM uidruns", &v);
		assert_int_equal(v, 1);   /* INBOX 1..3 */
		sql(fx, "SELECT count(*) FROM pragma_index_list('messages') WHERE name = 'msg_folder'",
		    &v);
		assert_int_equal(v, 1);
	}
}

/* Do the runs of every folder agree with its rows? */
static void
runs_agree(struct fx *fx)
{
	char p[STORE_PATH + 16];
	sqlite3 *db;
	sqlite3_stmt *st;
	int bad = -1;

	snprintf(p, sizeof(p), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	/* every row inside exactly one run, and runs cover only rows */
	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT (SELECT count(*) FROM messages m WHERE (SELECT count(*) FROM uidruns r"
		"  WHERE r.folder = m.folder AND (m.id & 4294967295) BETWEEN r.lo AND r.hi) != 1)"
		" + (SELECT count(*) FROM uidruns r WHERE r.hi - r.lo + 1 != (SELECT count(*)"
		"  FROM messages m WHERE m.folder = r.folder AND (m.id & 4294967295)"
		"  BETWEEN r.lo AND r.hi))"
		" + (SELECT count(*) FROM uidruns a JOIN uidruns b ON a.folder = b.folder"
		"  AND b.lo = a.hi + 1)", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	bad = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(bad, 0);
}

static void
test_uid_runs_follow_the_rows(void **state)
{
	struct fx *fx = *state;
	const char *err = NULL;
	struct store_account *a = store_account_open(fx->s, ADDR, &err);
	struct store_folder *f;
	unsigned seed = 7;
	int q = 0;

	assert_non_null(a);
	assert_int_equal(store_folder_create(a, "Work", 0, &err), 0);
	for (int round = 0; round < 4; round++) {
		const struct store_uidmap *m;
		uint32_t r[8][2];
		struct store_uidset set = { (const uint32_t(*)[2])r, 0 };

		for (int i = 0; i < 60; i++) {
			char qid[16];

			snprintf(qid, sizeof(qid), "R%d", q++);
			assert_int_equal(deliver(fx->s, qid), STORE_OK);
		}
		assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));
		for (size_t k = 0; k < 8; k++) {
			uint32_t lo = 1 + rand_r(&seed) % (uint32_t)q;

			r[k][0] = lo;
			r[k][1] = lo + rand_r(&seed) % 4;
		}
		set.n = 8;
		assert_int_equal(store_flags(f, &set, STORE_FLAGS_ADD, STORE_F_DELETED, NULL, 0, NULL,
					     NULL, NULL, &err),
				 STORE_OK);
		set.n = 4;   /* UID EXPUNGE of half of them, then the others */
		assert_int_equal(store_expunge(f, &set, NULL, NULL, &err), 0);
		runs_agree(fx);
		assert_int_equal(store_expunge(f, NULL, NULL, NULL, &err), 0);
		runs_agree(fx);
		r[0][0] = 1;
		r[0][1] = (uint32_t)q;
		set.n = 1;
		if (round % 2 == 0)
			assert_int_equal(store_copy(f, &set, "Work", round == 2, 0, NULL, NULL, NULL, NULL,
						    &err),
					 STORE_OK);
		runs_agree(fx);
		/* a whole read of the map (from the runs) is what the rows say */
		store_uidmap_drop_all(a);
		assert_non_null(m = store_uidmap(f));
		{
			struct store_folder_info fi;

			assert_int_equal(store_folder_info(f, &fi), 0);
			assert_int_equal(m->n, fi.messages);
			for (uint32_t i = 1; i < m->n; i++)
				assert_true(m->uids[i - 1] < m->uids[i]);
		}
		store_uidmap_release(&m);
		store_folder_close(&f);
	}
	assert_int_equal(store_folder_delete(a, "Work", &err), 0);
	runs_agree(fx);
	store_account_close(&a);
	/* runs gone wrong: verify says so, repair mends them */
	sql(fx, "UPDATE uidruns SET hi = hi + 1 WHERE lo = (SELECT max(lo) FROM uidruns)", NULL);
	{
		FILE *out = tmpfile();

		assert_true(store_verify(fx->s, ADDR, 0, out, &err) >= 1);
		assert_true(store_verify(fx->s, ADDR, 1, out, &err) >= 1);
		assert_int_equal(store_verify(fx->s, ADDR, 0, out, &err), 0);
		fclose(out);
	}
	runs_agree(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_overlapping_deliveries_keep_the_marks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_foreign_file_among_them_is_found, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uid_maps_are_shared_and_made_anew, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uid_runs_follow_the_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
