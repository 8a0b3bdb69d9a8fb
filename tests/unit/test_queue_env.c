/*
 * test_queue_env: unit tests for the queue file records (src/queue/
 * queue_env.h): encode/parse round trips of envelope and meta, addresses
 * with CR/LF that try to forge records, truncation at every length (the
 * byte-at-a-time rule of STYLE.md 9: each prefix, one byte longer each
 * time, from a buffer that ends at a guard page), and malformed records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queue/queue_env.h"

#include "guard.h"

static int
env_parse(const char *buf, size_t len, struct queue_env *env, size_t *off)
{
	struct guard g;
	int rc;

	guard_init(&g, buf, len);
	rc = queue_env_parse(g.p, len, env, off);
	guard_free(&g);
	return rc;
}

static int
meta_parse(const char *buf, size_t len, struct queue_meta *m)
{
	struct guard g;
	int rc;

	guard_init(&g, buf, len);
	rc = queue_meta_parse(g.p, len, m);
	guard_free(&g);
	return rc;
}

static void
env_sample(struct queue_env *env)
{
	memset(env, 0, sizeof(*env));
	memcpy(env->qid, "0123456789ABCDEF", QUEUE_ID_LEN + 1);
	env->arrival = 1700000000;
	env->sender = strdup("sender@example.com");
	queue_env_add_rcpt(env, "one@example.org");
	queue_env_add_rcpt(env, "two@example.org");
	queue_env_add_rcpt(env, "\"quoted local\"@example.net");
	env->client = strdup("192.0.2.7");
	env->helo = strdup("client.example.com");
	env->proto = strdup("ESMTPS");
	env->smtputf8 = 1;
	env->body8bit = 1;
}

static void
env_assert_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_string_equal(a->qid, b->qid);
	assert_int_equal(a->arrival, b->arrival);
	assert_string_equal(a->sender, b->sender);
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (int i = 0; i < a->nrcpt; i++)
		assert_string_equal(a->rcpt[i], b->rcpt[i]);
	assert_string_equal(a->client ? a->client : "", b->client ? b->client : "");
	assert_string_equal(a->helo ? a->helo : "", b->helo ? b->helo : "");
	assert_string_equal(a->proto ? a->proto : "", b->proto ? b->proto : "");
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->body8bit, b->body8bit);
}

/* Encode env, append body, parse whole, then every shorter prefix must be
 * "incomplete" (0), never an error and never a success. */
static void
env_round_trip(const struct queue_env *env, const char *body)
{
	size_t len, off = 0, bl = strlen(body);
	char *enc = queue_env_encode(env, &len);
	char *file = malloc(len + bl);
	struct queue_env out;

	assert_non_null(enc);
	assert_non_null(file);
	assert_true(len > 4);
	assert_memory_equal(enc, QUEUE_MAGIC, 4);
	memcpy(file, enc, len);
	memcpy(file + len, body, bl);
	assert_int_equal(env_parse(file, len + bl, &out, &off), 1);
	assert_int_equal(off, len);
	assert_int_equal(out.size, (long long)bl);
	env_assert_equal(env, &out);
	queue_env_clear(&out);
	for (size_t k = 0; k < len; k++) {
		int rc = env_parse(file, k, &out, &off);

		if (rc != 0)
			fail_msg("prefix of %zu of %zu bytes: got %d, want 0", k, len, rc);
		assert_null(out.sender);
		assert_null(out.rcpt);
		assert_int_equal(out.nrcpt, 0);
	}
	free(file);
	free(enc);
}

static void
test_env_round_trip(void **state)
{
	struct queue_env env;

	(void)state;
	env_sample(&env);
	env_round_trip(&env, "Subject: x\r\n\r\nbody\r\n");
	env_round_trip(&env, "");
	queue_env_clear(&env);
	assert_null(env.sender);
	assert_int_equal(env.nrcpt, 0);
}

