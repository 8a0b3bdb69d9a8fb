/*
 * auth_table: a fixed-capacity hash of 32-byte keyed-hash keys, each with
 * a value of a fixed size, with a recency list so a full table drops its
 * oldest entry (see auth_int.h). Throttle and cache stay bounded however
 * many addresses or logins an attacker brings. Also auth_mac, the keyed
 * hash its users build keys with.
 * Module-internal: auth_table_new, auth_table_free, auth_table_find,
 * auth_table_put, auth_table_del, auth_table_count, auth_mac.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_int.h"
#include "util/log.h"
#include "util/xalloc.h"

struct auth_entry {
	unsigned char key[AUTH_KEY_LEN];
	int hnext;		/* next in the bucket's chain, or the free list */
	int prev, next;		/* recency list: head is the newest */
};

struct auth_table {
	struct auth_entry *e;
	unsigned char *vals;
	size_t valsize;
	unsigned cap, count, mask;
	int *bucket;
	int head, tail, free;
};

struct auth_table *
auth_table_new(unsigned cap, size_t valsize)
{
	struct auth_table *t = xcalloc(1, sizeof(*t));
	unsigned nb = 1;

	while (nb < 2 * cap)
		nb <<= 1;
	t->cap = cap;
	t->mask = nb - 1;
	t->valsize = valsize;
	t->e = xcalloc(cap, sizeof(*t->e));
	t->vals = xcalloc(cap, valsize);
	t->bucket = xmalloc(nb * sizeof(int));
	for (unsigned i = 0; i < nb; i++)
		t->bucket[i] = -1;
	for (unsigned i = 0; i < cap; i++)
		t->e[i].hnext = i + 1 < cap ? (int)i + 1 : -1;
	t->free = cap > 0 ? 0 : -1;
	t->head = t->tail = -1;
	return t;
}

void
auth_table_free(struct auth_table **tp)
{
	struct auth_table *t = *tp;

	if (t == NULL)
		return;
	OPENSSL_cleanse(t->e, t->cap * sizeof(*t->e));
	free(t->e);
	free(t->vals);
	free(t->bucket);
	free(t);
	*tp = NULL;
}

static unsigned
auth_table_bucket(const struct auth_table *t, const unsigned char *key)
{
	uint32_t h;

	memcpy(&h, key, sizeof(h));
	return h & t->mask;
}

static int
auth_table_index(const struct auth_table *t, const unsigned char *key)
{
	for (int i = t->bucket[auth_table_bucket(t, key)]; i >= 0; i = t->e[i].hnext)
		if (memcmp(t->e[i].key, key, AUTH_KEY_LEN) == 0)
			return i;
	return -1;
}

static void
auth_table_unlink(struct auth_table *t, int i)
{
	struct auth_entry *e = &t->e[i];
	int *pp = &t->bucket[auth_table_bucket(t, e->key)];

	while (*pp != i)
		pp = &t->e[*pp].hnext;
	*pp = e->hnext;
	if (e->prev >= 0)
		t->e[e->prev].next = e->next;
	else
		t->head = e->next;
	if (e->next >= 0)
		t->e[e->next].prev = e->prev;
	else
		t->tail = e->prev;
}

static void
auth_table_push_head(struct auth_table *t, int i)
{
	t->e[i].prev = -1;
	t->e[i].next = t->head;
	if (t->head >= 0)
		t->e[t->head].prev = i;
	t->head = i;
	if (t->tail < 0)
		t->tail = i;
}

void *
auth_table_find(struct auth_table *t, const unsigned char *key)
{
	int i = auth_table_index(t, key);

	return i < 0 ? NULL : t->vals + (size_t)i * t->valsize;
}

void *
auth_table_put(struct auth_table *t, const unsigned char *key, int *created_r)
{
	int i = auth_table_index(t, key);
	unsigned b;

	*created_r = i < 0;
	if (i >= 0) {
		if (t->head != i) {
			/* unlink from the recency list only, then back at the head */
			struct auth_entry *e = &t->e[i];
			t->e[e->prev].next = e->next;
			if (e->next >= 0)
				t->e[e->next].prev = e->prev;
			else
				t->tail = e->prev;
			auth_table_push_head(t, i);
		}
		return t->vals + (size_t)i * t->valsize;
	}
	if (t->cap == 0)
		log_panic(NULL, "event=panic reason=\"auth table without capacity\"");
	if (t->free >= 0) {
		i = t->free;
		t->free = t->e[i].hnext;
		t->count++;
	} else {
		i = t->tail;
		auth_table_unlink(t, i);
	}
	memcpy(t->e[i].key, key, AUTH_KEY_LEN);
	b = auth_table_bucket(t, key);
	t->e[i].hnext = t->bucket[b];
	t->bucket[b] = i;
	auth_table_push_head(t, i);
	memset(t->vals + (size_t)i * t->valsize, 0, t->valsize);
	return t->vals + (size_t)i * t->valsize;
}

void
auth_table_del(struct auth_table *t, const unsigned char *key)
{
	int i = auth_table_index(t, key);

	if (i < 0)
		return;
	auth_table_unlink(t, i);
	memset(t->e[i].key, 0, AUTH_KEY_LEN);
	t->e[i].hnext = t->free;
	t->free = i;
	t->count--;
}

unsigned
auth_table_count(const struct auth_table *t)
{
	return t->count;
}

void
auth_mac(const unsigned char *secret, char domain, const char *const *pieces, int n,
	 unsigned char *out)
{
	size_t len = 1, o = 1;
	unsigned char *buf;
	unsigned outlen = AUTH_KEY_LEN;

	for (int i = 0; i < n; i++)
		len += strlen(pieces[i]) + 1;
	buf = xmalloc(len);
	buf[0] = (unsigned char)domain;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(pieces[i]) + 1;
		memcpy(buf + o, pieces[i], l);
		o += l;
	}
	if (HMAC(EVP_sha256(), secret, AUTH_KEY_LEN, buf, len, out, &outlen) == NULL)
		log_panic(NULL, "event=panic reason=\"HMAC-SHA256 failed\"");
	/* The pieces may hold a password. */
	OPENSSL_cleanse(buf, len);
	free(buf);
}
