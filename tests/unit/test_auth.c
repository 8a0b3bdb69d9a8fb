/*
 * test_auth: password checks through auth_check with a real event base,
 * worker pool and directory in a mkdtemp directory: success, wrong
 * password, unknown user (a hash each way), the success cache and what
 * invalidates it, the delays and the refusal after AUTH_REFUSE_AFTER
 * failures, counting per address (IPv6 by /64) and per login, decay, the
 * bounded tables, the plaintext rule, the log lines and auth_free with work
 * in flight.
 *
 * With TANDEM_AUTH_FAIL2BAN_LOG=FILE set, only the log-writing scenario runs
 * and logs to FILE: tests/e2e/test_fail2ban.py runs fail2ban-regex on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "conf/config.h"
#include "directory/directory.h"
#include "util/log.h"
#include "util/worker.h"

static time_t fake_now = 1800000000;
static char test_log[256];	/* where this process logs ("" = stderr) */

static time_t
fake_clock(void)
{
	return fake_now;
}

struct fx {
	char dir[64];
	struct directory *d;
	struct event_base *base;
	struct worker_pool *pool;
	struct config cf;
	const struct config *cfp;
	struct auth *a;
};

struct answer {
	int got;
	enum auth_result res;
	char user[1100];
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct auth_deps deps;
	char err[256];

	strcpy(fx->dir, "/tmp/tandem-test-auth-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->d = directory_open(fx->dir, err, sizeof(err));
	assert_non_null(fx->d);
	assert_int_equal(directory_domain_add(fx->d, "example.test"), 0);
	assert_int_equal(directory_user_add(fx->d, "alice@example.test", "correct horse"), 0);
	fx->base = event_base_new();
	fx->pool = worker_pool_new(fx->base, 2);
	fx->cf.auth_plaintext = AUTH_PLAIN_LOOPBACK;
	fx->cfp = &fx->cf;
	deps = (struct auth_deps){ fx->base, fx->pool, fx->d, &fx->cfp };
	fx->a = auth_new(&deps);
	auth_set_clock(fx->a, fake_clock);
	auth_set_delay_scale(fx->a, 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	auth_free(&fx->a);
	assert_null(fx->a);
	/* Completions still queued run (and free what they hold) first. */
	while (worker_pending(fx->pool) > 0)
		event_base_loop(fx->base, EVLOOP_ONCE);
	worker_pool_free(&fx->pool);
	directory_close(&fx->d);
	event_base_free(fx->base);
	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static void
on_done(void *arg, enum auth_result res, const char *user)
{
	struct answer *ans = arg;

	ans->got++;
	ans->res = res;
	snprintf(ans->user, sizeof(ans->user), "%s", user);
}

static struct sockaddr_storage
sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

/* One check from ip, waited for on the loop (the answer is the fact). */
static enum auth_result
check(struct fx *fx, const char *ip, const char *user, const char *pw, struct answer *ans)
{
	struct sockaddr_storage ss = sa_of(ip);
	struct answer local;

	if (ans == NULL)
		ans = &local;
	memset(ans, 0, sizeof(*ans));
	auth_check(fx->a, "imap", (struct sockaddr *)&ss, "s1", user, pw, on_done, ans);
	assert_int_equal(ans->got, 0);	/* never from inside auth_check */
	while (ans->got == 0)
		event_base_loop(fx->base, EVLOOP_ONCE);
	assert_int_equal(ans->got, 1);
	return ans->res;
}

static char *slurp(const char *path);

static struct auth_stats
stats(struct fx *fx)
{
	struct auth_stats st;

	auth_get_stats(fx->a, &st);
	return st;
}

static void
test_success(void **state)
{
	struct fx *fx = *state;
	struct answer ans;

	assert_int_equal(check(fx, "192.0.2.1", "ALICE@Example.test", "correct horse", &ans), AUTH_OK);
	assert_string_equal(ans.user, "alice@example.test");
	assert_int_equal(stats(fx).crypts, 1);
	assert_int_equal(stats(fx).cache_hits, 0);
	assert_int_equal(stats(fx).failures, 0);
	assert_int_equal(stats(fx).pending, 0);
}

static void
test_wrong_password_and_unknown_user(void **state)
{
	struct fx *fx = *state;
	struct answer ans;

	assert_int_equal(check(fx, "192.0.2.1", "Alice@example.test", "wrong", &ans), AUTH_FAILED);
	assert_string_equal(ans.user, "Alice@example.test");	/* the login as given */
	assert_int_equal(stats(fx).crypts, 1);
	assert_int_equal(stats(fx).last_delay_ms, 500);
	/* an unknown user pays a hash as well: the same timing class */
	assert_int_equal(check(fx, "192.0.2.2", "nobody@example.test", "wrong", &ans), AUTH_FAILED);
	assert_string_equal(ans.user, "nobody@example.test");
	assert_int_equal(stats(fx).crypts, 2);
	assert_int_equal(stats(fx).last_delay_ms, 500);
	assert_int_equal(check(fx, "192.0.2.3", "not an address", "x", &ans), AUTH_FAILED);
	assert_int_equal(stats(fx).crypts, 3);
	assert_int_equal(stats(fx).failures, 3);
}

static void
test_cache(void **state)
{
	struct fx *fx = *state;
	struct answer ans;

	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL), AUTH_OK);
	assert_int_equal(stats(fx).crypts, 1);
	assert_int_equal(check(fx, "192.0.2.9", "Alice@example.test", "correct horse", &ans), AUTH_OK);
	assert_string_equal(ans.user, "alice@example.test");
	assert_int_equal(stats(fx).crypts, 1);
	assert_int_equal(stats(fx).cache_hits, 1);
	/* a wrong password is never a hit */
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horsE", NULL),
			 AUTH_FAILED);
	assert_int_equal(stats(fx).crypts, 2);
	/* expiry */
	fake_now += AUTH_CACHE_SECS - 1;
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL), AUTH_OK);
	assert_int_equal(stats(fx).cache_hits, 2);
	fake_now += 1;
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL), AUTH_OK);
	assert_int_equal(stats(fx).crypts, 3);
	assert_int_equal(stats(fx).cache_hits, 2);
}

