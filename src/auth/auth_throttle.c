/*
 * auth_throttle: how many times a client address and a login failed within
 * AUTH_WINDOW, how long to hold back the answer to a failure, and whether
 * they are refused for now (see auth.h). Each entry keeps the times of its
 * last AUTH_REFUSE_AFTER failures, so a failure older than the window stops
 * counting by itself. Entries live in two bounded tables keyed by a keyed
 * hash (an attacker can neither aim at a bucket nor grow the memory).
 * Module-internal: auth_throttle_new, auth_throttle_free,
 * auth_throttle_refused, auth_throttle_fail, auth_throttle_success,
 * auth_throttle_counts, auth_throttle_delay_ms, auth_throttle_size.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "util/xalloc.h"

#define AUTH_LOGIN_KEY_MAX 1024

struct auth_fails {
	time_t at[AUTH_REFUSE_AFTER];	/* ring of failure times, 0 = unused */
	unsigned next;
	time_t refused_until;
};

struct auth_throttle {
	unsigned char secret[AUTH_KEY_LEN];
	struct auth_table *addrs, *logins;
};

struct auth_throttle *
auth_throttle_new(const unsigned char *secret, unsigned cap)
{
	struct auth_throttle *t = xcalloc(1, sizeof(*t));

	memcpy(t->secret, secret, AUTH_KEY_LEN);
	t->addrs = auth_table_new(cap, sizeof(struct auth_fails));
	t->logins = auth_table_new(cap, sizeof(struct auth_fails));
	return t;
}

void
auth_throttle_free(struct auth_throttle **tp)
{
	struct auth_throttle *t = *tp;

	if (t == NULL)
		return;
	auth_table_free(&t->addrs);
	auth_table_free(&t->logins);
	free(t);
	*tp = NULL;
}

/* The key of the client's network: an IPv4 address (a mapped one too), or
 * the /64 of an IPv6 address, since one host holds a whole /64. */
static void
auth_throttle_addr_key(const struct auth_throttle *t, const struct sockaddr *sa,
		       unsigned char *key)
{
	char text[64] = "unknown";
	const char *piece = text;

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *b = sin6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, b + 12, text, sizeof(text));
		else
			snprintf(text, sizeof(text), "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64",
				 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
	}
	auth_mac(t->secret, 'A', &piece, 1, key);
}

static void
auth_throttle_login_key(const struct auth_throttle *t, const char *login, unsigned char *key)
{
	char low[AUTH_LOGIN_KEY_MAX + 1];
	const char *piece = low;
	size_t i;

	for (i = 0; login[i] != '\0' && i < AUTH_LOGIN_KEY_MAX; i++)
		low[i] = (char)tolower((unsigned char)login[i]);
	low[i] = '\0';
	auth_mac(t->secret, 'L', &piece, 1, key);
}

static int
auth_fails_count(const struct auth_fails *f, time_t now)
{
	int n = 0;

	if (f == NULL)
		return 0;
	for (int i = 0; i < AUTH_REFUSE_AFTER; i++)
		if (f->at[i] != 0 && f->at[i] > now - AUTH_WINDOW)
			n++;
	return n;
}

static int
auth_fails_add(struct auth_fails *f, time_t now)
{
	int n;

	f->at[f->next] = now;
	f->next = (f->next + 1) % AUTH_REFUSE_AFTER;
	n = auth_fails_count(f, now);
	if (n >= AUTH_REFUSE_AFTER)
		f->refused_until = now + AUTH_REFUSE_SECS;
	return n;
}

int
auth_throttle_refused(struct auth_throttle *t, const struct sockaddr *client,
		      const char *login, time_t now)
{
	unsigned char ka[AUTH_KEY_LEN], kl[AUTH_KEY_LEN];
	const struct auth_fails *fa, *fl;

	auth_throttle_addr_key(t, client, ka);
	auth_throttle_login_key(t, login, kl);
	fa = auth_table_find(t->addrs, ka);
	fl = auth_table_find(t->logins, kl);
	return (fa != NULL && fa->refused_until > now) || (fl != NULL && fl->refused_until > now);
}

unsigned
auth_throttle_delay_ms(int nfailures)
{
	unsigned ms = AUTH_DELAY_FIRST_MS;

	if (nfailures <= 0)
		return 0;
	for (int i = 1; i < nfailures && ms < AUTH_DELAY_MAX_MS; i++)
		ms *= 2;
	return ms < AUTH_DELAY_MAX_MS ? ms : AUTH_DELAY_MAX_MS;
}

unsigned
auth_throttle_fail(struct auth_throttle *t, const struct sockaddr *client, const char *login,
		   time_t now)
{
	unsigned char ka[AUTH_KEY_LEN], kl[AUTH_KEY_LEN];
	int created, na, nl;

	auth_throttle_addr_key(t, client, ka);
	auth_throttle_login_key(t, login, kl);
	na = auth_fails_add(auth_table_put(t->addrs, ka, &created), now);
	nl = auth_fails_add(auth_table_put(t->logins, kl, &created), now);
	return auth_throttle_delay_ms(na > nl ? na : nl);
}

void
auth_throttle_success(struct auth_throttle *t, const struct sockaddr *client)
{
	unsigned char ka[AUTH_KEY_LEN];

	auth_throttle_addr_key(t, client, ka);
	auth_table_del(t->addrs, ka);
}

void
auth_throttle_counts(struct auth_throttle *t, const struct sockaddr *client, const char *login,
		     time_t now, int *addr_r, int *login_r)
{
	unsigned char ka[AUTH_KEY_LEN], kl[AUTH_KEY_LEN];

	auth_throttle_addr_key(t, client, ka);
	auth_throttle_login_key(t, login, kl);
	*addr_r = auth_fails_count(auth_table_find(t->addrs, ka), now);
	*login_r = auth_fails_count(auth_table_find(t->logins, kl), now);
}

unsigned
auth_throttle_size(const struct auth_throttle *t)
{
	return auth_table_count(t->addrs) + auth_table_count(t->logins);
}
