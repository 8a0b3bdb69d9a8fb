/*
 * auth: the flow of one password check (see auth.h). On the loop: the
 * throttle may refuse at once; else the check goes to the worker pool,
 * which fetches the stored hash, asks the success cache and hashes the
 * password only on a miss. Back on the loop a failure is counted and
 * logged, and the answer waits out its delay on a timer.
 *
 * Lifetime: a request in the worker pool holds a reference on the auth
 * core; auth_free detaches such requests (their work is skipped, their
 * completion only frees them) and the core goes with the last one.
 * Public: auth_new, auth_free, auth_plaintext_ok, auth_check.
 * Internal (auth_int.h): auth_get_stats, auth_set_clock, auth_set_delay_scale.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "conf/config.h"
#include "directory/directory.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

#define AUTH_HASH_MAX	512

enum auth_reason { AUTH_R_NONE, AUTH_R_PASSWORD, AUTH_R_UNKNOWN, AUTH_R_THROTTLED, AUTH_R_TEMPFAIL };

static const char *const auth_reasons[] = {
	"", "password", "unknown_user", "throttled", "tempfail"
};

struct auth_req {
	struct auth *a;
	struct auth_req *prev, *next;	/* a->reqs, while a owns it */
	char *service, *session, *user, *password;
	char client[64];		/* as logs write it: "1.2.3.4", "IPv6:..." */
	struct sockaddr_storage ss;
	auth_done_fn *done;
	void *arg;
	struct event *timer;
	int in_worker;
	int detached;			/* auth_free ran: touch nothing but a's refcount */
	/* results, written by the worker */
	enum auth_result res;
	enum auth_reason reason;
	int cached;
	char canon[DIR_ADDRESS_MAX];
};

struct auth {
	struct event_base *base;
	struct worker_pool *pool;
	struct directory *dir;
	const struct config *const *cf;
	unsigned char secret[AUTH_KEY_LEN];
	struct auth_throttle *throttle;
	struct auth_cache *cache;
	struct auth_req *reqs;
	time_t (*now)(void);
	unsigned delay_scale;
	int refs;			/* the owner + requests in the worker pool */
	struct auth_stats st;		/* crypts and cache_hits: atomics */
};

static time_t
auth_time(void)
{
	return time(NULL);
}

struct auth *
auth_new(const struct auth_deps *d)
{
	struct auth *a = xcalloc(1, sizeof(*a));

	a->base = d->base;
	a->pool = d->pool;
	a->dir = d->dir;
	a->cf = d->cf;
	if (RAND_bytes(a->secret, sizeof(a->secret)) != 1)
		log_panic(NULL, "event=panic reason=\"no random bytes for the auth key\"");
	a->throttle = auth_throttle_new(a->secret, AUTH_TABLE_MAX);
	a->cache = auth_cache_new(AUTH_TABLE_MAX);
	a->now = auth_time;
	a->delay_scale = 100;
	a->refs = 1;
	return a;
}

static void
auth_unref(struct auth *a)
{
	if (--a->refs > 0)
		return;
	auth_throttle_free(&a->throttle);
	auth_cache_free(&a->cache);
	OPENSSL_cleanse(a->secret, sizeof(a->secret));
	free(a);
}

static void
auth_wipe_password(struct auth_req *r)
{
	if (r->password != NULL) {
		OPENSSL_cleanse(r->password, strlen(r->password));
		free(r->password);
		r->password = NULL;
	}
}

static void
auth_req_free(struct auth_req *r)
{
	auth_wipe_password(r);
	if (r->timer != NULL)
		event_free(r->timer);
	free(r->service);
	free(r->session);
	free(r->user);
	free(r);
}