static void
test_cache_password_change(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL), AUTH_OK);
	assert_int_equal(directory_user_passwd(fx->d, "alice@example.test", "battery staple"), 0);
	/* the old password was cached, but under the old hash */
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL),
			 AUTH_FAILED);
	assert_int_equal(stats(fx).cache_hits, 0);
	assert_int_equal(stats(fx).crypts, 2);
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "battery staple", NULL), AUTH_OK);
	assert_int_equal(stats(fx).crypts, 3);
	/* a deleted user is not served from the cache either */
	assert_int_equal(directory_user_del(fx->d, "alice@example.test"), 0);
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "battery staple", NULL),
			 AUTH_FAILED);
	assert_int_equal(stats(fx).cache_hits, 0);
}

/* The directory cannot answer (here: its files are gone before a worker
 * opened its connection): AUTH_TEMPFAIL at once, not counted as a guess. */
static void
test_tempfail(void **state)
{
	struct fx *fx = *state;
	struct answer ans;
	char *log;

	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(check(fx, "192.0.2.77", "alice@example.test", "correct horse", &ans),
			 AUTH_TEMPFAIL);
	assert_string_equal(ans.user, "alice@example.test");
	assert_int_equal(stats(fx).failures, 1);
	assert_int_equal(stats(fx).last_delay_ms, 0);
	log = slurp(test_log);
	assert_non_null(strstr(log, "user=<alice@example.test> client=[192.0.2.77] session=s1 "
				    "reason=tempfail\n"));
	free(log);
}

static void
test_delays(void **state)
{
	static const unsigned want[] = { 0, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000 };
	struct fx *fx = *state;

	for (int n = 0; n < 9; n++)
		assert_int_equal(auth_throttle_delay_ms(n), want[n]);
	assert_int_equal(auth_throttle_delay_ms(1000), 15000);
	for (int n = 1; n <= 3; n++) {
		assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "bad", NULL), AUTH_FAILED);
		assert_int_equal(stats(fx).last_delay_ms, want[n]);
	}
	/* a success clears the address's count (the login's stays) */
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL), AUTH_OK);
	assert_int_equal(check(fx, "192.0.2.1", "bob@example.test", "bad", NULL), AUTH_FAILED);
	assert_int_equal(stats(fx).last_delay_ms, 500);
}

