/*
 * fuzz_queue_env: libFuzzer harness for queue_env_parse and
 * queue_meta_parse (src/queue/queue_env.h). Both parsers read the same
 * input. Whatever parses must survive encode and parse again unchanged,
 * and an envelope that parses must parse the same from just its head and
 * be "incomplete" one byte short of it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_env.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_queue_env: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static int
str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void
env_same(const struct queue_env *a, const struct queue_env *b)
{
	CHECK(strcmp(a->qid, b->qid) == 0);
	CHECK(a->arrival == b->arrival);
	CHECK(str_eq(a->sender, b->sender));
	CHECK(a->nrcpt == b->nrcpt);
	for (int i = 0; i < a->nrcpt; i++)
		CHECK(str_eq(a->rcpt[i], b->rcpt[i]));
	CHECK(str_eq(a->client, b->client));
	CHECK(str_eq(a->helo, b->helo));
	CHECK(str_eq(a->proto, b->proto));
	CHECK(a->smtputf8 == b->smtputf8);
	CHECK(a->body8bit == b->body8bit);
}

static void
fuzz_env(const char *buf, size_t len)
{
	struct queue_env env, again;
	size_t off = 0, off2 = 0, elen;
	char *enc, *head;
	int rc = queue_env_parse(buf, len, &env, &off);

	CHECK(rc >= -1 && rc <= 1);
	if (rc != 1) {
		CHECK(env.sender == NULL && env.rcpt == NULL && env.nrcpt == 0);
		return;
	}
	CHECK(off <= len);
	CHECK(env.sender != NULL && env.nrcpt > 0);
	CHECK(env.size == (long long)(len - off));

	head = malloc(off);
	memcpy(head, buf, off);
	CHECK(queue_env_parse(head, off, &again, &off2) == 1);
	CHECK(off2 == off);
	env_same(&env, &again);
	queue_env_clear(&again);
	CHECK(queue_env_parse(head, off - 1, &again, &off2) == 0);
	free(head);

	enc = queue_env_encode(&env, &elen);
	CHECK(queue_env_parse(enc, elen, &again, &off2) == 1);
	CHECK(off2 == elen);
	env_same(&env, &again);
	queue_env_clear(&again);
	free(enc);
	queue_env_clear(&env);
}

static void
meta_same(const struct queue_meta *a, const struct queue_meta *b)
{
	int n = a->ndone > b->ndone ? a->ndone : b->ndone;

	CHECK(a->attempts == b->attempts);
	CHECK(a->next_attempt == b->next_attempt);
	CHECK(a->last_attempt == b->last_attempt);
	CHECK((a->last_error == NULL) == (b->last_error == NULL));
	CHECK(str_eq(a->last_error, b->last_error));
	for (int i = 0; i < n; i++)
		CHECK((i < a->ndone && a->done[i]) == (i < b->ndone && b->done[i]));
}

static void
fuzz_meta(const char *buf, size_t len)
{
	struct queue_meta m, again;
	size_t elen;
	char *enc;
	int rc = queue_meta_parse(buf, len, &m);

	CHECK(rc == 0 || rc == -1);
	if (rc != 0) {
		CHECK(m.last_error == NULL && m.done == NULL && m.ndone == 0);
		return;
	}
	CHECK(m.ndone >= 0);
	enc = queue_meta_encode(&m, &elen);
	CHECK(queue_meta_parse(enc, elen, &again) == 0);
	meta_same(&m, &again);
	queue_meta_clear(&again);
	free(enc);
	queue_meta_clear(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);

	memcpy(buf, data, size);
	fuzz_env(buf, size);
	fuzz_meta(buf, size);
	free(buf);
	return 0;
}
