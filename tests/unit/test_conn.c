/*
 * test_conn: the connection layer (src/util/conn.h) on a real event loop
 * and loopback sockets: lines read whole and one byte at a time give the
 * same result (STYLE.md rule 9), an over-long line is skipped and reported
 * once, a paused connection fires no deadline while an idle one does,
 * per-client and per-network limits, and the output watermark. Also the
 * listener address parser of src/util/net.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/conn.h"
#include "util/net.h"

struct t {
	struct event_base *base;
	struct conn_listener *l;
	struct conn_limits *lim;
	struct conn *c;
	struct conn *extra[8];     /* accepted beyond the first, freed at teardown */
	int nextra;
	enum conn_over over;
	int accepted;
	char lines[32][128];
	int nlines, toolong, ended;
	enum conn_end why;
	size_t line_max;
};

static void
t_input(struct conn *c, void *arg)
{
	struct t *t = arg;
	char buf[128];
	size_t len;
	int rc;

	while (!conn_blocked(c) && (rc = conn_read_line(c, buf, t->line_max, &len)) != 0) {
		if (rc < 0) {
			t->toolong++;
			continue;
		}
		if (t->nlines < 32)
			snprintf(t->lines[t->nlines++], 128, "%s", buf);
	}
}

static void
t_end(struct conn *c, enum conn_end why, void *arg)
{
	struct t *t = arg;

	t->ended++;
	t->why = why;
	conn_free(&t->c);
}

static const struct conn_cbs t_cbs = { t_input, t_end };

static void
t_accept(struct conn *c, enum conn_over over, void *arg)
{
	struct t *t = arg;

	t->accepted++;
	t->over = over;
	if (t->c != NULL) {   /* only the first is driven; the others just count */
		if (over != CONN_OVER_NONE || t->nextra == 8)
			conn_free(&c);
		else
			t->extra[t->nextra++] = c;
		return;
	}
	t->c = c;
	conn_set_callbacks(c, &t_cbs, t);
	conn_set_timeouts(c, 1, 0);
}

static void
t_setup(struct t *t, unsigned per_client, unsigned per_net)
{
	const char *err = NULL;

	memset(t, 0, sizeof(*t));
	t->line_max = 64;
	t->base = event_base_new();
	t->lim = conn_limits_new(per_client, per_net);
	t->l = conn_listener_new(t->base, "127.0.0.1:0", CONN_PLAIN, NULL, t->lim, t_accept, t, &err);
	if (t->l == NULL)
		fail_msg("listen: %s", err);
}

static void
t_teardown(struct t *t)
{
	conn_free(&t->c);
	for (int i = 0; i < t->nextra; i++)
		conn_free(&t->extra[i]);
	conn_listener_free(&t->l);
	conn_limits_free(&t->lim);
	event_base_free(t->base);
}

static int
t_connect(struct t *t, const char *src)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	if (src != NULL) {
		struct sockaddr_in me = { .sin_family = AF_INET };
		inet_pton(AF_INET, src, &me.sin_addr);
		assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
	}
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	sin.sin_port = htons(conn_listener_port(t->l));
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Run the loop until cond or 2 s of loop time. */
#define RUN_UNTIL(t, cond)                                                    \
	do {                                                                  \
		for (int i_ = 0; i_ < 2000 && !(cond); i_++) {                \
			struct timeval tv_ = { 0, 1000 };                     \
			event_base_loopexit((t)->base, &tv_);                 \
			event_base_dispatch((t)->base);                       \
		}                                                             \
	} while (0)

static const char input[] = "EHLO a\r\nMAIL FROM:<x@y>\r\n\r\nbare lf\nNUL\0inside\r\nlast\r\n";

