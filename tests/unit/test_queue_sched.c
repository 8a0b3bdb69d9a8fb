/*
 * test_queue_sched: the scheduler on a real queue directory, a real worker
 * pool and event loop, with a fake clock (struct sched_clock) and fake
 * transports, so retries, lifetimes and timers are tested without sleeping:
 * backoff between retry_min and retry_max, expiry into one DSN, waiting and
 * wake, rescan, corrupt files going to corrupt/ (never a second delivery),
 * a meta file that cannot be read, and flushes that coalesce.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/addr.h"
#include "queue/queue.h"
#include "queue/queue_sched.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/worker.h"

#define T0 1700000000.0

static char dir[64];
static struct event_base *base;
static struct worker_pool *pool;
static struct queue *q;
static struct sched *s;
static struct config cf;
static double fake_now;

/* What the fake transport answers: per recipient index, for mail from a
 * real sender; DSNs (from <>) are always delivered, and counted. */
static enum rcpt_status script[4];
/* counted on the worker threads, several at once */
static _Atomic int calls, dsn_calls;
static char dsn_rcpt[256];

/* Remote deliveries held open by the fake remote transport. */
struct held {
	struct rcpt_result *res;
	int nrcpt;
	void (*done)(void *);
	void *arg;
};
static struct held held[64];
static int nheld;

static double
test_clock(void *arg)
{
	return fake_now;
}

static void
fake_transport(void *arg, const struct queue_env *env, int fd, off_t body_off,
	       const struct queue_meta *meta, struct rcpt_result *res)
{
	if (env->sender[0] == '\0') {
		dsn_calls++;
		snprintf(dsn_rcpt, sizeof(dsn_rcpt), "%s", env->rcpt[0]);
		for (int i = 0; i < env->nrcpt; i++)
			sched_result_set(&res[i], RCPT_DONE, "2.0.0", "delivered");
		return;
	}
	calls++;
	for (int i = 0; i < env->nrcpt; i++) {
		if (i < meta->ndone && meta->done[i])
			continue;
		sched_result_set(&res[i], script[i < 4 ? i : 3],
				 script[i] == RCPT_PERM ? "5.1.1" : "4.3.0", "scripted result %d", i);
	}
}

static void
fake_remote(void *arg, const struct queue_env *env, int fd, off_t body_off, const char *prefix,
	    struct rcpt_result *res, void (*done)(void *), void *done_arg)
{
	assert_true(nheld < 64);
	held[nheld++] = (struct held){ res, env->nrcpt, done, done_arg };
}

/* Run the loop until nothing is in flight but the remote deliveries held
 * here: facts, not time. */
static void
run_idle(void)
{
	while (sched_in_flight(s) > (unsigned)nheld)
		event_base_loop(base, EVLOOP_ONCE);
}

/* Run until n remote deliveries are held (or nothing else can come). */
static void
run_until_held(int n)
{
	while (nheld < n && sched_in_flight(s) > (unsigned)nheld)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(nheld, n);
}

/* Finish every held remote delivery with status st. */
static void
release_held(enum rcpt_status st)
{
	int n = nheld;

	nheld = 0;
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < held[i].nrcpt; k++)
			if (held[i].res[k].status == RCPT_REMOTE)
				sched_result_set(&held[i].res[k], st, "4.4.1", "remote says later");
		held[i].done(held[i].arg);
	}
}

