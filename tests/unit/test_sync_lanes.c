/*
 * test_sync_lanes: durable_group_sync covers a caller only with a sync of
 * its own key that began after it arrived, shares one sync among those
 * that wait, reports a failure to everyone it may have cost; the worker
 * pool runs a client's job before waiting background ones, keeps a share
 * of threads for the background and never gives it all of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/worker.h"

static void
nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- group sync ---- */

struct fake {
	atomic_int calls;
	atomic_int writes;          /* writes made so far */
	atomic_int durable;         /* writes a finished sync made durable */
	int sleep_ms;
	int fail;
};

static int
fake_sync(void *arg)
{
	struct fake *f = arg;
	int seen = atomic_load(&f->writes);   /* what this sync covers */

	atomic_fetch_add(&f->calls, 1);
	nap_ms(f->sleep_ms);
	if (f->fail) {
		errno = EIO;
		return -1;
	}
	if (atomic_load(&f->durable) < seen)
		atomic_store(&f->durable, seen);
	return 0;
}

struct writer {
	struct durable_group *g;
	struct fake *f;
	const char *key;
	int rc, covered;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	int mine = atomic_fetch_add(&w->f->writes, 1) + 1;

	w->rc = durable_group_sync(w->g, w->key, fake_sync, w->f);
	/* the write this caller made must be durable when it returns 0 */
	w->covered = atomic_load(&w->f->durable) >= mine;
	return NULL;
}

static void
test_group_shares_and_covers(void **state)
{
	struct durable_group g;
	struct fake f = { .sleep_ms = 20 };
	struct writer w[16];
	pthread_t t[16];

	(void)state;
	durable_group_init(&g);
	for (int i = 0; i < 16; i++) {
		w[i] = (struct writer){ .g = &g, .f = &f, .key = "/mail/a/new" };
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, 0);
		assert_true(w[i].covered);
	}
	/* one sync at a time of 20 ms: sixteen callers cannot each have had
	 * their own (the first runs alone, the rest share the next ones) */
	assert_true(atomic_load(&f.calls) < 16);
	assert_true(atomic_load(&f.calls) >= 1);
	durable_group_free(&g);
}

static void
test_group_alone_syncs(void **state)
{
	struct durable_group g;
	struct fake f = { 0 };
	struct writer w = { .g = &g, .f = &f, .key = "k" };

	(void)state;
	durable_group_init(&g);
	for (int i = 0; i < 3; i++) {
		writer_main(&w);
		assert_int_equal(w.rc, 0);
		assert_true(w.covered);
	}
	/* nobody waits with it: each call is a sync of its own */
	assert_int_equal(atomic_load(&f.calls), 3);
	durable_group_free(&g);
}

struct other_key {
	struct durable_group *g;
	struct fake *fa, *fb;
};

static void *
sync_b_main(void *arg)
{
	struct other_key *o = arg;

	durable_group_sync(o->g, "b", fake_sync, o->fb);
	return NULL;
}

static void
test_group_other_key_does_not_cover(void **state)
{
	struct durable_group g;
	struct fake fa = { 0 }, fb = { .sleep_ms = 30 };
	struct other_key o = { &g, &fa, &fb };
	struct writer w = { .g = &g, .f = &fa, .key = "a" };
	pthread_t t;

	(void)state;
	durable_group_init(&g);
	/* a sync of "b" is running when the writer of "a" arrives */
	assert_int_equal(pthread_create(&t, NULL, sync_b_main, &o), 0);
	nap_ms(5);
	writer_main(&w);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	assert_true(w.covered);
	assert_int_equal(atomic_load(&fa.calls), 1);   /* "a" had a sync of its own */
	durable_group_free(&g);
}

static void
test_group_failure_reported(void **state)
{
	struct durable_group g;
	struct fake f = { .fail = 1 };
	struct writer w = { .g = &g, .f = &f, .key = "k" };

	(void)state;
	durable_group_init(&g);
	writer_main(&w);
	assert_int_equal(w.rc, -1);
	assert_int_equal(errno, EIO);
	/* the next caller syncs again, and a success is a success */
	f.fail = 0;
	writer_main(&w);
	assert_int_equal(w.rc, 0);
	assert_true(w.covered);
	durable_group_free(&g);
}