static void
test_env_null_sender(void **state)
{
	struct queue_env env;

	(void)state;
	env_sample(&env);
	free(env.sender);
	env.sender = strdup("");
	env.smtputf8 = 0;
	env.body8bit = 0;
	free(env.helo);
	env.helo = NULL;
	env_round_trip(&env, "x\r\n");
	queue_env_clear(&env);
}

static void
test_env_many_recipients(void **state)
{
	struct queue_env env;
	char rcpt[64];

	(void)state;
	env_sample(&env);
	for (int i = 0; i < 100; i++) {
		snprintf(rcpt, sizeof(rcpt), "user%d@example.org", i);
		queue_env_add_rcpt(&env, rcpt);
	}
	env_round_trip(&env, "");
	queue_env_clear(&env);
}

/* RELIABILITY.md: an address or parameter with CR/LF can never forge a record. */
static void
test_env_forgery(void **state)
{
	static const char *const evil[] = {
		"a@b.c\nR5:evil\n", "a@b.c\r\nR5:evil\r\n", "\n", "\r", "R5:evil\n",
		"x\nM0:\nR5:evil\n", "a\n\nR13:evil@evil.org\n", "a\0b",
	};
	struct queue_env env, out;
	size_t len, off;
	char *enc;

	(void)state;
	memset(&env, 0, sizeof(env));
	memcpy(env.qid, "00000000000000AA", QUEUE_ID_LEN + 1);
	env.sender = strdup("x\nR5:evil\nS0:\n");
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++)
		queue_env_add_rcpt(&env, evil[i]);
	env.helo = strdup("helo\nR9:forged@x\n");
	env.client = strdup("\r\nM0:\n");
	env.proto = strdup("ESMTP\nU1:1\n");
	enc = queue_env_encode(&env, &len);
	assert_int_equal(env_parse(enc, len, &out, &off), 1);
	assert_int_equal(off, len);
	env_assert_equal(&env, &out);
	assert_int_equal(out.nrcpt, (int)(sizeof(evil) / sizeof(evil[0])));
	assert_int_equal(out.smtputf8, 0);
	queue_env_clear(&out);
	free(enc);
	env_round_trip(&env, "body\r\n");
	queue_env_clear(&env);
}

static void
test_rec_put_get(void **state)
{
	char *buf = NULL, t;
	size_t len = 0, cap = 0, vl, used, off = 0;
	const char *v;
	static const char bin[] = "a\0b\nc\r";

	(void)state;
	queue_rec_put(&buf, &len, &cap, 'X', "hello", 5);
	queue_rec_put(&buf, &len, &cap, 'Y', "", 0);
	queue_rec_put(&buf, &len, &cap, 'Z', bin, sizeof(bin) - 1);
	assert_memory_equal(buf, "X5:hello\nY0:\nZ6:a\0b\nc\r\n", len);
	assert_int_equal(queue_rec_get(buf, len, &t, &v, &vl, &used), 1);
	assert_int_equal(t, 'X');
	assert_int_equal(vl, 5);
	assert_memory_equal(v, "hello", 5);
	assert_int_equal(used, 9);
	off += used;
	assert_int_equal(queue_rec_get(buf + off, len - off, &t, &v, &vl, &used), 1);
	assert_int_equal(t, 'Y');
	assert_int_equal(vl, 0);
	off += used;
	assert_int_equal(queue_rec_get(buf + off, len - off, &t, &v, &vl, &used), 1);
	assert_int_equal(t, 'Z');
	assert_int_equal(vl, 6);
	assert_memory_equal(v, bin, 6);
	off += used;
	assert_int_equal(off, len);
	assert_int_equal(queue_rec_get(buf + off, 0, &t, &v, &vl, &used), 0);
	free(buf);
}