/* The real delay goes through a timer: the answer comes after it. */
static void
test_delay_timer(void **state)
{
	struct fx *fx = *state;
	struct answer ans;
	struct sockaddr_storage ss = sa_of("192.0.2.1");

	auth_set_delay_scale(fx->a, 100);
	memset(&ans, 0, sizeof(ans));
	auth_check(fx->a, "pop3", (struct sockaddr *)&ss, "s2", "alice@example.test", "bad", on_done,
		   &ans);
	while (stats(fx).failures == 0)
		event_base_loop(fx->base, EVLOOP_ONCE);
	/* counted and logged, the answer still held back */
	assert_int_equal(ans.got, 0);
	assert_int_equal(stats(fx).pending, 1);
	while (ans.got == 0)
		event_base_loop(fx->base, EVLOOP_ONCE);
	assert_int_equal(ans.res, AUTH_FAILED);
}

static void
test_throttled(void **state)
{
	struct fx *fx = *state;
	unsigned crypts;

	for (int i = 0; i < AUTH_REFUSE_AFTER; i++)
		assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "bad", NULL), AUTH_FAILED);
	crypts = stats(fx).crypts;
	assert_int_equal(crypts, AUTH_REFUSE_AFTER);
	/* refused without a check, even with the right password */
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL),
			 AUTH_THROTTLED);
	/* the login is refused from elsewhere, and the address for other logins */
	assert_int_equal(check(fx, "198.51.100.1", "alice@example.test", "correct horse", NULL),
			 AUTH_THROTTLED);
	assert_int_equal(check(fx, "192.0.2.1", "bob@example.test", "x", NULL), AUTH_THROTTLED);
	assert_int_equal(stats(fx).crypts, crypts);
	/* until AUTH_REFUSE_SECS have passed */
	fake_now += AUTH_REFUSE_SECS - 1;
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL),
			 AUTH_THROTTLED);
	fake_now += 1;
	assert_int_equal(check(fx, "192.0.2.1", "alice@example.test", "correct horse", NULL), AUTH_OK);
	assert_int_equal(stats(fx).crypts, crypts + 1);
}

static void
test_counting(void **state)
{
	static const unsigned char secret[AUTH_KEY_LEN] = "0123456789abcdef0123456789abcdef";
	struct auth_throttle *t = auth_throttle_new(secret, 100);
	struct sockaddr_storage a1 = sa_of("192.0.2.1"), a2 = sa_of("192.0.2.2");
	struct sockaddr_storage m1 = sa_of("::ffff:192.0.2.1");
	struct sockaddr_storage v6a = sa_of("2001:db8:1:2::1"), v6b = sa_of("2001:db8:1:2:ffff::9");
	struct sockaddr_storage v6c = sa_of("2001:db8:1:3::1");
	time_t now = 1000000;
	int na, nl;

	/* per login: case folded, across addresses */
	assert_int_equal(auth_throttle_fail(t, (struct sockaddr *)&a1, "Bob@x", now), 500);
	assert_int_equal(auth_throttle_fail(t, (struct sockaddr *)&a2, "bob@X", now), 1000);
	auth_throttle_counts(t, (struct sockaddr *)&a2, "BOB@x", now, &na, &nl);
	assert_int_equal(na, 1);
	assert_int_equal(nl, 2);
	/* per address: across logins; a mapped IPv4 is the IPv4 */
	assert_int_equal(auth_throttle_fail(t, (struct sockaddr *)&m1, "carol@x", now), 1000);
	auth_throttle_counts(t, (struct sockaddr *)&a1, "dave@x", now, &na, &nl);
	assert_int_equal(na, 2);
	assert_int_equal(nl, 0);
	/* IPv6 by /64 */
	auth_throttle_fail(t, (struct sockaddr *)&v6a, "e1@x", now);
	auth_throttle_fail(t, (struct sockaddr *)&v6b, "e2@x", now);
	auth_throttle_counts(t, (struct sockaddr *)&v6a, "z@x", now, &na, &nl);
	assert_int_equal(na, 2);
	auth_throttle_counts(t, (struct sockaddr *)&v6c, "z@x", now, &na, &nl);
	assert_int_equal(na, 0);
	/* decay: a failure older than the window no longer counts */
	auth_throttle_counts(t, (struct sockaddr *)&a1, "bob@x", now + AUTH_WINDOW - 1, &na, &nl);
	assert_int_equal(nl, 2);
	auth_throttle_counts(t, (struct sockaddr *)&a1, "bob@x", now + AUTH_WINDOW, &na, &nl);
	assert_int_equal(na, 0);
	assert_int_equal(nl, 0);
	assert_int_equal(auth_throttle_fail(t, (struct sockaddr *)&a1, "bob@x", now + AUTH_WINDOW),
			 500);
	/* refusal comes from AUTH_REFUSE_AFTER failures within the window only */
	for (int i = 0; i < AUTH_REFUSE_AFTER - 1; i++)
		auth_throttle_fail(t, (struct sockaddr *)&a2, "f@x", now + i * (AUTH_WINDOW / 5));
	assert_false(auth_throttle_refused(t, (struct sockaddr *)&a2, "f@x", now + 9 * 120));
	auth_throttle_success(t, (struct sockaddr *)&a2);
	auth_throttle_counts(t, (struct sockaddr *)&a2, "f@x", now + 9 * 120, &na, &nl);
	assert_int_equal(na, 0);
	auth_throttle_free(&t);
	assert_null(t);
}