static void
test_group_long_key_alone(void **state)
{
	struct durable_group g;
	struct fake f = { 0 };
	char key[700];
	struct writer w = { .g = &g, .f = &f, .key = key };

	(void)state;
	memset(key, 'x', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	durable_group_init(&g);
	writer_main(&w);
	assert_int_equal(w.rc, 0);
	assert_true(w.covered);
	assert_int_equal(atomic_load(&f.calls), 1);
	durable_group_free(&g);
}

/* ---- worker lanes ---- */

static atomic_int bg_running, bg_peak, fg_done, bg_done, order_pos;
static int fg_order = -1;
static atomic_int release;

static void
bg_job(void *arg)
{
	int now = atomic_fetch_add(&bg_running, 1) + 1;

	(void)arg;
	for (int peak = atomic_load(&bg_peak); now > peak &&
	     !atomic_compare_exchange_weak(&bg_peak, &peak, now);)
		;
	while (!atomic_load(&release))
		nap_ms(1);
	atomic_fetch_sub(&bg_running, 1);
	atomic_fetch_add(&bg_done, 1);
	atomic_fetch_add(&order_pos, 1);
}

static void
fg_job(void *arg)
{
	(void)arg;
	fg_order = atomic_fetch_add(&order_pos, 1);
	atomic_fetch_add(&fg_done, 1);
}

static void
wait_for(atomic_int *v, int n)
{
	for (int i = 0; i < 5000 && atomic_load(v) < n; i++)
		nap_ms(1);
}

static struct event_base *
lanes_base(void)
{
	evthread_use_pthreads();
	return event_base_new();
}

static void
test_lanes_background_never_takes_all(void **state)
{
	struct event_base *base = lanes_base();
	struct worker_pool *p = worker_pool_new(base, 8);

	(void)state;
	atomic_store(&release, 0);
	atomic_store(&bg_peak, 0);
	atomic_store(&fg_done, 0);
	atomic_store(&bg_done, 0);
	atomic_store(&order_pos, 0);
	/* 20 background jobs that hold their threads: at most 6 of 8 run */
	for (int i = 0; i < 20; i++)
		worker_submit_background(p, bg_job, NULL, NULL);
	wait_for(&bg_running, 6);
	nap_ms(50);
	assert_int_equal(atomic_load(&bg_peak), 6);
	/* a client's job still finds a thread, before the waiting 14 */
	worker_submit(p, fg_job, NULL, NULL);
	wait_for(&fg_done, 1);
	assert_int_equal(atomic_load(&fg_done), 1);
	assert_int_equal(fg_order, 0);
	atomic_store(&release, 1);
	wait_for(&bg_done, 20);
	assert_int_equal(atomic_load(&bg_done), 20);
	worker_pool_free(&p);
	event_base_free(base);
}

static atomic_int fg_short_done, fg_done_at_bg;

static void
fg_short_job(void *arg)
{
	(void)arg;
	nap_ms(2);
	atomic_fetch_add(&fg_short_done, 1);
}

static void
bg_mark_job(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&bg_done, 1) == 0)
		atomic_store(&fg_done_at_bg, atomic_load(&fg_short_done));
}

static void
test_lanes_background_keeps_a_share(void **state)
{
	struct event_base *base = lanes_base();
	struct worker_pool *p = worker_pool_new(base, 8);

	(void)state;
	atomic_store(&fg_short_done, 0);
	atomic_store(&bg_done, 0);
	/* 400 clients' jobs queued ahead: a background job submitted after
	 * them still runs on the share kept for it, as soon as a thread is
	 * free, not after the clients' queue is empty */
	for (int i = 0; i < 400; i++)
		worker_submit(p, fg_short_job, NULL, NULL);
	worker_submit_background(p, bg_mark_job, NULL, NULL);
	wait_for(&bg_done, 1);
	wait_for(&fg_short_done, 400);
	assert_int_equal(atomic_load(&bg_done), 1);
	assert_int_equal(atomic_load(&fg_short_done), 400);
	assert_true(atomic_load(&fg_done_at_bg) < 300);
	worker_pool_free(&p);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_shares_and_covers),
		cmocka_unit_test(test_group_alone_syncs),
		cmocka_unit_test(test_group_other_key_does_not_cover),
		cmocka_unit_test(test_group_failure_reported),
		cmocka_unit_test(test_group_long_key_alone),
		cmocka_unit_test(test_lanes_background_never_takes_all),
		cmocka_unit_test(test_lanes_background_keeps_a_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