/* Every prefix of a record is "need more"; a full one is read alone. */
static void
test_rec_get_byte_by_byte(void **state)
{
	char *buf = NULL, t;
	size_t len = 0, cap = 0, vl, used;
	const char *v;
	char big[QUEUE_REC_MAX];
	struct guard g;

	(void)state;
	memset(big, 'b', sizeof(big));
	queue_rec_put(&buf, &len, &cap, 'R', big, sizeof(big));
	for (size_t k = 0; k < len; k++) {
		guard_init(&g, buf, k);
		assert_int_equal(queue_rec_get(g.p, k, &t, &v, &vl, &used), 0);
		guard_free(&g);
	}
	guard_init(&g, buf, len);
	assert_int_equal(queue_rec_get(g.p, len, &t, &v, &vl, &used), 1);
	assert_int_equal(vl, QUEUE_REC_MAX);
	assert_int_equal(used, len);
	guard_free(&g);
	free(buf);
}

static void
test_rec_get_malformed(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		{ "X5:hello!", 9 },                 /* no newline where the value ends */
		{ "X5:hel\nXY", 9 },                /* value longer than its length */
		{ "X:\n", 3 },                      /* no length */
		{ "Xa:\n", 4 },
		{ "X-1:\n", 5 },
		{ "X+1:a\n", 6 },
		{ "X 1:a\n", 6 },
		{ "X8193:", 6 },                    /* over QUEUE_REC_MAX, even before the value */
		{ "X99999:", 7 },
		{ "X0000001:a\n", 11 },            /* too many digits */
		{ "X18446744073709551617:", 22 },  /* would wrap a size_t */
		{ ":0:\n", 4 },
		{ "\n", 1 },
		{ "\0" "0:\n", 4 },
		{ " 0:\n", 4 },
	};
	char t;
	const char *v;
	size_t vl, used;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct guard g;
		int rc;

		guard_init(&g, bad[i].s, bad[i].n);
		rc = queue_rec_get(g.p, bad[i].n, &t, &v, &vl, &used);
		guard_free(&g);
		if (rc != -1)
			fail_msg("record %zu: got %d, want -1", i, rc);
	}
	/* at the limit exactly, and with leading zeros */
	assert_int_equal(queue_rec_get("X8192:", 6, &t, &v, &vl, &used), 0);
	assert_int_equal(queue_rec_get("X000005:hello\n", 14, &t, &v, &vl, &used), 1);
	assert_int_equal(vl, 5);
}

static void
test_env_malformed(void **state)
{
#define BAD(s) { s, sizeof(s) - 1 }
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		BAD("TQ2\nM0:\n"),
		BAD("XXXX"),
		BAD("tq1\n"),
		/* no qid / no sender / no recipient */
		BAD("TQ1\nS0:\nR3:a@b\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nR3:a@b\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nM0:\n"),
		/* qid of the wrong length */
		BAD("TQ1\nI3:ABC\nS0:\nR3:a@b\nM0:\n"),
		/* two senders */
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nS1:x\nR3:a@b\nM0:\n"),
		/* numbers that are not */
		BAD("TQ1\nI16:0123456789ABCDEF\nT2:1x\nS0:\nR3:a@b\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nT0:\nS0:\nR3:a@b\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nT2:-1\nS0:\nR3:a@b\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nT19:1000000000000000000\nS0:\nR3:a@b\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nR3:a@b\nU1:y\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nR3:a@b\n81: \nM0:\n"),
		/* bad records */
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nR3:a@bc\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nR9999:"),
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nR3:a@b\n\nM0:\n"),
		BAD("TQ1\nI16:0123456789ABCDEF\nS0:\nRx:a@b\nM0:\n"),
	};
#undef BAD
	struct queue_env env;
	size_t off;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		rc = env_parse(bad[i].s, bad[i].n, &env, &off);
		if (rc != -1)
			fail_msg("envelope %zu: got %d, want -1", i, rc);
		assert_null(env.sender);
		assert_null(env.rcpt);
	}
}