/* A botnet of addresses cannot grow the tables past their capacity; the
 * newest entries stay. */
static void
test_bounded(void **state)
{
	static const unsigned char secret[AUTH_KEY_LEN] = "0123456789abcdef0123456789abcdef";
	struct auth_throttle *t = auth_throttle_new(secret, 50);
	struct auth_cache *c = auth_cache_new(50);
	unsigned char key[AUTH_KEY_LEN];
	char ip[32], login[32];
	int na, nl;

	for (int i = 0; i < 5000; i++) {
		struct sockaddr_storage ss;
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(login, sizeof(login), "u%d@x", i);
		ss = sa_of(ip);
		auth_throttle_fail(t, (struct sockaddr *)&ss, login, 100);
		assert_true(auth_throttle_size(t) <= 100);
		memset(key, 0, sizeof(key));
		memcpy(key, &i, sizeof(i));
		auth_cache_insert(c, key, 100);
		assert_true(auth_cache_size(c) <= 50);
	}
	{
		struct sockaddr_storage last = sa_of("10.0.19.135");	/* i = 4999 */
		struct sockaddr_storage first = sa_of("10.0.0.0");
		auth_throttle_counts(t, (struct sockaddr *)&last, "u4999@x", 100, &na, &nl);
		assert_int_equal(na, 1);
		assert_int_equal(nl, 1);
		auth_throttle_counts(t, (struct sockaddr *)&first, "u0@x", 100, &na, &nl);
		assert_int_equal(na, 0);
		assert_int_equal(nl, 0);
	}
	memset(key, 0, sizeof(key));
	assert_false(auth_cache_lookup(c, key, 100));	/* i = 0, evicted */
	memcpy(key, &(int){ 4999 }, sizeof(int));
	assert_true(auth_cache_lookup(c, key, 100));
	auth_throttle_free(&t);
	auth_cache_free(&c);
}

static void
test_table(void **state)
{
	struct auth_table *t = auth_table_new(3, sizeof(int));
	unsigned char k[4][AUTH_KEY_LEN];
	int created, *v;

	memset(k, 0, sizeof(k));
	for (int i = 0; i < 4; i++)
		k[i][0] = k[i][31] = (unsigned char)(i + 1);
	for (int i = 0; i < 3; i++) {
		v = auth_table_put(t, k[i], &created);
		assert_true(created);
		*v = i;
	}
	/* touching k0 makes k1 the oldest */
	v = auth_table_put(t, k[0], &created);
	assert_false(created);
	assert_int_equal(*v, 0);
	v = auth_table_put(t, k[3], &created);
	assert_true(created);
	assert_int_equal(*v, 0);	/* zeroed */
	assert_null(auth_table_find(t, k[1]));
	assert_non_null(auth_table_find(t, k[0]));
	assert_non_null(auth_table_find(t, k[2]));
	assert_int_equal(auth_table_count(t), 3);
	auth_table_del(t, k[2]);
	auth_table_del(t, k[2]);
	assert_int_equal(auth_table_count(t), 2);
	assert_null(auth_table_find(t, k[2]));
	v = auth_table_put(t, k[1], &created);
	assert_true(created);
	assert_int_equal(auth_table_count(t), 3);
	auth_table_free(&t);
	assert_null(t);
}

