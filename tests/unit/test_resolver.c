/*
 * test_resolver: the libunbound resolver against a private dnsmasq on a free
 * loopback port (never a real DNS server): MX sets, null MX, A and AAAA,
 * NXDOMAIN, NODATA, SERVFAIL and timeouts as temporary failures, many
 * queries at once, cancel and free with queries pending, and the MX rdata
 * parser byte by byte. dnsmasq comes from scripts/install-deps
 * (dnsmasq-base); without it the group fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns/resolver.h"
#include "util/xalloc.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define MANY_RECORDS 70
/* manymx.test: MX record i has this preference, a permutation of 1..70 */
#define MX_PREF(i) ((i) * 37 % 71)

/* The dnsmasq of the whole group, and two upstreams it forwards to: one
 * that answers SERVFAIL (read by each test's loop), one that never answers. */
static pid_t dnsmasq_pid = -1;
static int dns_port;
static int servfail_fd = -1, silent_fd = -1;
static char dnsmasq_log[64];

struct fix {
	struct event_base *base;
	struct event *servfail_ev;
	struct resolver *r;
	char spec[32];
};

struct got {
	int called;
	struct resolver_result *res;
	struct fix *free_in_cb;         /* free the resolver from the callback */
};

static void
got_cb(struct resolver_result *res, void *arg)
{
	struct got *g = arg;

	g->called++;
	resolver_result_free(&g->res);
	g->res = res;
	if (g->free_in_cb)
		resolver_free(&g->free_in_cb->r);
}