static void
lines_with(int bytewise, struct t *t)
{
	int fd;

	t_setup(t, 0, 0);
	fd = t_connect(t, NULL);
	RUN_UNTIL(t, t->accepted == 1);
	if (bytewise) {
		for (size_t i = 0; i < sizeof(input) - 1; i++) {
			assert_int_equal(write(fd, input + i, 1), 1);
			RUN_UNTIL(t, conn_input_len(t->c) == 0);
		}
	} else {
		assert_int_equal(write(fd, input, sizeof(input) - 1), (ssize_t)sizeof(input) - 1);
	}
	RUN_UNTIL(t, t->nlines == 6);
	close(fd);
}

static void
test_lines_whole_and_bytewise(void **state)
{
	struct t a, b;

	(void)state;
	lines_with(0, &a);
	lines_with(1, &b);
	assert_int_equal(a.nlines, 6);
	assert_int_equal(b.nlines, 6);
	for (int i = 0; i < 6; i++)
		assert_string_equal(a.lines[i], b.lines[i]);
	assert_string_equal(a.lines[0], "EHLO a");
	assert_string_equal(a.lines[2], "");
	assert_string_equal(a.lines[3], "bare lf");
	assert_string_equal(a.lines[4], "NUL");   /* the length says more; C strings stop */
	assert_string_equal(a.lines[5], "last");
	t_teardown(&a);
	t_teardown(&b);
}

static void
test_overlong_line_skipped_once(void **state)
{
	struct t t;
	char big[300];
	int fd;

	(void)state;
	t_setup(&t, 0, 0);
	fd = t_connect(&t, NULL);
	memset(big, 'x', sizeof(big));
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	RUN_UNTIL(&t, t.toolong == 1);
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(write(fd, "\r\nNOOP\r\n", 8), 8);
	RUN_UNTIL(&t, t.nlines == 1);
	assert_int_equal(t.toolong, 1);
	assert_string_equal(t.lines[0], "NOOP");
	close(fd);
	t_teardown(&t);
}