static void
test_env_unknown_record_skipped(void **state)
{
	static const char f[] = "TQ1\nI16:0123456789ABCDEF\nT1:5\nS0:\nR3:a@b\nq4:new!\nM0:\nbody";
	struct queue_env env;
	size_t off;

	(void)state;
	assert_int_equal(env_parse(f, sizeof(f) - 1, &env, &off), 1);
	assert_string_equal(env.qid, "0123456789ABCDEF");
	assert_int_equal(env.arrival, 5);
	assert_string_equal(env.sender, "");
	assert_int_equal(env.nrcpt, 1);
	assert_string_equal(env.rcpt[0], "a@b");
	assert_int_equal(off, sizeof(f) - 1 - 4);
	assert_int_equal(env.size, 4);
	queue_env_clear(&env);
}

/* What the parser accepts, the encoder must write back the same: a qid
 * with a NUL in it is accepted now but cannot be written back. */
static void
test_env_qid_round_trips(void **state)
{
	static const char f[] = "TQ1\nI16:0123456\0" "89ABCDEF\nS0:\nR3:a@b\nM0:\n";
	struct queue_env env, again;
	size_t off, len;
	char *enc;
	int rc;

	(void)state;
	rc = env_parse(f, sizeof(f) - 1, &env, &off);
	if (rc != 1)
		return;     /* refusing it is fine */
	enc = queue_env_encode(&env, &len);
	rc = env_parse(enc, len, &again, &off);
	free(enc);
	if (rc != 1) {
		char qid[QUEUE_ID_LEN + 1];

		memcpy(qid, env.qid, sizeof(qid));
		queue_env_clear(&env);
		fail_msg("parsed qid \"%s\" (with a NUL inside) does not survive encode and "
			 "parse", qid);
	}
	env_assert_equal(&env, &again);
	queue_env_clear(&env);
	queue_env_clear(&again);
}

static void
meta_assert_equal(const struct queue_meta *a, const struct queue_meta *b)
{
	int n = a->ndone > b->ndone ? a->ndone : b->ndone;

	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->next_attempt, b->next_attempt);
	assert_int_equal(a->last_attempt, b->last_attempt);
	if (a->last_error == NULL || b->last_error == NULL)
		assert_ptr_equal(a->last_error, b->last_error);
	else
		assert_string_equal(a->last_error, b->last_error);
	/* a trailing run of not-done flags need not survive */
	for (int i = 0; i < n; i++) {
		int da = i < a->ndone && a->done[i];
		int db = i < b->ndone && b->done[i];

		assert_int_equal(da, db);
	}
}

/* Encode, parse back, and every strict prefix must be refused (-1). */
static void
meta_round_trip(const struct queue_meta *m)
{
	size_t len;
	char *enc = queue_meta_encode(m, &len);
	struct queue_meta out;

	assert_non_null(enc);
	assert_int_equal(meta_parse(enc, len, &out), 0);
	meta_assert_equal(m, &out);
	queue_meta_clear(&out);
	for (size_t k = 0; k < len; k++) {
		int rc = meta_parse(enc, k, &out);

		if (rc != -1)
			fail_msg("meta prefix of %zu of %zu bytes: got %d, want -1", k, len, rc);
		assert_null(out.last_error);
		assert_null(out.done);
		assert_int_equal(out.ndone, 0);
	}
	free(enc);
}

static void
test_meta_round_trip(void **state)
{
	unsigned char done[] = { 1, 0, 1, 0, 0 };
	struct queue_meta m = {
		.attempts = 3,
		.next_attempt = 1700003600,
		.last_attempt = 1700000000,
		.last_error = "451 4.3.0 try later\r\nD0:\nZ0:\n\rsecond line\n",
		.done = done,
		.ndone = 5,
	};

	(void)state;
	meta_round_trip(&m);
	m.last_error = NULL;
	meta_round_trip(&m);
	m.last_error = "";
	meta_round_trip(&m);
	m.done = NULL;
	m.ndone = 0;
	meta_round_trip(&m);
}

