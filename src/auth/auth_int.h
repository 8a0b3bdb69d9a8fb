/*
 * auth_int: what the files of the auth module share (private to src/auth/
 * and its unit tests): the bounded table of 32-byte keys (auth_table.c),
 * the failure counting (auth_throttle.c), the success cache (auth_cache.c)
 * and the test seams of auth.c (clock, delay scale, counters).
 */
#ifndef TANDEM_AUTH_INT_H
#define TANDEM_AUTH_INT_H
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/auth.h"

#define AUTH_KEY_LEN		32
#define AUTH_TABLE_MAX		10000	/* entries per table: a botnet cannot grow it */
#define AUTH_DELAY_FIRST_MS	500
#define AUTH_DELAY_MAX_MS	15000
#define AUTH_THROTTLED_MS	1000	/* the fixed answer delay of a refused attempt */

/* ---- auth_table.c: a hash of fixed keys with a value each, at most cap
 * entries; when full, the least recently put entry makes room. Keys must
 * be uniform (keyed hashes): the bucket is taken from their first bytes.
 * Not thread-safe. */
struct auth_table;

struct auth_table *auth_table_new(unsigned cap, size_t valsize);
void auth_table_free(struct auth_table **tp);
/* The value of key, or NULL; does not change the eviction order. */
void *auth_table_find(struct auth_table *t, const unsigned char *key);
/* The value of key, created zeroed (*created_r = 1) when missing; either
 * way the entry becomes the most recent. */
void *auth_table_put(struct auth_table *t, const unsigned char *key, int *created_r);
void auth_table_del(struct auth_table *t, const unsigned char *key);
unsigned auth_table_count(const struct auth_table *t);

/* HMAC-SHA256 under secret (AUTH_KEY_LEN bytes) of a domain byte and n
 * pieces, each followed by a NUL (the pieces are NUL-free). */
void auth_mac(const unsigned char *secret, char domain, const char *const *pieces, int n,
	      unsigned char *out);

/* ---- auth_throttle.c: failures per client address (IPv4, IPv6 /64) and
 * per login (lower-cased) within AUTH_WINDOW; the loop thread only. */
struct auth_throttle;

struct auth_throttle *auth_throttle_new(const unsigned char *secret, unsigned cap);
void auth_throttle_free(struct auth_throttle **tp);
/* 1 when the address or the login is refused at now. */
int auth_throttle_refused(struct auth_throttle *t, const struct sockaddr *client,
			  const char *login, time_t now);
/* Counts one failure; returns how long to hold the answer back (ms). */
unsigned auth_throttle_fail(struct auth_throttle *t, const struct sockaddr *client,
			    const char *login, time_t now);
/* A success clears the address's failures. */
void auth_throttle_success(struct auth_throttle *t, const struct sockaddr *client);
/* Failures within the window at now, per address and per login. */
void auth_throttle_counts(struct auth_throttle *t, const struct sockaddr *client,
			  const char *login, time_t now, int *addr_r, int *login_r);
/* The delay after the nth failure of the window: 0.5 s doubling, at most 15 s. */
unsigned auth_throttle_delay_ms(int nfailures);
/* Entries held (address table + login table). */
unsigned auth_throttle_size(const struct auth_throttle *t);

/* ---- auth_cache.c: successful checks for AUTH_CACHE_SECS, at most cap;
 * any thread (it has its own lock). */
struct auth_cache;

struct auth_cache *auth_cache_new(unsigned cap);
void auth_cache_free(struct auth_cache **cp);
/* 1 when key was inserted less than AUTH_CACHE_SECS before now. */
int auth_cache_lookup(struct auth_cache *c, const unsigned char *key, time_t now);
void auth_cache_insert(struct auth_cache *c, const unsigned char *key, time_t now);
unsigned auth_cache_size(struct auth_cache *c);

/* ---- auth.c seams for tests ---- */
struct auth_stats {
	unsigned checks;	/* auth_check calls */
	unsigned crypts;	/* password hashes computed (directory_user_verify) */
	unsigned cache_hits;
	unsigned failures;	/* answers other than AUTH_OK */
	unsigned last_delay_ms;	/* the delay computed for the last failure */
	unsigned pending;	/* checks not answered yet */
};

void auth_get_stats(struct auth *a, struct auth_stats *st);
/* The clock of throttle and cache (default time(NULL)). */
void auth_set_clock(struct auth *a, time_t (*now)(void));
/* Timers run at percent of the computed delays (default 100; 0 in tests
 * that count failures, which would otherwise wait minutes). */
void auth_set_delay_scale(struct auth *a, unsigned percent);

#endif