static void
got_clear(struct got *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		resolver_result_free(&g[i].res);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
expired_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Run the loop until `want` of the n callbacks arrived, or ms passed.
 * Returns how many arrived. */
static int
run_until(struct fix *f, struct got *g, size_t n, int want, int ms)
{
	int expired = 0, done = 0;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *t = evtimer_new(f->base, expired_cb, &expired);

	evtimer_add(t, &tv);
	for (;;) {
		done = 0;
		for (size_t i = 0; i < n; i++)
			done += g[i].called > 0;
		if (done >= want || expired)
			break;
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	event_free(t);
	return done;
}

static void
run_for(struct fix *f, int ms)
{
	struct got none = { 0 };

	run_until(f, &none, 1, 1, ms);
}

/* The upstream for servfail.test: every query gets SERVFAIL back, with the
 * question copied and no other section. */
static void
servfail_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned char b[512];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n;

	while ((n = recvfrom(fd, b, sizeof(b), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) >= 12) {
		size_t i = 12;

		while (i < (size_t)n && b[i] != 0)
			i += b[i] + 1u;
		i += 5;
		if (i <= (size_t)n) {
			b[2] = 0x80 | (b[2] & 0x79);    /* QR; opcode and RD kept */
			b[3] = 0x80 | 2;                /* RA, SERVFAIL */
			memset(b + 6, 0, 6);
			sendto(fd, b, i, 0, (struct sockaddr *)&from, fl);
		}
		fl = sizeof(from);
	}
}

static int
udp_socket(int *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/* Whether 127.0.0.1:port is free for type (bind fails once dnsmasq holds it). */
static int
port_free(int type, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void
show_dnsmasq_log(void)
{
	char buf[2048];
	FILE *fp = fopen(dnsmasq_log, "r");
	size_t n;

	if (fp == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	print_message("dnsmasq said:\n%s\n", buf);
}

static void
start_dnsmasq(int sf_port, int silent_port)
{
	char *argv[32 + 2 * MANY_RECORDS];
	int argc = 0, logfd;

	argv[argc++] = xstrdup(DNSMASQ);
	argv[argc++] = xstrdup("--no-daemon");
	argv[argc++] = xstrdup("--conf-file=/dev/null");
	argv[argc++] = xstrdup("--no-resolv");
	argv[argc++] = xstrdup("--no-hosts");
	argv[argc++] = xstrdup("--log-facility=-");
	argv[argc++] = xstrdup("--listen-address=127.0.0.1");
	argv[argc++] = xstrdup("--bind-interfaces");
	argv[argc++] = xasprintf("--port=%d", dns_port);
	/* answer NXDOMAIN for unknown names under test., never forward */
	argv[argc++] = xstrdup("--local=/test/");
	argv[argc++] = xstrdup("--mx-host=example.test,mx1.example.test,10");
	argv[argc++] = xstrdup("--mx-host=example.test,mx2.example.test,20");
	argv[argc++] = xstrdup("--host-record=mx1.example.test,127.0.0.10");
	argv[argc++] = xstrdup("--host-record=mx2.example.test,127.0.0.20,2001:db8::20");
	argv[argc++] = xstrdup("--host-record=v6only.test,2001:db8::30");
	argv[argc++] = xstrdup("--mx-host=nullmx.test,.,0");
	argv[argc++] = xasprintf("--server=/servfail.test/127.0.0.1#%d", sf_port);
	argv[argc++] = xasprintf("--server=/timeout.test/127.0.0.1#%d", silent_port);
	for (int i = 1; i <= MANY_RECORDS; i++)
		argv[argc++] = xasprintf("--host-record=many.test,127.0.1.%d", i);
	/* too big for UDP: libunbound retries over TCP */
	for (int i = 1; i <= MANY_RECORDS; i++)
		argv[argc++] = xasprintf("--mx-host=manymx.test,mx%d.manymx.test,%d", i, MX_PREF(i));
	argv[argc] = NULL;

	snprintf(dnsmasq_log, sizeof(dnsmasq_log), "/tmp/tandem-test-dnsmasq-%d.log", (int)getpid());
	logfd = open(dnsmasq_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(logfd >= 0);
	dnsmasq_pid = fork();
	assert_true(dnsmasq_pid >= 0);
	if (dnsmasq_pid == 0) {
		/* dies with us even when the test crashes */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execv(DNSMASQ, argv);
		_exit(127);
	}
	close(logfd);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}

static int
group_teardown(void **state)
{
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
	if (servfail_fd >= 0)
		close(servfail_fd);
	if (silent_fd >= 0)
		close(silent_fd);
	unlink(dnsmasq_log);
	return 0;
}

static int
group_setup(void **state)
{
	int sf_port, silent_port, status;

	if (access(DNSMASQ, X_OK) != 0) {
		print_error("%s missing: install Debian package dnsmasq-base (scripts/install-deps)\n",
			    DNSMASQ);
		return -1;
	}
	servfail_fd = udp_socket(&sf_port);
	silent_fd = udp_socket(&silent_port);
	if (servfail_fd < 0 || silent_fd < 0)
		return -1;
	/* a port the kernel just handed out, free for TCP too */
	for (int i = 0; i < 20; i++) {
		int fd = udp_socket(&dns_port);

		if (fd < 0)
			return -1;
		close(fd);
		if (port_free(SOCK_STREAM, dns_port))
			break;
	}
	start_dnsmasq(sf_port, silent_port);
	for (int i = 0; i < 500; i++) {
		if (waitpid(dnsmasq_pid, &status, WNOHANG) == dnsmasq_pid) {
			dnsmasq_pid = -1;
			print_error("dnsmasq exited at start\n");
			show_dnsmasq_log();
			group_teardown(state);
			return -1;
		}
		if (!port_free(SOCK_DGRAM, dns_port))
			return 0;
		usleep(10000);
	}
	print_error("dnsmasq did not listen on 127.0.0.1:%d within 5 s\n", dns_port);
	show_dnsmasq_log();
	group_teardown(state);
	return -1;
}

static int
setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	char err[256];

	f->base = event_base_new();
	f->servfail_ev = event_new(f->base, servfail_fd, EV_READ | EV_PERSIST, servfail_cb, NULL);
	event_add(f->servfail_ev, NULL);
	snprintf(f->spec, sizeof(f->spec), "127.0.0.1@%d", dns_port);
	f->r = resolver_new(f->base, f->spec, err, sizeof(err));
	if (f->r == NULL) {
		print_error("resolver_new: %s\n", err);
		return -1;
	}
	resolver_set_timeout(f->r, 5000);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	resolver_free(&f->r);
	event_free(f->servfail_ev);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* One query, waited for; the result is the caller's. */
static struct resolver_result *
ask(struct fix *f, int mx, const char *name)
{
	struct got g = { 0 };

	if (mx)
		resolver_mx(f->r, name, got_cb, &g);
	else
		resolver_addr(f->r, name, got_cb, &g);
	assert_int_equal(g.called, 0);
	assert_int_equal(run_until(f, &g, 1, 1, 5000), 1);
	assert_int_equal(g.called, 1);
	assert_non_null(g.res);
	assert_string_equal(g.res->name, name);
	return g.res;
}

static void
test_spec(void **state)
{
	struct fix *f = *state;
	static const char *const good[] = { "127.0.0.1@5353", "::1@53", "127.0.0.1", "system" };
	static const char *const bad[] = {
		"", "localhost@53", "127.0.0.1@", "127.0.0.1@0", "127.0.0.1@65536",
		"127.0.0.1@53x", "127.0.0.1@-1", "@53", "1.2.3@53", "127.0.0.1:53"
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct resolver *r;

		/* "system" reads /etc/resolv.conf and /etc/hosts; nothing is asked */
		if (strcmp(good[i], "system") == 0 && access("/etc/resolv.conf", R_OK) != 0)
			continue;
		r = resolver_new(f->base, good[i], err, sizeof(err));
		if (r == NULL)
			fail_msg("%s: %s", good[i], err);
		resolver_free(&r);
		assert_null(r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(resolver_new(f->base, bad[i], err, sizeof(err)));
		assert_true(strlen(err) > 0);
	}
}

static void
test_mx(void **state)
{
	struct resolver_result *res = ask(*state, 1, "example.test");

	assert_int_equal(res->status, RES_OK);
	assert_null(res->error);
	assert_int_equal(res->nmx, 2);
	assert_int_equal(res->mx[0].pref, 10);
	assert_string_equal(res->mx[0].host, "mx1.example.test");
	assert_int_equal(res->mx[1].pref, 20);
	assert_string_equal(res->mx[1].host, "mx2.example.test");
	assert_int_equal(res->naddrs, 0);
	resolver_result_free(&res);
	assert_null(res);
}

/* dnsmasq writes the exchange with the case of the question (it points
 * into it); hosts come back lower case and without the trailing dot. */
static void
test_mx_case(void **state)
{
	struct resolver_result *res = ask(*state, 1, "EXAMPLE.Test.");

	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->nmx, 2);
	assert_string_equal(res->mx[0].host, "mx1.example.test");
	assert_string_equal(res->mx[1].host, "mx2.example.test");
	resolver_result_free(&res);
}

static void
test_mx_null(void **state)
{
	struct resolver_result *res = ask(*state, 1, "nullmx.test");

	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->nmx, 1);
	assert_int_equal(res->mx[0].pref, 0);
	assert_string_equal(res->mx[0].host, ".");
	resolver_result_free(&res);
}

static void
test_mx_nodata(void **state)
{
	struct resolver_result *res = ask(*state, 1, "mx1.example.test");

	assert_int_equal(res->status, RES_NODATA);
	assert_int_equal(res->nmx, 0);
	assert_null(res->mx);
	assert_non_null(res->error);
	resolver_result_free(&res);
}

static void
test_mx_nxdomain(void **state)
{
	struct resolver_result *res = ask(*state, 1, "nosuch.example.test");

	assert_int_equal(res->status, RES_NXDOMAIN);
	assert_int_equal(res->nmx, 0);
	assert_string_equal(resolver_status_name(res->status), "NXDOMAIN");
	resolver_result_free(&res);
}

static void
test_addr(void **state)
{
	struct fix *f = *state;
	struct resolver_result *res = ask(f, 0, "mx1.example.test");

	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->naddrs, 1);
	assert_string_equal(res->addrs[0], "127.0.0.10");
	assert_int_equal(res->nmx, 0);
	resolver_result_free(&res);

	res = ask(f, 0, "mx2.example.test");
	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->naddrs, 2);
	assert_string_equal(res->addrs[0], "127.0.0.20");
	assert_string_equal(res->addrs[1], "2001:db8::20");
	resolver_result_free(&res);

	res = ask(f, 0, "v6only.test");
	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->naddrs, 1);
	assert_string_equal(res->addrs[0], "2001:db8::30");
	resolver_result_free(&res);
}

static void
test_addr_negative(void **state)
{
	struct fix *f = *state;
	struct resolver_result *res = ask(f, 0, "example.test");

	/* the name has MX records only */
	assert_int_equal(res->status, RES_NODATA);
	assert_int_equal(res->naddrs, 0);
	resolver_result_free(&res);

	res = ask(f, 0, "nosuch.test");
	assert_int_equal(res->status, RES_NXDOMAIN);
	assert_int_equal(res->naddrs, 0);
	resolver_result_free(&res);

	res = ask(f, 0, "bad..name");
	assert_int_equal(res->status, RES_NXDOMAIN);
	assert_string_equal(res->error, "invalid domain name");
	resolver_result_free(&res);
}

/* 70 A records come back as RESOLVER_MAX_RECORDS distinct addresses. */
static void
test_addr_limit(void **state)
{
	struct resolver_result *res = ask(*state, 0, "many.test");

	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->naddrs, RESOLVER_MAX_RECORDS);
	for (size_t i = 0; i < res->naddrs; i++) {
		assert_int_equal(strncmp(res->addrs[i], "127.0.1.", 8), 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(res->addrs[i], res->addrs[j]);
	}
	resolver_result_free(&res);
}

/* 70 MX records in shuffled preferences: the best 64, sorted. */
static void
test_mx_limit(void **state)
{
	struct resolver_result *res = ask(*state, 1, "manymx.test");
	char want[64];

	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->nmx, RESOLVER_MAX_RECORDS);
	for (size_t i = 0; i < res->nmx; i++) {
		assert_int_equal(res->mx[i].pref, i + 1);
		for (int k = 1; k <= MANY_RECORDS; k++) {
			if (MX_PREF(k) == (int)i + 1)
				snprintf(want, sizeof(want), "mx%d.manymx.test", k);
		}
		assert_string_equal(res->mx[i].host, want);
	}
	resolver_result_free(&res);
}

/* SERVFAIL is temporary, never NODATA (which would mean implicit MX), and
 * leaves the resolver working. */
static void
test_servfail(void **state)
{
	struct fix *f = *state;
	struct resolver_result *res = ask(f, 1, "x.servfail.test");

	assert_int_equal(res->status, RES_TEMP);
	assert_string_equal(res->error, "SERVFAIL");
	assert_int_equal(res->nmx, 0);
	resolver_result_free(&res);

	res = ask(f, 0, "y.servfail.test");
	assert_int_equal(res->status, RES_TEMP);
	assert_int_equal(res->naddrs, 0);
	resolver_result_free(&res);

	res = ask(f, 1, "example.test");
	assert_int_equal(res->status, RES_OK);
	resolver_result_free(&res);
}

/* An upstream that never answers: RES_TEMP "timeout" after the bound, and
 * the forwarder is not written off for the names it does answer. */
static void
test_timeout(void **state)
{
	struct fix *f = *state;
	struct resolver_result *res;
	double t0 = now_s(), dt;

	resolver_set_timeout(f->r, 1000);
	res = ask(f, 1, "x.timeout.test");
	dt = now_s() - t0;
	assert_int_equal(res->status, RES_TEMP);
	assert_string_equal(res->error, "timeout");
	assert_true(dt >= 0.9 && dt < 3.0);
	resolver_result_free(&res);

	res = ask(f, 0, "y.timeout.test");
	assert_int_equal(res->status, RES_TEMP);
	assert_string_equal(res->error, "timeout");
	resolver_result_free(&res);

	resolver_set_timeout(f->r, 5000);
	res = ask(f, 1, "example.test");
	assert_int_equal(res->status, RES_OK);
	assert_int_equal(res->nmx, 2);
	resolver_result_free(&res);
}

/* Names that cannot exist are refused without asking, still through the
 * loop: the callback never runs inside resolver_mx. */
static void
test_invalid_name(void **state)
{
	struct fix *f = *state;
	char longname[300];
	const char *names[] = { "", ".", "a..test", "bad name.test", "x\\046y.test", longname,
				"-ok-.test." };
	struct got g[7] = { { 0 } };

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (size_t i = 0; i < 7; i++)
		resolver_mx(f->r, names[i], got_cb, &g[i]);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(g[i].called, 0);
	assert_int_equal(run_until(f, g, 7, 7, 5000), 7);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(g[i].res->status, RES_NXDOMAIN);
		assert_string_equal(g[i].res->error, "invalid domain name");
	}
	/* a valid name that does not exist */
	assert_int_equal(g[6].res->status, RES_NXDOMAIN);
	assert_string_equal(g[6].res->error, "NXDOMAIN");
	got_clear(g, 7);
}