static void
auth_req_unlink(struct auth_req *r)
{
	struct auth *a = r->a;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		a->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

void
auth_free(struct auth **ap)
{
	struct auth *a = *ap;
	struct auth_req *r, *next;

	if (a == NULL)
		return;
	for (r = a->reqs; r != NULL; r = next) {
		next = r->next;
		r->prev = r->next = NULL;
		if (r->in_worker)
			__atomic_store_n(&r->detached, 1, __ATOMIC_RELEASE);
		else
			auth_req_free(r);
	}
	a->reqs = NULL;
	auth_unref(a);
	*ap = NULL;
}

static int
auth_is_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

int
auth_plaintext_ok(const struct auth *a, int is_tls, const struct sockaddr *client)
{
	if (is_tls)
		return 1;
	switch ((*a->cf)->auth_plaintext) {
	case AUTH_PLAIN_ALWAYS:
		return 1;
	case AUTH_PLAIN_LOOPBACK:
		return auth_is_loopback(client);
	case AUTH_PLAIN_NEVER:
		break;
	}
	return 0;
}

/* The client as every log line of the sessions writes it (conn.c); a
 * mapped IPv4 address as IPv4, which is what a firewall bans. */
static void
auth_client_str(const struct sockaddr *sa, char *buf, size_t len)
{
	snprintf(buf, len, "unknown");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, len);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			inet_ntop(AF_INET, in6->s6_addr + 12, buf, len);
		} else {
			snprintf(buf, len, "IPv6:");
			inet_ntop(AF_INET6, in6, buf + 5, len - 5);
		}
	}
}

/* ---- the answer ---- */

static void
auth_answer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_req *r = arg;
	struct auth *a = r->a;

	auth_req_unlink(r);
	a->st.pending--;
	/* done() may free a (the session closes): nothing of a after it. */
	r->done(r->arg, r->res, r->res == AUTH_OK ? r->canon : r->user);
	auth_req_free(r);
}

static void
auth_answer_later(struct auth_req *r, unsigned ms)
{
	struct auth *a = r->a;
	unsigned long scaled = (unsigned long)ms * a->delay_scale / 100;
	struct timeval tv = { (time_t)(scaled / 1000), (suseconds_t)(scaled % 1000) * 1000 };

	r->timer = evtimer_new(a->base, auth_answer_cb, r);
	if (r->timer == NULL)
		log_panic(r->session, "event=panic reason=\"cannot make the auth timer\"");
	evtimer_add(r->timer, &tv);
}

static void
auth_log_result(struct auth_req *r)
{
	if (r->res == AUTH_OK) {
		log_msg(r->session, "event=auth_ok service=%s user=%s client=[%s] session=%s cached=%d",
			r->service, log_addr(r->canon), r->client, r->session, r->cached);
		return;
	}
	log_msg(r->session, "event=auth_failed service=%s user=%s client=[%s] session=%s reason=%s",
		r->service, log_addr(r->user), r->client, r->session, auth_reasons[r->reason]);
}

/* ---- the check on a worker ---- */

static void
auth_work(void *arg)
{
	struct auth_req *r = arg;
	struct auth *a = r->a;
	char hash[AUTH_HASH_MAX];
	unsigned char key[AUTH_KEY_LEN];
	int found, ok;

	if (__atomic_load_n(&r->detached, __ATOMIC_ACQUIRE))
		return;
	found = directory_user_hash(a->dir, r->user, r->canon, sizeof(r->canon), hash, sizeof(hash));
	if (found < 0) {
		r->res = AUTH_TEMPFAIL;
		r->reason = AUTH_R_TEMPFAIL;
		goto out;
	}
	if (found) {
		const char *pieces[] = { r->canon, r->password, hash };
		auth_mac(a->secret, 'C', pieces, 3, key);
		if (auth_cache_lookup(a->cache, key, a->now())) {
			__atomic_add_fetch(&a->st.cache_hits, 1, __ATOMIC_RELAXED);
			r->res = AUTH_OK;
			r->cached = 1;
			goto out;
		}
	}
	/* An unknown user costs a hash too (the directory's dummy one), so the
	 * answer's timing does not tell which users exist. */
	__atomic_add_fetch(&a->st.crypts, 1, __ATOMIC_RELAXED);
	ok = directory_user_verify(a->dir, found ? r->canon : r->user, r->password);
	if (ok < 0) {
		r->res = AUTH_TEMPFAIL;
		r->reason = AUTH_R_TEMPFAIL;
	} else if (ok && found) {
		r->res = AUTH_OK;
		auth_cache_insert(a->cache, key, a->now());
	} else {
		r->res = AUTH_FAILED;
		r->reason = found ? AUTH_R_PASSWORD : AUTH_R_UNKNOWN;
	}
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	auth_wipe_password(r);
}

/* The answer is known: the throttle's count, the log line, and done()
 * after the failure's delay. */