static void
t_idle(struct conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

/* A line announcing a byte count, then the bytes (whatever they hold),
 * then lines again: the IMAP literal shape. */
static void
test_byte_count_mode(void **state)
{
	struct t t;
	char got[64], line[64];
	size_t have = 0, len;
	int fd;

	(void)state;
	t_setup(&t, 0, 0);
	fd = t_connect(&t, NULL);
	RUN_UNTIL(&t, t.accepted == 1);
	/* drive the connection by hand: no input callback */
	conn_set_callbacks(t.c, &(struct conn_cbs){ t_idle, t_end }, &t);
	assert_int_equal(write(fd, "A1 {10}\r\n", 9), 9);
	for (const char *p = "ab\r\ncd\nefg\r\nB2 NOOP\r\n"; *p; p++) {
		assert_int_equal(write(fd, p, 1), 1);   /* one byte at a time */
		RUN_UNTIL(&t, conn_input_len(t.c) > 0);
	}
	RUN_UNTIL(&t, conn_input_len(t.c) >= 9 + 21);
	assert_int_equal(conn_read_line(t.c, line, sizeof(line), &len), 1);
	assert_string_equal(line, "A1 {10}");
	while (have < 10) {
		size_t n = conn_read_bytes(t.c, got + have, 10 - have);
		assert_true(n > 0);
		have += n;
	}
	assert_memory_equal(got, "ab\r\ncd\nefg", 10);
	assert_int_equal(conn_read_line(t.c, line, sizeof(line), &len), 1);
	assert_string_equal(line, "");   /* the CRLF that ends the literal's line */
	assert_int_equal(conn_read_line(t.c, line, sizeof(line), &len), 1);
	assert_string_equal(line, "B2 NOOP");
	assert_int_equal(conn_read_bytes(t.c, got, sizeof(got)), 0);
	close(fd);
	t_teardown(&t);
}

static void
test_deadline_and_pause(void **state)
{
	struct t t;
	int fd;

	(void)state;
	t_setup(&t, 0, 0);
	fd = t_connect(&t, NULL);
	RUN_UNTIL(&t, t.accepted == 1);
	conn_pause(t.c);
	/* paused: no timer runs (1.5 s of loop time past a 1 s deadline) */
	for (int i = 0; i < 15; i++) {
		struct timeval tv = { 0, 100000 };
		event_base_loopexit(t.base, &tv);
		event_base_dispatch(t.base);
	}
	assert_int_equal(t.ended, 0);
	conn_resume(t.c);
	/* a byte at a time never completes the line: the deadline ends it */
	for (int i = 0; i < 30 && !t.ended; i++) {
		struct timeval tv = { 0, 100000 };
		if (write(fd, "x", 1) != 1)
			break;
		event_base_loopexit(t.base, &tv);
		event_base_dispatch(t.base);
	}
	assert_int_equal(t.ended, 1);
	assert_int_equal(t.why, CONN_END_TIMEOUT);
	close(fd);
	t_teardown(&t);
}

static void
test_limits_per_client_and_net(void **state)
{
	struct t t;
	int fds[5];

	(void)state;
	t_setup(&t, 2, 3);
	fds[0] = t_connect(&t, "127.0.0.5");
	fds[1] = t_connect(&t, "127.0.0.5");
	RUN_UNTIL(&t, t.accepted == 2);
	assert_int_equal(t.over, CONN_OVER_NONE);
	fds[2] = t_connect(&t, "127.0.0.5");
	RUN_UNTIL(&t, t.accepted == 3);
	assert_int_equal(t.over, CONN_OVER_CLIENT);
	fds[3] = t_connect(&t, "127.0.0.6");
	RUN_UNTIL(&t, t.accepted == 4);
	assert_int_equal(t.over, CONN_OVER_NONE);
	fds[4] = t_connect(&t, "127.0.0.7");
	RUN_UNTIL(&t, t.accepted == 5);
	assert_int_equal(t.over, CONN_OVER_NET);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	t_teardown(&t);
}

static void
test_output_watermark_blocks(void **state)
{
	struct t t;
	char chunk[4096];
	int fd, blocked = 0;

	(void)state;
	t_setup(&t, 0, 0);
	fd = t_connect(&t, NULL);
	RUN_UNTIL(&t, t.accepted == 1);
	memset(chunk, 'r', sizeof(chunk));
	/* the client never reads: output piles up until the watermark */
	for (int i = 0; i < 16384 && !blocked; i++) {
		conn_write(t.c, chunk, sizeof(chunk));
		conn_flush(t.c);
		blocked = conn_blocked(t.c);
	}
	assert_true(blocked);
	close(fd);
	RUN_UNTIL(&t, t.ended == 1);
	t_teardown(&t);
}

static void
test_net_parse_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	assert_int_equal(net_parse_sockaddr("192.0.2.1:25", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 25);
	assert_int_equal(net_parse_sockaddr("[2001:db8::1]:993", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 993);
	assert_int_equal(net_parse_sockaddr("127.0.0.1:0", &ss, &len), 0);
	assert_int_equal(net_parse_sockaddr("localhost:25", &ss, &len), -1);
	assert_int_equal(net_parse_sockaddr("2001:db8::1:25", &ss, &len), -1);
	assert_int_equal(net_parse_sockaddr("192.0.2.1:65536", &ss, &len), -1);
	assert_int_equal(net_parse_sockaddr("192.0.2.1:", &ss, &len), -1);
	assert_int_equal(net_parse_sockaddr("192.0.2.1", &ss, &len), -1);
	assert_int_equal(net_parse_sockaddr("[::1]25", &ss, &len), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_whole_and_bytewise),
		cmocka_unit_test(test_overlong_line_skipped_once),
		cmocka_unit_test(test_byte_count_mode),
		cmocka_unit_test(test_deadline_and_pause),
		cmocka_unit_test(test_limits_per_client_and_net),
		cmocka_unit_test(test_output_watermark_blocks),
		cmocka_unit_test(test_net_parse_sockaddr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