static int
setup(void **state)
{
	struct sched_clock clock = { test_clock, NULL };

	snprintf(dir, sizeof(dir), "/tmp/tandem-test-sched-XXXXXX");
	assert_non_null(mkdtemp(dir));
	q = queue_open(dir, (char[256]){ 0 }, 256);
	assert_non_null(q);
	memset(&cf, 0, sizeof(cf));
	cf.hostname = "mx.example.test";
	cf.data_dir = dir;
	cf.retry_min = 60;
	cf.retry_max = 300;
	cf.lifetime = 3600;
	cf.workers = 2;
	base = event_base_new();
	pool = worker_pool_new(base, 2);
	s = sched_new(base, pool, q, &cf, fake_transport, NULL);
	sched_set_clock(s, &clock);
	fake_now = T0;
	calls = dsn_calls = nheld = 0;
	dsn_rcpt[0] = '\0';
	for (int i = 0; i < 4; i++)
		script[i] = RCPT_DONE;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	sched_free(&s);
	worker_pool_free(&pool);
	event_base_free(base);
	queue_close(&q);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Commit a message from s@example.org to rcpt[0..n). */
static void
put_msg(const char *const *rcpt, int n, char qid[QUEUE_ID_LEN + 1])
{
	struct queue_env env;
	struct queue_in *in;
	const char *body = "Subject: test\r\n\r\nhello\r\n";

	memset(&env, 0, sizeof(env));
	env.arrival = (long long)fake_now;
	env.sender = "s@example.org";
	for (int i = 0; i < n; i++)
		queue_env_add_rcpt(&env, rcpt[i]);
	env.client = "127.0.0.1";
	env.helo = "client";
	env.proto = "ESMTP";
	in = queue_in_create(q, &env);
	assert_non_null(in);
	assert_int_equal(queue_in_write(in, body, strlen(body)), 0);
	assert_int_equal(queue_in_commit(in), 0);
	snprintf(qid, QUEUE_ID_LEN + 1, "%s", queue_in_qid(in));
	queue_in_free(&in);
	for (int i = 0; i < env.nrcpt; i++)
		free(env.rcpt[i]);
	free(env.rcpt);
}

static void
add_msg(const char *const *rcpt, int n, char qid[QUEUE_ID_LEN + 1])
{
	put_msg(rcpt, n, qid);
	sched_add(s, qid, (char *const *)rcpt, n);
}

static int
state_of(const char *qid)
{
	enum queue_state st;

	return queue_find(q, qid, &st) == 0 ? (int)st : -1;
}

static void
read_meta(const char *qid, struct queue_meta *m)
{
	assert_int_equal(queue_meta_read(q, qid, m), 0);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* --- backoff ------------------------------------------------------------- */

static void
test_backoff_function(void **state)
{
	assert_int_equal(sched_backoff(&cf, 1), 60);
	assert_int_equal(sched_backoff(&cf, 2), 120);
	assert_int_equal(sched_backoff(&cf, 3), 240);
	assert_int_equal(sched_backoff(&cf, 4), 300);   /* retry_max caps it */
	assert_int_equal(sched_backoff(&cf, 50), 300);
	assert_int_equal(sched_backoff(&cf, 1000000), 300);
}

static void
test_backoff_between_attempts(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	const unsigned expect[] = { 60, 120, 240, 300, 300 };
	char qid[QUEUE_ID_LEN + 1];
	struct queue_meta m;

	script[0] = RCPT_TEMP;
	add_msg(rcpt, 1, qid);
	run_idle();
	for (int k = 0; k < 5; k++) {
		assert_int_equal(calls, k + 1);
		assert_int_equal(state_of(qid), Q_DEFERRED);
		read_meta(qid, &m);
		assert_int_equal(m.attempts, k + 1);
		assert_int_equal(m.next_attempt, (long long)fake_now + expect[k]);
		assert_int_equal(m.nlast, 1);
		assert_int_equal(m.last[0].state, QR_DEFERRED);
		assert_string_equal(m.last[0].dsn, "4.3.0");
		/* not due yet: nothing happens, however often the timers are run */
		fake_now = (double)m.next_attempt - 1;
		sched_run_due(s);
		run_idle();
		assert_int_equal(calls, k + 1);
		fake_now = (double)m.next_attempt;
		queue_meta_clear(&m);
		sched_run_due(s);
		run_idle();
	}
}

/* --- lifetime ------------------------------------------------------------ */

static void
test_lifetime_expiry_bounces_once(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	char qid[QUEUE_ID_LEN + 1];
	struct queue_meta m;

	script[0] = RCPT_TEMP;
	add_msg(rcpt, 1, qid);
	run_idle();
	assert_int_equal(state_of(qid), Q_DEFERRED);
	/* past the lifetime: the next attempt still fails, so it bounces */
	fake_now = T0 + cf.lifetime + 1;
	sched_run_due(s);
	run_idle();
	assert_int_equal(calls, 2);
	assert_int_equal(state_of(qid), -1);            /* removed */
	assert_int_equal(queue_meta_read(q, qid, &m), 1);   /* and its meta */
	assert_int_equal(dsn_calls, 1);                 /* one DSN, delivered */
	assert_string_equal(dsn_rcpt, "s@example.org");
	fake_now += 10000;
	sched_run_due(s);
	run_idle();
	assert_int_equal(dsn_calls, 1);
	assert_int_equal(calls, 2);
}

static void
test_permanent_failure_bounces_and_keeps_the_rest(void **state)
{
	const char *rcpt[] = { "a@example.test", "b@example.test" };
	char qid[QUEUE_ID_LEN + 1];
	struct queue_meta m;

	script[0] = RCPT_PERM;
	script[1] = RCPT_TEMP;
	add_msg(rcpt, 2, qid);
	run_idle();
	assert_int_equal(dsn_calls, 1);
	assert_int_equal(state_of(qid), Q_DEFERRED);
	read_meta(qid, &m);
	assert_int_equal(m.done[0], 1);
	assert_true(m.ndone < 2 || m.done[1] == 0);
	assert_int_equal(m.last[0].state, QR_BOUNCED);
	assert_string_equal(m.last[0].dsn, "5.1.1");
	assert_int_equal(m.last[1].state, QR_DEFERRED);
	queue_meta_clear(&m);
}

/* --- waiting and wake ---------------------------------------------------- */

static void
test_waiting_and_wake(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	char qid[QUEUE_ID_LEN + 1];

	put_msg(rcpt, 1, qid);
	sched_add_waiting(s, qid, (char *const *)rcpt, 1);
	run_idle();
	assert_int_equal(calls, 0);   /* nothing attempted while it waits */
	sched_rescan(s);              /* a rescan does not hurry it either */
	run_idle();
	assert_int_equal(calls, 0);
	/* a transport that says "not now" keeps it waiting, without an attempt count */
	script[0] = RCPT_WAIT;
	sched_wake_waiting(s);
	run_idle();
	assert_int_equal(calls, 1);
	assert_int_equal(state_of(qid), Q_ACTIVE);
	script[0] = RCPT_DONE;
	sched_wake_waiting(s);
	run_idle();
	assert_int_equal(calls, 2);
	assert_int_equal(state_of(qid), -1);
}

static void
test_waiting_is_looked_at_by_the_lifetime(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	char qid[QUEUE_ID_LEN + 1];

	put_msg(rcpt, 1, qid);
	sched_add_waiting(s, qid, (char *const *)rcpt, 1);
	run_idle();
	fake_now = T0 + cf.retry_max;   /* looked at every retry_max */
	sched_run_due(s);
	run_idle();
	assert_int_equal(calls, 1);
}

/* --- rescan -------------------------------------------------------------- */

static void
test_rescan_finds_new_files_and_does_not_hurry(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	char q1[QUEUE_ID_LEN + 1], q2[QUEUE_ID_LEN + 1];

	script[0] = RCPT_TEMP;
	add_msg(rcpt, 1, q1);
	run_idle();
	assert_int_equal(calls, 1);
	put_msg(rcpt, 1, q2);   /* e.g. `tandem sendmail` while the server runs */
	sched_rescan(s);
	run_idle();
	assert_int_equal(calls, 2);   /* q2 attempted, q1 left to its backoff */
	assert_int_equal(state_of(q2), Q_DEFERRED);
	sched_rescan(s);
	run_idle();
	assert_int_equal(calls, 2);
}

static void
test_start_schedules_by_meta(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	char qid[QUEUE_ID_LEN + 1];
	struct queue_meta m = { 0 };

	put_msg(rcpt, 1, qid);
	m.attempts = 3;
	m.next_attempt = (long long)T0 + 100;
	assert_int_equal(queue_meta_write(q, qid, &m), 0);
	assert_int_equal(queue_move(q, qid, Q_ACTIVE, Q_DEFERRED), 0);
	sched_start(s);
	run_idle();
	assert_int_equal(calls, 0);
	fake_now = T0 + 100;
	sched_run_due(s);
	run_idle();
	assert_int_equal(calls, 1);
	assert_int_equal(state_of(qid), -1);
}

/* --- corrupt files ------------------------------------------------------- */

static void
test_corrupt_queue_file_goes_to_corrupt(void **state)
{
	char path[4096];
	const char *qid = "0000000100000001";

	queue_path(q, Q_ACTIVE, qid, path, sizeof(path));
	write_file(path, "TQ1\nthis is not a record\n");
	sched_start(s);
	run_idle();
	assert_int_equal(calls, 0);
	assert_int_equal(state_of(qid), Q_CORRUPT);
	/* nothing takes it from there: not a rescan, not a flush */
	sched_rescan(s);
	sched_flush(s);
	run_idle();
	assert_int_equal(state_of(qid), Q_CORRUPT);
	/* but it can be deleted */
	assert_int_equal(queue_remove(q, qid, Q_CORRUPT), 0);
	assert_int_equal(state_of(qid), -1);
}

static void
test_corrupt_meta_is_never_delivered_again(void **state)
{
	const char *rcpt[] = { "a@example.test", "b@example.test" };
	char qid[QUEUE_ID_LEN + 1], path[4096];

	/* a was delivered, b deferred; then the meta file is damaged */
	script[1] = RCPT_TEMP;
	add_msg(rcpt, 2, qid);
	run_idle();
	assert_int_equal(calls, 1);
	snprintf(path, sizeof(path), "%s/queue/meta/%s", dir, qid);
	write_file(path, "A1:1\nD1:0\nR1:0\nS1:9\nZ0:\n");   /* state 9 does not exist */
	sched_flush(s);
	run_idle();
	/* not attempted: its meta was the record that a is served */
	assert_int_equal(calls, 1);
	assert_int_equal(state_of(qid), Q_CORRUPT);
	/* a torn meta (no end record) is corrupt as well, not "no meta" */
	write_file(path, "A1:1\nD1:0\n");
	assert_int_equal(queue_meta_read(q, qid, &(struct queue_meta){ 0 }), -1);
}

static void
test_unreadable_meta_defers_without_delivery(void **state)
{
	const char *rcpt[] = { "a@example.test" };
	char qid[QUEUE_ID_LEN + 1], path[4096];

	put_msg(rcpt, 1, qid);
	/* a meta "file" that cannot be read (EISDIR): a failure of the disk,
	 * not of the message; nothing is delivered, nothing moved */
	snprintf(path, sizeof(path), "%s/queue/meta/%s", dir, qid);
	assert_int_equal(mkdir(path, 0700), 0);
	sched_add(s, qid, (char *const *)rcpt, 1);
	run_idle();
	assert_int_equal(calls, 0);
	assert_int_equal(state_of(qid), Q_ACTIVE);
	/* retried after retry_min, once it reads again */
	assert_int_equal(rmdir(path), 0);
	fake_now = T0 + cf.retry_min;
	sched_run_due(s);
	run_idle();
	assert_int_equal(calls, 1);
	assert_int_equal(state_of(qid), -1);
}

/* --- flush coalescing ---------------------------------------------------- */

static void
remote_transport(void *arg, const struct queue_env *env, int fd, off_t body_off,
		 const struct queue_meta *meta, struct rcpt_result *res)
{
	calls++;
	for (int i = 0; i < env->nrcpt; i++)
		sched_result_set(&res[i], RCPT_REMOTE, "4.4.0", "remote");
}

static void
test_flushes_coalesce(void **state)
{
	const char *rcpt[] = { "a@relay.test" };
	char qid[10][QUEUE_ID_LEN + 1];

	sched_free(&s);
	s = sched_new(base, pool, q, &cf, remote_transport, NULL);
	sched_set_clock(s, &(struct sched_clock){ test_clock, NULL });
	sched_set_remote(s, fake_remote, NULL);
	for (int i = 0; i < 10; i++)
		add_msg(rcpt, 1, qid[i]);
	run_until_held(10);
	assert_int_equal(calls, 10);
	/* 20 ETRNs while every message is in flight: each one counted, but
	 * only the first asks for one more attempt of each */
	for (int k = 0; k < 20; k++)
		assert_int_equal(sched_flush_domain(s, "relay.test"), 10);
	assert_int_equal(sched_flush_domain(s, "other.test"), 0);
	release_held(RCPT_TEMP);
	run_until_held(10);
	assert_int_equal(calls, 20);
	/* in flight for the flush: more flushes add nothing */
	for (int k = 0; k < 20; k++)
		sched_flush_domain(s, "relay.test");
	sched_flush(s);
	release_held(RCPT_TEMP);
	run_idle();
	assert_int_equal(nheld, 0);
	assert_int_equal(calls, 20);
	/* all deferred now: a flush attempts each once more, however many */
	for (int k = 0; k < 20; k++)
		assert_int_equal(sched_flush_domain(s, "relay.test"), 10);
	run_until_held(10);
	assert_int_equal(calls, 30);
	release_held(RCPT_DONE);
	run_idle();
	assert_int_equal(calls, 30);
	for (int i = 0; i < 10; i++)
		assert_int_equal(state_of(qid[i]), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_backoff_function, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_between_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifetime_expiry_bounces_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permanent_failure_bounces_and_keeps_the_rest, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_waiting_and_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_is_looked_at_by_the_lifetime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rescan_finds_new_files_and_does_not_hurry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_start_schedules_by_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_queue_file_goes_to_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_meta_is_never_delivered_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_meta_defers_without_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flushes_coalesce, setup, teardown),
	};

	evthread_use_pthreads();
	log_init(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