#define MANY 300

/* Many lookups in flight at once, each answered right. */
static void
test_many(void **state)
{
	struct fix *f = *state;
	struct got *g = xcalloc(MANY, sizeof(*g));
	char name[64];

	for (int i = 0; i < MANY; i++) {
		switch (i % 4) {
		case 0:
			resolver_mx(f->r, "example.test", got_cb, &g[i]);
			break;
		case 1:
			resolver_addr(f->r, "mx2.example.test", got_cb, &g[i]);
			break;
		case 2:
			snprintf(name, sizeof(name), "nosuch-%d.test", i);
			resolver_mx(f->r, name, got_cb, &g[i]);
			break;
		case 3:
			snprintf(name, sizeof(name), "n%d.servfail.test", i);
			resolver_addr(f->r, name, got_cb, &g[i]);
			break;
		}
	}
	assert_int_equal(run_until(f, g, MANY, MANY, 10000), MANY);
	for (int i = 0; i < MANY; i++) {
		struct resolver_result *res = g[i].res;

		assert_int_equal(g[i].called, 1);
		switch (i % 4) {
		case 0:
			assert_int_equal(res->status, RES_OK);
			assert_int_equal(res->nmx, 2);
			assert_string_equal(res->mx[1].host, "mx2.example.test");
			break;
		case 1:
			assert_int_equal(res->status, RES_OK);
			assert_int_equal(res->naddrs, 2);
			break;
		case 2:
			snprintf(name, sizeof(name), "nosuch-%d.test", i);
			assert_string_equal(res->name, name);
			assert_int_equal(res->status, RES_NXDOMAIN);
			break;
		case 3:
			assert_int_equal(res->status, RES_TEMP);
			break;
		}
	}
	got_clear(g, MANY);
	free(g);
}

