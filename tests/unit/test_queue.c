/*
 * test_queue: the on-disk queue — commit, recovery of partials, state moves,
 * meta files — and the Maildir store's idempotent delivery.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/queue.h"
#include "queue/queue_sched.h"
#include "store/maildir.h"
#include "conf/config.h"
#include "util/durable.h"

static char tmpl[64];

static int
setup(void **state)
{
	snprintf(tmpl, sizeof(tmpl), "/tmp/tandem-test-queue-XXXXXX");
	assert_non_null(mkdtemp(tmpl));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
	return system(cmd) == 0 ? 0 : -1;
}

static struct queue_in *
make_msg(struct queue *q, struct queue_env *env, const char *body)
{
	struct queue_in *in;

	memset(env, 0, sizeof(*env));
	env->arrival = 1700000000;
	env->sender = "s@example.org";
	queue_env_add_rcpt(env, "a@example.test");
	queue_env_add_rcpt(env, "b@example.test");
	env->client = "127.0.0.1";
	env->helo = "client";
	env->proto = "ESMTP";
	in = queue_in_create(q, env);
	assert_non_null(in);
	assert_int_equal(queue_in_write(in, body, strlen(body)), 0);
	return in;
}

static void
free_rcpts(struct queue_env *env)
{
	for (int i = 0; i < env->nrcpt; i++)
		free(env->rcpt[i]);
	free(env->rcpt);
}

static void
count_cb(const char *qid, void *arg)
{
	(*(int *)arg)++;
}

static void
test_commit_and_read(void **state)
{
	char err[256];
	struct queue *q = queue_open(tmpl, err, sizeof(err));
	struct queue_env env, back;
	struct queue_in *in;
	enum queue_state st;
	char qid[QUEUE_ID_LEN + 1], buf[64];
	size_t off;
	int fd, n = 0;

	assert_non_null(q);
	in = make_msg(q, &env, "Subject: x\r\n\r\nbody\r\n");
	snprintf(qid, sizeof(qid), "%s", queue_in_qid(in));
	assert_true(queue_valid_id(qid));
	/* not visible before the commit */
	assert_int_equal(queue_find(q, qid, &st), -1);
	assert_int_equal(queue_in_commit(in), 0);
	queue_in_free(&in);
	assert_int_equal(queue_find(q, qid, &st), 0);
	assert_int_equal(st, Q_ACTIVE);
	fd = queue_read_env(q, Q_ACTIVE, qid, &back, &off);
	assert_true(fd >= 0);
	assert_string_equal(back.qid, qid);
	assert_string_equal(back.sender, "s@example.org");
	assert_int_equal(back.nrcpt, 2);
	assert_string_equal(back.rcpt[1], "b@example.test");
	assert_int_equal(back.size, (long long)strlen("Subject: x\r\n\r\nbody\r\n"));
	assert_int_equal(pread(fd, buf, 10, off), 10);
	assert_memory_equal(buf, "Subject: x", 10);
	close(fd);
	queue_env_clear(&back);
	assert_int_equal(queue_scan(q, Q_ACTIVE, count_cb, &n), 1);
	assert_int_equal(n, 1);
	free_rcpts(&env);
	queue_close(&q);
}

static void
test_abandoned_leaves_nothing(void **state)
{
	char err[256], path[512];
	struct queue *q = queue_open(tmpl, err, sizeof(err));
	struct queue_env env;
	struct queue_in *in;
	int n = 0;

	in = make_msg(q, &env, "x\r\n");
	queue_in_free(&in);
	assert_int_equal(queue_scan(q, Q_ACTIVE, count_cb, &n), 0);
	/* a partial left by a crash is removed at start */
	snprintf(path, sizeof(path), "%s/queue/tmp/0000000000000000", tmpl);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(queue_clean_tmp(q), 1);
	assert_int_equal(access(path, F_OK), -1);
	free_rcpts(&env);
	queue_close(&q);
}

static void
test_large_message_spills(void **state)
{
	char err[256];
	struct queue *q = queue_open(tmpl, err, sizeof(err));
	struct queue_env env, back;
	struct queue_in *in;
	char *big = malloc(1 << 20);
	size_t off;
	int fd;

	memset(big, 'a', 1 << 20);
	big[(1 << 20) - 1] = '\0';
	in = make_msg(q, &env, big);
	assert_int_equal(queue_in_write(in, big, strlen(big)), 0);
	assert_int_equal(queue_in_commit(in), 0);
	fd = queue_read_env(q, Q_ACTIVE, queue_in_qid(in), &back, &off);
	assert_true(fd >= 0);
	assert_int_equal(back.size, 2 * (long long)strlen(big));
	close(fd);
	queue_env_clear(&back);
	queue_in_free(&in);
	free(big);
	free_rcpts(&env);
	queue_close(&q);
}