static void
test_plaintext(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage lo = sa_of("127.0.0.1"), lo2 = sa_of("127.45.3.2");
	struct sockaddr_storage lo6 = sa_of("::1"), mapped = sa_of("::ffff:127.0.0.1");
	struct sockaddr_storage far = sa_of("192.0.2.1"), far6 = sa_of("2001:db8::1");
	struct sockaddr_storage mfar = sa_of("::ffff:192.0.2.1"), v6lo2 = sa_of("::2");
	struct sockaddr *l[] = { (void *)&lo, (void *)&lo2, (void *)&lo6, (void *)&mapped };
	struct sockaddr *f[] = { (void *)&far, (void *)&far6, (void *)&mfar, (void *)&v6lo2 };

	for (int i = 0; i < 4; i++) {
		fx->cf.auth_plaintext = AUTH_PLAIN_LOOPBACK;
		assert_int_equal(auth_plaintext_ok(fx->a, 0, l[i]), 1);
		assert_int_equal(auth_plaintext_ok(fx->a, 0, f[i]), 0);
		assert_int_equal(auth_plaintext_ok(fx->a, 1, f[i]), 1);
		fx->cf.auth_plaintext = AUTH_PLAIN_NEVER;
		assert_int_equal(auth_plaintext_ok(fx->a, 0, l[i]), 0);
		assert_int_equal(auth_plaintext_ok(fx->a, 1, l[i]), 1);
		fx->cf.auth_plaintext = AUTH_PLAIN_ALWAYS;
		assert_int_equal(auth_plaintext_ok(fx->a, 0, f[i]), 1);
	}
}

/* auth_free while the check runs on a worker: done() is never called, and
 * the worker touches no freed memory (ASan) and nothing leaks. */
static void
test_free_in_flight(void **state)
{
	struct fx *fx = *state;
	struct answer ans;
	struct sockaddr_storage ss = sa_of("192.0.2.1");

	memset(&ans, 0, sizeof(ans));
	for (int i = 0; i < 4; i++)
		auth_check(fx->a, "imap", (struct sockaddr *)&ss, "s3", "alice@example.test",
			   i % 2 ? "correct horse" : "bad", on_done, &ans);
	auth_free(&fx->a);
	while (worker_pending(fx->pool) > 0)
		event_base_loop(fx->base, EVLOOP_ONCE);
	assert_int_equal(ans.got, 0);
}

/* auth_free with answers waiting on their delay timers. */
static void
test_free_with_timer(void **state)
{
	struct fx *fx = *state;
	struct answer ans;
	struct sockaddr_storage ss = sa_of("192.0.2.1");

	auth_set_delay_scale(fx->a, 100);
	memset(&ans, 0, sizeof(ans));
	auth_check(fx->a, "imap", (struct sockaddr *)&ss, "s4", "alice@example.test", "bad", on_done,
		   &ans);
	while (stats(fx).failures == 0)
		event_base_loop(fx->base, EVLOOP_ONCE);
	auth_free(&fx->a);
	/* nothing is left on the loop to call done() */
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(ans.got, 0);
}

static void
on_done_free(void *arg, enum auth_result res, const char *user)
{
	struct fx *fx = arg;

	/* the session closes from its done(): the common case */
	assert_string_equal(user, "alice@example.test");
	auth_free(&fx->a);
}

static void
test_free_from_done(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_storage ss = sa_of("192.0.2.1");

	auth_check(fx->a, "imap", (struct sockaddr *)&ss, "s5", "alice@example.test", "x", on_done_free,
		   fx);
	while (fx->a != NULL)
		event_base_loop(fx->base, EVLOOP_ONCE);
}