/* A cancelled query never calls back, whether its answer is still out,
 * already in libunbound's pipe, or finished without the network. */
static void
test_cancel(void **state)
{
	struct fix *f = *state;
	struct got g[4] = { { 0 } };
	struct resolver_query *q0, *q1, *q3;

	q0 = resolver_mx(f->r, "example.test", got_cb, &g[0]);
	resolver_addr(f->r, "mx1.example.test", got_cb, &g[1]);
	q1 = resolver_mx(f->r, "a..test", got_cb, &g[2]);
	q3 = resolver_mx(f->r, "x.timeout.test", got_cb, &g[3]);
	resolver_cancel(f->r, &q0);
	resolver_cancel(f->r, &q1);
	assert_null(q0);
	assert_null(q1);
	resolver_cancel(f->r, &q0);     /* NULL: nothing */
	assert_int_equal(run_until(f, &g[1], 1, 1, 5000), 1);
	assert_int_equal(g[1].res->status, RES_OK);

	/* answer waiting in the pipe, unread */
	q0 = resolver_mx(f->r, "nullmx.test", got_cb, &g[0]);
	usleep(200000);
	resolver_cancel(f->r, &q0);
	resolver_cancel(f->r, &q3);
	run_for(f, 300);
	assert_int_equal(g[0].called, 0);
	assert_int_equal(g[2].called, 0);
	assert_int_equal(g[3].called, 0);
	got_clear(g, 4);
}