static void
auth_finish(struct auth_req *r)
{
	struct auth *a = r->a;
	const struct sockaddr *sa = (const struct sockaddr *)&r->ss;
	unsigned ms = 0;

	if (r->res == AUTH_OK) {
		auth_throttle_success(a->throttle, sa);
	} else {
		a->st.failures++;
		if (r->res == AUTH_FAILED) {
			ms = auth_throttle_fail(a->throttle, sa, r->user, a->now());
			a->st.last_delay_ms = ms;
		}
	}
	auth_log_result(r);
	auth_answer_later(r, ms);
}

static void
auth_work_done(void *arg)
{
	struct auth_req *r = arg;
	struct auth *a = r->a;

	r->in_worker = 0;
	if (r->detached) {
		auth_req_free(r);
		auth_unref(a);
		return;
	}
	auth_unref(a);	/* a's owner still holds it */
	auth_finish(r);
}

/* A new request of the owner's, linked in a->reqs. */
static struct auth_req *
auth_req_new(struct auth *a, const char *service, const struct sockaddr *client,
	     const char *session, const char *user, auth_done_fn *done, void *arg)
{
	struct auth_req *r = xcalloc(1, sizeof(*r));

	r->a = a;
	r->service = xstrdup(service);
	r->session = xstrdup(session != NULL ? session : "-");
	r->user = xstrdup(user);
	r->done = done;
	r->arg = arg;
	if (client != NULL)
		memcpy(&r->ss, client,
		       client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		       : client->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr));
	auth_client_str(client, r->client, sizeof(r->client));
	r->next = a->reqs;
	if (a->reqs != NULL)
		a->reqs->prev = r;
	a->reqs = r;
	a->st.checks++;
	a->st.pending++;
	return r;
}

/* Refused without a check (too many failures): 1 when it was. */
static int
auth_req_throttled(struct auth_req *r, const struct sockaddr *client)
{
	struct auth *a = r->a;

	if (!auth_throttle_refused(a->throttle, client, r->user, a->now()))
		return 0;
	auth_wipe_password(r);
	r->res = AUTH_THROTTLED;
	r->reason = AUTH_R_THROTTLED;
	a->st.failures++;
	auth_log_result(r);
	auth_answer_later(r, AUTH_THROTTLED_MS);
	return 1;
}

void
auth_check(struct auth *a, const char *service, const struct sockaddr *client,
	   const char *session, const char *user, const char *password, auth_done_fn *done,
	   void *arg)
{
	struct auth_req *r = auth_req_new(a, service, client, session, user, done, arg);

	r->password = xstrdup(password);
	if (auth_req_throttled(r, client))
		return;
	r->in_worker = 1;
	a->refs++;
	worker_submit(a->pool, auth_work, auth_work_done, r);
}

int
auth_refused(struct auth *a, const struct sockaddr *client, const char *user)
{
	return auth_throttle_refused(a->throttle, client, user, a->now());
}

void
auth_report(struct auth *a, const char *service, const struct sockaddr *client,
	    const char *session, const char *user, int ok, int known, auth_done_fn *done,
	    void *arg)
{
	struct auth_req *r = auth_req_new(a, service, client, session, user, done, arg);

	if (auth_req_throttled(r, client))
		return;
	r->res = ok ? AUTH_OK : AUTH_FAILED;
	r->reason = ok ? AUTH_R_NONE : known ? AUTH_R_PASSWORD : AUTH_R_UNKNOWN;
	snprintf(r->canon, sizeof(r->canon), "%s", user);
	auth_finish(r);
}

void
auth_fake_key(const struct auth *a, unsigned char *out)
{
	static const char *const pieces[] = { "scram stand-in" };

	auth_mac(a->secret, 'S', pieces, 1, out);
}

/* ---- test seams ---- */

void
auth_get_stats(struct auth *a, struct auth_stats *st)
{
	*st = a->st;
	st->crypts = __atomic_load_n(&a->st.crypts, __ATOMIC_RELAXED);
	st->cache_hits = __atomic_load_n(&a->st.cache_hits, __ATOMIC_RELAXED);
}

void
auth_set_clock(struct auth *a, time_t (*now)(void))
{
	a->now = now;
}

void
auth_set_delay_scale(struct auth *a, unsigned percent)
{
	a->delay_scale = percent;
}