/* The lines fail2ban reads: hostile logins escaped, both address families. */
static void
write_fail2ban_lines(struct fx *fx)
{
	static const char *const users[] = {
		"alice@example.test",
		"x client=[6.6.6.6] session=z reason=password",
		"\"client=[7.7.7.7]\"@example.test",
		"a>b client=[8.8.8.8]",
		"evil\r\nevent=auth_failed service=imap user=<a> client=[9.9.9.9] session=s reason=password",
	};
	static const char *const ips[] = {
		"192.0.2.10", "2001:db8::7", "::ffff:198.51.100.3", "192.0.2.10", "192.0.2.10",
	};

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		assert_int_equal(check(fx, ips[i], users[i], "wrong", NULL), AUTH_FAILED);
	assert_int_equal(check(fx, "192.0.2.11", "alice@example.test", "correct horse", NULL), AUTH_OK);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);

	assert_non_null(f);
	assert_true(fread(buf, 1, (1 << 16) - 1, f) > 0);
	fclose(f);
	return buf;
}

static void
test_log_lines(void **state)
{
	struct fx *fx = *state;
	char *log;

	if (test_log[0] == '\0')
		skip();
	write_fail2ban_lines(fx);
	assert_int_equal(check(fx, "192.0.2.1", "bob@example.test", "x", NULL), AUTH_FAILED);
	if (getenv("TANDEM_AUTH_FAIL2BAN_LOG") != NULL)
		return;
	log = slurp(test_log);
	assert_non_null(strstr(log, ": s1: event=auth_failed service=imap user=<alice@example.test> "
				    "client=[192.0.2.10] session=s1 reason=password\n"));
	assert_non_null(strstr(log, " user=\"<x client=[6.6.6.6] session=z reason=password>\" "
				    "client=[IPv6:2001:db8::7] session=s1 reason=unknown_user\n"));
	assert_non_null(strstr(log, " user=\"<\\\"client=[7.7.7.7]\\\"@example.test>\" "
				    "client=[198.51.100.3] session=s1 reason=unknown_user\n"));
	assert_non_null(strstr(log, " user=\"<evil\\x0d\\x0aevent=auth_failed"));
	assert_non_null(strstr(log, "event=auth_ok service=imap user=<alice@example.test> "
				    "client=[192.0.2.11] session=s1 cached=0\n"));
	assert_non_null(strstr(log, "user=<bob@example.test> client=[192.0.2.1] session=s1 "
				    "reason=unknown_user\n"));
	free(log);
}

static void
test_log_throttled(void **state)
{
	struct fx *fx = *state;
	char *log;

	if (test_log[0] == '\0')
		skip();
	for (int i = 0; i < AUTH_REFUSE_AFTER; i++)
		check(fx, "203.0.113.5", "carol@example.test", "x", NULL);
	assert_int_equal(check(fx, "203.0.113.5", "carol@example.test", "x", NULL), AUTH_THROTTLED);
	log = slurp(test_log);
	assert_non_null(strstr(log, "event=auth_failed service=imap user=<carol@example.test> "
				    "client=[203.0.113.5] session=s1 reason=throttled\n"));
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_password_and_unknown_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_password_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tempfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttled, setup, teardown),
		cmocka_unit_test(test_counting),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_table),
		cmocka_unit_test_setup_teardown(test_plaintext, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_throttled, setup, teardown),
	};
	const struct CMUnitTest fail2ban[] = {
		cmocka_unit_test_setup_teardown(test_log_lines, setup, teardown),
	};
	const char *f2b = getenv("TANDEM_AUTH_FAIL2BAN_LOG");
	int fd, rc;

	evthread_use_pthreads();
	if (f2b != NULL) {
		snprintf(test_log, sizeof(test_log), "%s", f2b);
		if (log_init(test_log) != 0)
			return 1;
		return cmocka_run_group_tests(fail2ban, NULL, NULL);
	}
	/* The log goes to a file of our own, read back by the log tests. */
	snprintf(test_log, sizeof(test_log), "/tmp/tandem-test-auth-log-XXXXXX");
	if ((fd = mkstemp(test_log)) < 0)
		return 1;
	close(fd);
	if (log_init(test_log) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(test_log);
	return rc;
}