/* Freeing the resolver drops every pending query without a callback. */
static void
test_free_pending(void **state)
{
	struct fix *f = *state;
	struct got g[5] = { { 0 } };

	resolver_mx(f->r, "example.test", got_cb, &g[0]);
	resolver_addr(f->r, "mx2.example.test", got_cb, &g[1]);
	resolver_mx(f->r, "x.timeout.test", got_cb, &g[2]);
	resolver_mx(f->r, "a..test", got_cb, &g[3]);
	usleep(200000);
	resolver_addr(f->r, "v6only.test", got_cb, &g[4]);
	resolver_free(&f->r);
	assert_null(f->r);
	run_for(f, 300);
	for (int i = 0; i < 5; i++)
		assert_int_equal(g[i].called, 0);
}

/* A callback may free the resolver: the other finished queries are dropped. */
static void
test_free_in_callback(void **state)
{
	struct fix *f = *state;
	struct got g[4] = { { 0 } };

	for (int i = 0; i < 4; i++) {
		g[i].free_in_cb = f;
		resolver_mx(f->r, i % 2 ? "a..test" : "example.test", got_cb, &g[i]);
	}
	usleep(200000);
	assert_int_equal(run_until(f, g, 4, 1, 5000), 1);
	assert_null(f->r);
	run_for(f, 200);
	assert_int_equal(g[0].called + g[1].called + g[2].called + g[3].called, 1);
	got_clear(g, 4);
}

static int
parse(const char *hex, uint16_t *pref, char *host, size_t size)
{
	unsigned char b[600];
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;

		sscanf(hex, "%2x", &v);
		b[n++] = (unsigned char)v;
	}
	return resolver_mx_rdata_parse(b, n, pref, host, size);
}