static void
test_moves_and_meta(void **state)
{
	char err[256], qid[QUEUE_ID_LEN + 1];
	struct queue *q = queue_open(tmpl, err, sizeof(err));
	struct queue_env env;
	struct queue_meta m, back;
	struct queue_in *in = make_msg(q, &env, "x\r\n");
	enum queue_state st;
	unsigned char done[2] = { 0, 1 };

	assert_int_equal(queue_in_commit(in), 0);
	snprintf(qid, sizeof(qid), "%s", queue_in_qid(in));
	queue_in_free(&in);
	assert_int_equal(queue_meta_read(q, qid, &back), 1);
	memset(&m, 0, sizeof(m));
	m.attempts = 3;
	m.next_attempt = 1700000900;
	m.last_error = "4.4.1 connection refused\r\nR5:forged";
	m.done = done;
	m.ndone = 2;
	assert_int_equal(queue_meta_write(q, qid, &m), 0);
	assert_int_equal(queue_meta_read(q, qid, &back), 0);
	assert_int_equal(back.attempts, 3);
	assert_int_equal(back.next_attempt, 1700000900);
	assert_string_equal(back.last_error, m.last_error);
	assert_int_equal(back.ndone, 2);
	assert_int_equal(back.done[1], 1);
	assert_int_equal(back.done[0], 0);
	queue_meta_clear(&back);
	assert_int_equal(queue_move(q, qid, Q_ACTIVE, Q_HOLD), 0);
	assert_int_equal(queue_find(q, qid, &st), 0);
	assert_int_equal(st, Q_HOLD);
	assert_int_equal(queue_remove(q, qid, Q_HOLD), 0);
	assert_int_equal(queue_find(q, qid, &st), -1);
	assert_int_equal(queue_meta_read(q, qid, &back), 1);
	free_rcpts(&env);
	queue_close(&q);
}

static void
test_backoff(void **state)
{
	struct config cf;

	memset(&cf, 0, sizeof(cf));
	cf.retry_min = 300;
	cf.retry_max = 3600;
	assert_int_equal(sched_backoff(&cf, 1), 300);
	assert_int_equal(sched_backoff(&cf, 2), 600);
	assert_int_equal(sched_backoff(&cf, 4), 2400);
	assert_int_equal(sched_backoff(&cf, 5), 3600);
	assert_int_equal(sched_backoff(&cf, 500), 3600);
}

static void
test_maildir_idempotent(void **state)
{
	char src[512], dir[512], path[700];
	const char *msg = "Subject: hi\r\n\r\nline one\r\nline two\r\n";
	char buf[256];
	int fd, out;
	ssize_t n;

	snprintf(src, sizeof(src), "%s/src", tmpl);
	fd = open(src, O_CREAT | O_RDWR, 0600);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	maildir_path(tmpl, "alice@example.test", dir, sizeof(dir));
	assert_int_equal(maildir_deliver(dir, "1.Q.host", "Delivered-To: alice@example.test\n", fd, 0,
					 strlen(msg)), 0);
	assert_int_equal(maildir_deliver(dir, "1.Q.host", "Delivered-To: alice@example.test\n", fd, 0,
					 strlen(msg)), 1);
	snprintf(path, sizeof(path), "%s/new/1.Q.host", dir);
	out = open(path, O_RDONLY);
	assert_true(out >= 0);
	n = read(out, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_string_equal(buf, "Delivered-To: alice@example.test\nSubject: hi\n\nline one\nline two\n");
	close(out);
	/* once a client moved it to cur/, it is still "already delivered" */
	snprintf(src, sizeof(src), "%s/cur/1.Q.host:2,", dir);
	assert_int_equal(rename(path, src), 0);
	assert_int_equal(maildir_deliver(dir, "1.Q.host", "", fd, 0, strlen(msg)), 1);
	close(fd);
}

/* A crash while the maildir was being created left tmp/ but no new/. */
static void
test_maildir_half_created(void **state)
{
	char src[512], dir[512], path[700];
	const char *msg = "Subject: hi\r\n\r\nbody\r\n";
	int fd;

	snprintf(src, sizeof(src), "%s/src", tmpl);
	fd = open(src, O_CREAT | O_RDWR, 0600);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	maildir_path(tmpl, "bob@example.test", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tmp", dir);
	assert_int_equal(durable_mkdirs(path, 0700), 0);
	assert_int_equal(maildir_deliver(dir, "2.Q.host", "", fd, 0, strlen(msg)), 0);
	snprintf(path, sizeof(path), "%s/new/2.Q.host", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	assert_int_equal(access(path, F_OK), 0);
	close(fd);
}

static void
test_maildir_path_safe(void **state)
{
	char dir[512];

	maildir_path("/d", "../../etc@example.test", dir, sizeof(dir));
	assert_string_equal(dir, "/d/mail/example.test/%2E.%2F..%2Fetc");
	maildir_path("/d", "a/b@Example.test", dir, sizeof(dir));
	assert_string_equal(dir, "/d/mail/Example.test/a%2Fb");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_message_spills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves_and_meta, setup, teardown),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_maildir_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_half_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_path_safe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