/* Each recipient's last result survives, however its texts look. */
static void
test_meta_last_results_round_trip(void **state)
{
	struct queue_meta m, out;
	size_t len;
	char *enc;

	(void)state;
	memset(&m, 0, sizeof(m));
	queue_meta_set_last(&m, 0, QR_DELIVERED, 1700000001, "2.0.0", NULL, "mx.example.net[192.0.2.7]:25",
			    "250 2.0.0 queued as X\r\nZ0:\n");
	queue_meta_set_last(&m, 2, QR_DEFERRED, 1700000002, "4.3.0", "mailbox full\nR1:0\n", NULL, NULL);
	m.attempts = 1;
	enc = queue_meta_encode(&m, &len);
	assert_int_equal(meta_parse(enc, len, &out), 0);
	assert_int_equal(out.nlast, 3);
	assert_int_equal(out.last[0].state, QR_DELIVERED);
	assert_int_equal(out.last[0].when, 1700000001);
	assert_string_equal(out.last[0].dsn, "2.0.0");
	assert_null(out.last[0].reason);
	assert_string_equal(out.last[0].relay, "mx.example.net[192.0.2.7]:25");
	assert_string_equal(out.last[0].reply, "250 2.0.0 queued as X\r\nZ0:\n");
	assert_int_equal(out.last[1].state, QR_NONE);
	assert_int_equal(out.last[2].state, QR_DEFERRED);
	assert_string_equal(out.last[2].reason, "mailbox full\nR1:0\n");
	assert_null(out.last[2].relay);
	queue_meta_clear(&out);
	/* every strict prefix is refused, as for the other records */
	for (size_t k = 0; k < len; k++) {
		assert_int_equal(meta_parse(enc, k, &out), -1);
		assert_null(out.last);
	}
	free(enc);
	queue_meta_clear(&m);
	assert_string_equal(queue_rcpt_state_name(QR_BOUNCED), "bounced");
	assert_string_equal(queue_rcpt_state_name(QR_NONE), "pending");
}

/* A result record before any R, or a state that does not exist, is damage;
 * a record type of a newer version is skipped. */
static void
test_meta_last_results_malformed(void **state)
{
	struct queue_meta out;

	(void)state;
	assert_int_equal(meta_parse("S1:1\nZ0:\n", 9, &out), -1);
	assert_int_equal(meta_parse("R1:0\nS1:7\nZ0:\n", 14, &out), -1);
	assert_int_equal(meta_parse("R1:0\nW1:x\nZ0:\n", 14, &out), -1);
	assert_int_equal(meta_parse("R6:100000\nZ0:\n", 14, &out), -1);
	assert_int_equal(meta_parse("A1:2\nq3:new\nZ0:\n", 16, &out), 0);
	assert_int_equal(out.attempts, 2);
	queue_meta_clear(&out);
}

static void
test_meta_empty(void **state)
{
	struct queue_meta m, out;

	(void)state;
	memset(&m, 0, sizeof(m));
	meta_round_trip(&m);
	assert_int_equal(meta_parse("Z0:\n", 4, &out), 0);
	assert_int_equal(out.attempts, 0);
	assert_null(out.done);
	queue_meta_clear(&out);
}

static void
test_meta_done_many(void **state)
{
	unsigned char done[1000];
	struct queue_meta m;

	(void)state;
	memset(&m, 0, sizeof(m));
	for (int i = 0; i < 1000; i++)
		done[i] = i % 3 == 0;
	m.done = done;
	m.ndone = 1000;
	m.attempts = 40;
	meta_round_trip(&m);
}