static void
test_mx_rdata(void **state)
{
	char host[RESOLVER_NAME_MAX], hex[1200];
	uint16_t pref = 0;

	assert_int_equal(parse("000a036d7831076578616d706c65047465737400", &pref, host, sizeof(host)), 0);
	assert_int_equal(pref, 10);
	assert_string_equal(host, "mx1.example.test");
	assert_int_equal(parse("ffff034d5831074558414d504c45045445535400", &pref, host, sizeof(host)), 0);
	assert_int_equal(pref, 65535);
	assert_string_equal(host, "mx1.example.test");
	assert_int_equal(parse("000000", &pref, host, sizeof(host)), 0);
	assert_int_equal(pref, 0);
	assert_string_equal(host, ".");
	assert_int_equal(parse("0001035f612d0000", &pref, host, sizeof(host)), -1);  /* trailing byte */
	assert_int_equal(parse("0001045f612d3100", &pref, host, sizeof(host)), 0);
	assert_string_equal(host, "_a-1");

	assert_int_equal(parse("", &pref, host, sizeof(host)), -1);
	assert_int_equal(parse("00", &pref, host, sizeof(host)), -1);
	assert_int_equal(parse("000a", &pref, host, sizeof(host)), -1);
	assert_int_equal(parse("000a03616263", &pref, host, sizeof(host)), -1);        /* no root label */
	assert_int_equal(parse("000a0561626300", &pref, host, sizeof(host)), -1);      /* label overruns */
	assert_int_equal(parse("000ac00c", &pref, host, sizeof(host)), -1);            /* compression */
	assert_int_equal(parse("000a0361626340", &pref, host, sizeof(host)), -1);      /* reserved type */
	assert_int_equal(parse("000a03612e6300", &pref, host, sizeof(host)), -1);      /* dot in label */
	assert_int_equal(parse("000a03612063" "00", &pref, host, sizeof(host)), -1);   /* space */
	assert_int_equal(parse("000a03610063" "00", &pref, host, sizeof(host)), -1);   /* NUL */
	assert_int_equal(parse("000a0000", &pref, host, sizeof(host)), -1);            /* after root */
	/* a 64-octet label */
	strcpy(hex, "000a40");
	for (int i = 0; i < 64; i++)
		strcat(hex, "61");
	strcat(hex, "00");
	assert_int_equal(parse(hex, &pref, host, sizeof(host)), -1);
	/* names of 255 octets parse, 257 do not: 3 labels of 63 plus one of n */
	for (int last = 61; last <= 63; last += 2) {
		strcpy(hex, "000a");
		for (int l = 0; l < 3; l++) {
			strcat(hex, "3f");
			for (int i = 0; i < 63; i++)
				strcat(hex, "62");
		}
		sprintf(hex + strlen(hex), "%02x", last);
		for (int i = 0; i < last; i++)
			strcat(hex, "63");
		strcat(hex, "00");
		if (last == 61) {
			assert_int_equal(parse(hex, &pref, host, sizeof(host)), 0);
			assert_int_equal(strlen(host), 253);
			/* and a buffer one too short is refused, not overrun */
			assert_int_equal(parse(hex, &pref, host, 253), -1);
		} else {
			assert_int_equal(parse(hex, &pref, host, sizeof(host)), -1);
		}
	}
}

/* Every proper prefix of a valid rdata is malformed; the whole parses. */
static void
test_mx_rdata_bytewise(void **state)
{
	static const unsigned char rd[] = {
		0x00, 0x14, 3, 'm', 'x', '2', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0
	};
	char host[RESOLVER_NAME_MAX];
	uint16_t pref;

	for (size_t n = 0; n < sizeof(rd); n++) {
		unsigned char *copy = xmalloc(n ? n : 1);

		/* an exact-size copy, so that valgrind/ASan see any overread */
		memcpy(copy, rd, n);
		assert_int_equal(resolver_mx_rdata_parse(copy, n, &pref, host, sizeof(host)), -1);
		free(copy);
	}
	assert_int_equal(resolver_mx_rdata_parse(rd, sizeof(rd), &pref, host, sizeof(host)), 0);
	assert_int_equal(pref, 20);
	assert_string_equal(host, "mx2.example.test");
	assert_int_equal(resolver_mx_rdata_parse(NULL, 0, &pref, host, sizeof(host)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mx_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mx_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mx_nodata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mx_nxdomain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mx_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_negative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_servfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
		cmocka_unit_test(test_mx_rdata),
		cmocka_unit_test(test_mx_rdata_bytewise),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
