/*
 * auth_cache: the successful checks of the last AUTH_CACHE_SECS, by key (a
 * keyed hash of user, password and stored hash, built by auth.c), so a
 * client that logs in every minute pays one yescrypt hash in five minutes.
 * Bounded: a full cache drops its oldest entry. Worker threads look up and
 * insert, so it has its own lock.
 * Module-internal: auth_cache_new, auth_cache_free, auth_cache_lookup,
 * auth_cache_insert, auth_cache_size.
 */
#include <pthread.h>
#include <stdlib.h>

#include "auth/auth_int.h"
#include "util/xalloc.h"

struct auth_cache {
	pthread_mutex_t mu;
	struct auth_table *t;	/* value: the time of the check */
};

struct auth_cache *
auth_cache_new(unsigned cap)
{
	struct auth_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	c->t = auth_table_new(cap, sizeof(time_t));
	return c;
}

void
auth_cache_free(struct auth_cache **cp)
{
	struct auth_cache *c = *cp;

	if (c == NULL)
		return;
	auth_table_free(&c->t);
	pthread_mutex_destroy(&c->mu);
	free(c);
	*cp = NULL;
}

int
auth_cache_lookup(struct auth_cache *c, const unsigned char *key, time_t now)
{
	const time_t *at;
	int hit = 0;

	pthread_mutex_lock(&c->mu);
	at = auth_table_find(c->t, key);
	if (at != NULL) {
		/* A clock that went back counts as expired too. */
		hit = *at <= now && now - *at < AUTH_CACHE_SECS;
		if (!hit)
			auth_table_del(c->t, key);
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void
auth_cache_insert(struct auth_cache *c, const unsigned char *key, time_t now)
{
	time_t *at;
	int created;

	pthread_mutex_lock(&c->mu);
	at = auth_table_put(c->t, key, &created);
	*at = now;
	pthread_mutex_unlock(&c->mu);
}

unsigned
auth_cache_size(struct auth_cache *c)
{
	unsigned n;

	pthread_mutex_lock(&c->mu);
	n = auth_table_count(c->t);
	pthread_mutex_unlock(&c->mu);
	return n;
}