static void
test_meta_malformed(void **state)
{
	static const char *const bad[] = {
		"", "A1:3\n", "A1:3\nN1:0\nL1:0\n", "A1:x\nZ0:\n", "A0:\nZ0:\n", "A2:-1\nZ0:\n",
		"D6:100000\nZ0:\n", "D1:a\nZ0:\n", "A1:3\nZ0:", "A1:3Z0:\n", "A9999:\nZ0:\n",
		"E5:abc\nZ0:\n",
	};
	struct queue_meta m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = meta_parse(bad[i], strlen(bad[i]), &m);

		if (rc != -1)
			fail_msg("meta %zu: got %d, want -1", i, rc);
		assert_null(m.last_error);
		assert_null(m.done);
	}
	assert_int_equal(meta_parse("D5:99999\nZ0:\n", 13, &m), 0);
	assert_int_equal(m.ndone, 100000);
	assert_int_equal(m.done[99999], 1);
	assert_int_equal(m.done[0], 0);
	queue_meta_clear(&m);
}

/* What queue_meta_encode writes, queue_meta_parse must read: a meta that
 * cannot be read back is taken for a torn write, and the attempts and
 * done flags are lost (recipients already delivered get it again). */
static void
test_meta_long_error_round_trips(void **state)
{
	char *err = malloc(QUEUE_REC_MAX + 2000);
	struct queue_meta m, out;
	unsigned char done[] = { 1 };
	size_t len;
	char *enc;
	int rc;

	(void)state;
	assert_non_null(err);
	memset(err, 'e', QUEUE_REC_MAX + 1999);
	err[QUEUE_REC_MAX + 1999] = '\0';
	memset(&m, 0, sizeof(m));
	m.attempts = 7;
	m.last_error = err;
	m.done = done;
	m.ndone = 1;
	enc = queue_meta_encode(&m, &len);
	rc = meta_parse(enc, len, &out);
	free(enc);
	free(err);
	if (rc != 0)
		fail_msg("a meta with a %d-octet last error does not parse back", QUEUE_REC_MAX + 1999);
	assert_int_equal(out.attempts, 7);
	assert_int_equal(out.ndone, 1);
	assert_int_equal(out.done[0], 1);
	queue_meta_clear(&out);
}

/* An attempts count beyond int must not come back as a different number
 * (it now comes back negative, which the encoder writes as "-N" and the
 * parser then refuses). */
static void
test_meta_attempts_overflow(void **state)
{
	static const char f[] = "A10:4294967295\nZ0:\n";
	struct queue_meta m, again;
	size_t len;
	char *enc;
	int rc;

	(void)state;
	rc = meta_parse(f, sizeof(f) - 1, &m);
	if (rc != 0)
		return;     /* refusing it is fine */
	enc = queue_meta_encode(&m, &len);
	rc = meta_parse(enc, len, &again);
	free(enc);
	if (rc != 0) {
		int attempts = m.attempts;

		queue_meta_clear(&m);
		fail_msg("attempts=4294967295 parsed as %d, which does not survive encode and "
			 "parse", attempts);
	}
	meta_assert_equal(&m, &again);
	queue_meta_clear(&m);
	queue_meta_clear(&again);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_round_trip),
		cmocka_unit_test(test_env_null_sender),
		cmocka_unit_test(test_env_many_recipients),
		cmocka_unit_test(test_env_forgery),
		cmocka_unit_test(test_rec_put_get),
		cmocka_unit_test(test_rec_get_byte_by_byte),
		cmocka_unit_test(test_rec_get_malformed),
		cmocka_unit_test(test_env_malformed),
		cmocka_unit_test(test_env_unknown_record_skipped),
		cmocka_unit_test(test_env_qid_round_trips),
		cmocka_unit_test(test_meta_round_trip),
		cmocka_unit_test(test_meta_empty),
		cmocka_unit_test(test_meta_last_results_round_trip),
		cmocka_unit_test(test_meta_last_results_malformed),
		cmocka_unit_test(test_meta_done_many),
		cmocka_unit_test(test_meta_malformed),
		cmocka_unit_test(test_meta_long_error_round_trips),
		cmocka_unit_test(test_meta_attempts_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
