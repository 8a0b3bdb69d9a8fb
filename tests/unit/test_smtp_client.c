/*
 * test_smtp_client: the SMTP client (src/smtp/smtp_client.h) against a fake
 * server. The fake runs in a thread on 127.0.0.1 (a port the kernel picks)
 * and follows a script: lines it expects from the client, replies it sends
 * (well-formed or not), a DATA body it expects byte for byte, a TLS switch,
 * silences, drops. The client runs on an event_base in the test thread,
 * bounded by a guard timer; each scenario then checks what the callbacks
 * reported and that the fake saw exactly its script.
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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "smtp/smtp_client.h"
#include "util/log.h"
#include "util/tls.h"

/* --- the fake server ---------------------------------------------------- */

enum fake_op {
	F_END, F_SEND, F_EXPECT, F_BODY, F_TLS, F_SLEEP, F_QUIET, F_EOF, F_CLOSE, F_SLOW, F_READANY,
	F_EXPIRE
};

struct fake_step {
	enum fake_op op;
	const char *s;
	int ms;
};

#define SEND(x) { F_SEND, x, 0 }
#define EXPECT(x) { F_EXPECT, x, 0 }            /* a line without CRLF; '*' at the end: a prefix */
#define BODY(x) { F_BODY, x, 0 }                /* DATA as on the wire, through CRLF.CRLF; NULL: keep it */
#define STARTTLS_NOW { F_TLS, NULL, 0 }
#define SLEEP(ms) { F_SLEEP, NULL, ms }
/* the client's clock moves past its timeout (smtp_client_expire): no sleep */
#define EXPIRE(stage) { F_EXPIRE, NULL, stage }
#define QUIET(ms) { F_QUIET, NULL, ms }         /* nothing may arrive for ms */
#define CLIENT_CLOSES { F_EOF, NULL, 0 }        /* the client closes, saying nothing more */
#define DROP { F_CLOSE, NULL, 0 }
#define SLOW(x, ms) { F_SLOW, x, ms }           /* send byte by byte, ms apart */
#define READANY { F_READANY, NULL, 0 }          /* read whatever comes, e.g. a ClientHello */
#define END { F_END, NULL, 0 }

#define FAKE_WAIT_MS 4000

struct fake {
	int lfd, fd, port;
	SSL_CTX *ctx;
	SSL *ssl;
	const struct fake_step *script;
	pthread_t th;
	int pipe[2];
	char err[1024];
	char *in;
	size_t inlen, incap;
	char *body;               /* the last BODY(NULL) */
	size_t bodylen;
};

static char tmpdir[64];
static SSL_CTX *server_ctx, *client_ctx;

static int __attribute__((format(printf, 2, 3)))
fake_fail(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	if (f->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(f->err, sizeof(f->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static ssize_t
fake_send(struct fake *f, const char *s, size_t n)
{
	if (f->ssl)
		return SSL_write(f->ssl, s, (int)n) > 0 ? (ssize_t)n : -1;
	return send(f->fd, s, n, MSG_NOSIGNAL);
}

/* Read more into f->in: >0 bytes, 0 end of file (or reset), -1 timeout. */
static int
fake_fill(struct fake *f, int ms)
{
	struct pollfd pfd = { f->fd, POLLIN, 0 };
	ssize_t r;

	if (!(f->ssl && SSL_pending(f->ssl) > 0) && poll(&pfd, 1, ms) <= 0)
		return -1;
	if (f->inlen + 65536 > f->incap) {
		f->incap = (f->incap + 65536) * 2;
		f->in = realloc(f->in, f->incap);
	}
	if (f->ssl) {
		r = SSL_read(f->ssl, f->in + f->inlen, 65536);
		if (r <= 0)
			return SSL_get_error(f->ssl, (int)r) == SSL_ERROR_WANT_READ ? -1 : 0;
	} else {
		r = recv(f->fd, f->in + f->inlen, 65536, 0);
		if (r < 0)
			return errno == EAGAIN ? -1 : 0;
	}
	f->inlen += (size_t)r;
	return (int)r;
}

static void
fake_consume(struct fake *f, size_t n)
{
	memmove(f->in, f->in + n, f->inlen - n);
	f->inlen -= n;
}

static int
fake_expect(struct fake *f, const char *want)
{
	char *crlf;
	size_t n, wl = strlen(want);
	int rc, prefix = wl > 0 && want[wl - 1] == '*';

	while ((crlf = f->inlen ? memmem(f->in, f->inlen, "\r\n", 2) : NULL) == NULL)
		if ((rc = fake_fill(f, FAKE_WAIT_MS)) <= 0)
			return fake_fail(f, "expected \"%s\", got %s after \"%.*s\"", want,
					 rc == 0 ? "end of file" : "silence", (int)f->inlen, f->in);
	n = (size_t)(crlf - f->in);
	if (prefix ? n < wl - 1 || memcmp(f->in, want, wl - 1) != 0 : n != wl || memcmp(f->in, want, n) != 0)
		return fake_fail(f, "expected \"%s\", got \"%.*s\"", want, (int)n, f->in);
	fake_consume(f, n + 2);
	return 0;
}

static int
fake_body(struct fake *f, const char *want)
{
	char *end;
	size_t n;

	for (;;) {
		if (f->inlen >= 3 && memcmp(f->in, ".\r\n", 3) == 0) {
			n = 3;
			break;
		}
		if ((end = f->inlen ? memmem(f->in, f->inlen, "\r\n.\r\n", 5) : NULL) != NULL) {
			n = (size_t)(end - f->in) + 5;
			break;
		}
		if (fake_fill(f, FAKE_WAIT_MS) <= 0)
			return fake_fail(f, "the body did not end: \"%.200s\"", f->in);
	}
	if (want == NULL) {
		free(f->body);
		f->body = malloc(n);
		memcpy(f->body, f->in, n);
		f->bodylen = n;
	} else if (n != strlen(want) || memcmp(f->in, want, n) != 0) {
		return fake_fail(f, "body: want \"%s\", got \"%.*s\"", want, (int)n, f->in);
	}
	fake_consume(f, n);
	return 0;
}

static int
fake_tls(struct fake *f)
{
	if (f->inlen > 0)
		return fake_fail(f, "the client sent \"%.*s\" behind STARTTLS", (int)f->inlen, f->in);
	f->ssl = SSL_new(server_ctx);
	SSL_set_fd(f->ssl, f->fd);
	if (SSL_accept(f->ssl) != 1)
		return fake_fail(f, "server TLS handshake failed");
	return 0;
}

/* Nothing may arrive for ms; or (eof) the client closes without a word. */
static int
fake_silence(struct fake *f, int ms, int eof)
{
	int rc;

	if (f->inlen > 0)
		return fake_fail(f, "unexpected \"%.*s\"", (int)f->inlen, f->in);
	rc = fake_fill(f, ms);
	if (eof && rc == 0)
		return 0;
	if (!eof && rc < 0)
		return 0;
	if (rc > 0)
		return fake_fail(f, "unexpected \"%.*s\"", (int)f->inlen, f->in);
	return fake_fail(f, eof ? "the client did not close" : "the client closed");
}

static void
fake_close(struct fake *f)
{
	if (f->ssl) {
		SSL_free(f->ssl);
		f->ssl = NULL;
	}
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int
fake_do(struct fake *f, const struct fake_step *st)
{
	switch (st->op) {
	case F_SEND:
		return fake_send(f, st->s, strlen(st->s)) < 0 ? fake_fail(f, "send failed") : 0;
	case F_EXPECT:
		return fake_expect(f, st->s);
	case F_BODY:
		return fake_body(f, st->s);
	case F_TLS:
		return fake_tls(f);
	case F_SLEEP:
		usleep((useconds_t)st->ms * 1000);
		return 0;
	case F_QUIET:
		return fake_silence(f, st->ms, 0);
	case F_EOF:
		return fake_silence(f, FAKE_WAIT_MS, 1);
	case F_CLOSE:
		fake_close(f);
		return 0;
	case F_SLOW:
		for (const char *p = st->s; *p; p++) {
			if (fake_send(f, p, 1) < 0)
				break;   /* the client gave up: that is the point */
			usleep((useconds_t)st->ms * 1000);
		}
		return 0;
	case F_EXPIRE: {
		char b = (char)('0' + st->ms);   /* the stage the client must be at */
		return write(f->pipe[1], &b, 1) == 1 ? 0 : fake_fail(f, "pipe");
	}
	case F_READANY:
		if (f->inlen == 0 && fake_fill(f, FAKE_WAIT_MS) <= 0)
			return fake_fail(f, "nothing came");
		f->inlen = 0;
		return 0;
	default:
		return 0;
	}
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd = { f->lfd, POLLIN, 0 };
	struct timeval tv = { FAKE_WAIT_MS / 1000, 0 };

	if (poll(&pfd, 1, FAKE_WAIT_MS) != 1 || (f->fd = accept(f->lfd, NULL, NULL)) < 0) {
		fake_fail(f, "no connection");
	} else {
		setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(f->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		for (const struct fake_step *st = f->script; st->op != F_END; st++)
			if (fake_do(f, st) != 0)
				break;
	}
	fake_close(f);
	if (write(f->pipe[1], "x", 1) != 1)
		abort();
	return NULL;
}

/* A socket bound to a port the kernel picked; listening or not. */
static int
bound_socket(int *port_r, int do_listen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

static struct fake *
fake_start(const struct fake_step *script)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->fd = -1;
	f->script = script;
	f->lfd = bound_socket(&f->port, 1);
	assert_int_equal(pipe(f->pipe), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

/* --- the client side ---------------------------------------------------- */

struct res {
	enum smtp_client_status status;
	enum smtp_client_stage stage;
	int code;
	char esc[16];
	char text[700];
	int local, dup, plain;
};

struct done {
	struct res msg;
	struct res rcpt[8];
	int nrcpt, naccepted;
};

struct t {
	struct smtp_client_opts opts;
	struct event_base *base;
	struct fake *f;
	struct smtp_client *c;
	struct event *guard, *pipe_ev;
	int srv_done, cli_done, timed_out, use_free;
	int expired;                /* timers fired through smtp_client_expire */
	int expire_at;              /* ... at this stage */
	struct event *expire_ev;
	struct smtp_client_msg msgs[4];
	int nmsg, fds[4];
	int ready_called, ext, tls, usable_after[4];
	unsigned long long size_limit;
	struct res ready;
	struct done done[4];
	int ndone;
	struct timespec t0;
	long elapsed_ms;
	const char *const *etrn;  /* domains for ETRN after the greeting */
	struct res etrn_res[4];
	int netrn;
};

static void
res_copy(struct res *d, const struct smtp_client_result *s)
{
	d->status = s->status;
	d->stage = s->stage;
	d->code = s->code;
	snprintf(d->esc, sizeof(d->esc), "%s", s->esc);
	snprintf(d->text, sizeof(d->text), "%s", s->text ? s->text : "(null)");
	d->local = s->local;
	d->dup = s->dup;
	d->plain = s->plain_retry;
}

static void
t_maybe_stop(struct t *t)
{
	if (t->srv_done && t->cli_done)
		event_base_loopbreak(t->base);
}

static void
t_end_client(struct t *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	t->elapsed_ms = (now.tv_sec - t->t0.tv_sec) * 1000 + (now.tv_nsec - t->t0.tv_nsec) / 1000000;
	if (t->use_free)
		smtp_client_free(&t->c);
	else
		smtp_client_quit(&t->c);
	assert_null(t->c);
	t->cli_done = 1;
	t_maybe_stop(t);
}

static void
on_done(struct smtp_client *c, const struct smtp_client_msg_result *res, void *arg)
{
	struct t *t = arg;
	struct done *d = &t->done[t->ndone];

	assert_ptr_equal(c, t->c);
	res_copy(&d->msg, &res->msg);
	d->nrcpt = res->nrcpt;
	d->naccepted = res->naccepted;
	for (int i = 0; i < res->nrcpt && i < 8; i++)
		res_copy(&d->rcpt[i], &res->rcpt[i]);
	t->usable_after[t->ndone] = smtp_client_usable(c);
	t->ndone++;
	if (t->ndone < t->nmsg)
		smtp_client_send(c, &t->msgs[t->ndone], on_done, t);
	else
		t_end_client(t);
}

static void
on_etrn(struct smtp_client *c, const struct smtp_client_result *res, void *arg)
{
	struct t *t = arg;

	assert_ptr_equal(c, t->c);
	res_copy(&t->etrn_res[t->netrn++], res);
	if (res->status != SMTP_CLIENT_PERM && smtp_client_usable(c) && t->etrn[t->netrn] != NULL)
		smtp_client_etrn(c, t->etrn[t->netrn], on_etrn, t);
	else
		t_end_client(t);
}

static void
on_ready(struct smtp_client *c, const struct smtp_client_result *res, void *arg)
{
	struct t *t = arg;

	assert_ptr_equal(c, t->c);
	assert_int_equal(t->ready_called, 0);
	t->ready_called = 1;
	res_copy(&t->ready, res);
	t->ext = smtp_client_extensions(c);
	t->tls = smtp_client_tls_active(c);
	t->size_limit = smtp_client_size_limit(c);
	if (res->status == SMTP_CLIENT_OK && t->etrn != NULL)
		smtp_client_etrn(c, t->etrn[0], on_etrn, t);
	else if (res->status == SMTP_CLIENT_OK && t->nmsg > 0)
		smtp_client_send(c, &t->msgs[0], on_done, t);
	else
		t_end_client(t);
}

static void on_expire(evutil_socket_t fd, short what, void *arg);

static void
on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;
	char b;

	if (read(fd, &b, 1) != 1)
		return;
	if (b >= '0' && b <= '9') {
		/* move the client's clock once it has reached that stage (it may
		 * still be reading what came before) */
		t->expire_at = b - '0';
		on_expire(-1, 0, t);
		return;
	}
	t->srv_done = 1;
	event_del(t->pipe_ev);
	t_maybe_stop(t);
}

static void
on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;
	struct timeval ms = { 0, 1000 };

	if (t->c != NULL && smtp_client_expire(t->c, (enum smtp_client_stage)t->expire_at) == 0) {
		t->expired++;
		return;
	}
	if (t->expire_ev == NULL)
		t->expire_ev = evtimer_new(t->base, on_expire, t);
	evtimer_add(t->expire_ev, &ms);
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;

	t->timed_out = 1;
	event_base_loopbreak(t->base);
}

static void
t_init(struct t *t)
{
	memset(t, 0, sizeof(*t));
	t->opts.addr = "127.0.0.1";
	t->opts.helo = "client.test";
	t->opts.log_id = "T1";
	t->opts.tls = SMTP_CLIENT_TLS_NONE;
	/* short enough that a broken scenario ends soon, long enough for valgrind */
	t->opts.timeouts = (struct smtp_client_timeouts){ 3000, 3000, 3000, 3000, 3000, 3000, 3000,
							  3000, 3000, 3000 };
}

/* A message: body in a file after a junk header, so offset matters. */
static struct smtp_client_msg *
t_msg(struct t *t, const char *body, size_t len, const char *const *rcpt)
{
	static const char junk[] = "TQ1\nnot part of the message\r\n.\r\n";
	struct smtp_client_msg *m = &t->msgs[t->nmsg];
	char path[128];
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/msg%d", tmpdir, t->nmsg);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, body + off, len - off);

		assert_true(w > 0);
		off += (size_t)w;
	}
	while (rcpt[n])
		n++;
	m->sender = "s@example.org";
	m->rcpt = rcpt;
	m->nrcpt = n;
	m->fd = fd;
	m->offset = sizeof(junk) - 1;
	m->length = (off_t)len;
	t->fds[t->nmsg++] = fd;
	return m;
}

/* Run the script (NULL: no server; opts.port must be set) to its end. */
static void
t_run(struct t *t, const struct fake_step *script)
{
	struct timeval guard = { 10, 0 };

	t->base = event_base_new();
	if (script) {
		t->f = fake_start(script);
		t->opts.port = t->f->port;
		t->pipe_ev = event_new(t->base, t->f->pipe[0], EV_READ | EV_PERSIST, on_pipe, t);
		event_add(t->pipe_ev, NULL);
	} else {
		t->srv_done = 1;
	}
	t->guard = evtimer_new(t->base, on_guard, t);
	evtimer_add(t->guard, &guard);
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	t->c = smtp_client_new(t->base, &t->opts, on_ready, t);
	assert_non_null(t->c);
	event_base_dispatch(t->base);
	smtp_client_free(&t->c);
	event_free(t->guard);
	if (t->expire_ev)
		event_free(t->expire_ev);
	if (t->pipe_ev)
		event_free(t->pipe_ev);
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	event_base_free(t->base);
	for (int i = 0; i < t->nmsg; i++)
		close(t->fds[i]);
	if (t->f) {
		pthread_join(t->f->th, NULL);
		if (t->f->err[0])
			fail_msg("fake server: %s", t->f->err);
	}
	assert_false(t->timed_out);
	assert_true(t->ready_called);
}

static void
t_free(struct t *t)
{
	if (t->f) {
		close(t->f->lfd);
		close(t->f->pipe[0]);
		close(t->f->pipe[1]);
		free(t->f->in);
		free(t->f->body);
		free(t->f);
		t->f = NULL;
	}
}

static void
assert_res(const struct res *r, enum smtp_client_status status, enum smtp_client_stage stage,
	   int code, const char *esc)
{
	if (r->status != status || r->stage != stage || r->code != code || strcmp(r->esc, esc) != 0)
		fail_msg("result: status %d stage %s code %d esc %s text \"%s\"; want status %d stage %s "
			 "code %d esc %s", r->status, smtp_client_stage_name(r->stage), r->code, r->esc,
			 r->text, status, smtp_client_stage_name(stage), code, esc);
}

static int
log_has(const char *needle)
{
	char path[128], buf[1 << 16];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/log", tmpdir);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

#define GREETING SEND("220 fake.test ESMTP\r\n")
#define EHLO_PIPE SEND("250-fake.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n" \
		       "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n")
#define EHLO_PLAIN SEND("250-fake.test\r\n250 ENHANCEDSTATUSCODES\r\n")
#define BYE EXPECT("QUIT"), SEND("221 2.0.0 Bye\r\n"), CLIENT_CLOSES

static const char *const rcpt1[] = { "a@example.test", NULL };
static const char *const rcpt2[] = { "a@example.test", "b@example.test", NULL };
static const char *const rcpt3[] = { "a@example.test", "b@example.test", "c@example.test", NULL };
static const char body1[] = "Subject: x\r\n\r\nhello\r\n";

/* A body of 16-octet lines, every other one starting with a dot, so the
 * 64 KiB read boundaries fall on dotted line starts; and its wire form. */
static char *
big_body(size_t len, char **want_r, size_t *wlen_r)
{
	char *big = malloc(len), *want = malloc(2 * len + 8);
	size_t wlen = 0;

	for (size_t i = 0; i < len; i += 16)
		memcpy(big + i, i % 32 == 0 ? ".dot line 0123\r\n" : "plain line 012\r\n", 16);
	for (size_t i = 0; i < len; i++) {
		if (big[i] == '.' && (i == 0 || big[i - 1] == '\n'))
			want[wlen++] = '.';
		want[wlen++] = big[i];
	}
	memcpy(want + wlen, ".\r\n", 3);
	*wlen_r = wlen + 3;
	*want_r = want;
	assert_int_equal(big[65536], '.');
	return big;
}

/* --- scenarios ---------------------------------------------------------- */

/* PIPELINING: MAIL, both RCPTs and DATA arrive before any reply is sent. */
static void
test_pipelined(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21 BODY=8BITMIME"),
		EXPECT("RCPT TO:<a@example.test>"), EXPECT("RCPT TO:<b@example.test>"), EXPECT("DATA"),
		SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n"),
		BODY("Subject: x\r\n\r\nhello\r\n.\r\n"),
		SEND("250 2.0.0 Ok: queued as ABC\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt2)->body8bit = 1;
	t_run(&t, script);
	assert_res(&t.ready, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_int_equal(t.ext, SMTP_CLIENT_EXT_PIPELINING | SMTP_CLIENT_EXT_SIZE | SMTP_CLIENT_EXT_8BITMIME |
			 SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES | SMTP_CLIENT_EXT_SMTPUTF8);
	assert_int_equal(t.size_limit, 100000);
	assert_int_equal(t.ndone, 1);
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_string_equal(t.done[0].msg.text, "Ok: queued as ABC");
	assert_int_equal(t.done[0].nrcpt, 2);
	assert_int_equal(t.done[0].naccepted, 2);
	assert_res(&t.done[0].rcpt[0], SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_res(&t.done[0].rcpt[1], SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_true(t.usable_after[0]);
	assert_true(log_has("T1: event=smtp_connect addr=[127.0.0.1]:"));
	t_free(&t);
}

/* Without PIPELINING, each command waits for the previous reply. */
static void
test_lockstep(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("MAIL FROM:<s@example.org>"), QUIET(100), SEND("250 2.1.0 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), QUIET(100), SEND("250 2.1.5 Ok\r\n"),
		EXPECT("RCPT TO:<b@example.test>"), QUIET(100), SEND("250 2.1.5 Ok\r\n"),
		EXPECT("DATA"), QUIET(100), SEND("354 go\r\n"),
		BODY("Subject: x\r\n\r\nhello\r\n.\r\n"), SEND("250 2.0.0 queued\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt2)->body8bit = 1;   /* no 8BITMIME offered: no BODY= */
	t_run(&t, script);
	assert_int_equal(t.ext, SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES);
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_int_equal(t.done[0].naccepted, 2);
	t_free(&t);
}

/* EHLO 502 → HELO, then a plain RFC 821 conversation. */
static void
test_helo_fallback(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("502 5.5.2 Error: command not recognized\r\n"),
		EXPECT("HELO client.test"), SEND("250 fake.test\r\n"),
		EXPECT("MAIL FROM:<>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		BODY("Subject: x\r\n\r\nhello\r\n.\r\n"), SEND("250 Ok\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1)->sender = "";
	t_run(&t, script);
	assert_res(&t.ready, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_int_equal(t.ext, 0);
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	t_free(&t);
}

/* Dot-stuffing on the wire, CRLF.CRLF at the end, stray CR and LF sent as
 * CRLF; and a big body whose lines start with dots at the read boundaries. */
static void
test_dot_stuffing(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"), EXPECT("DATA"), SEND("354 go\r\n"),
		BODY("..leading\r\n...two\r\n..\r\nmid . dot\r\n..\r\n.\r\n"), SEND("250 Ok\r\n"),
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"), EXPECT("DATA"), SEND("354 go\r\n"),
		BODY("a\r\nb\r\n..c\r\nd\r\n.\r\n"), SEND("250 Ok\r\n"),
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"), EXPECT("DATA"), SEND("354 go\r\n"),
		BODY(".\r\n"), SEND("250 Ok\r\n"),
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"), EXPECT("DATA"), SEND("354 go\r\n"),
		BODY(NULL), SEND("250 Ok\r\n"), BYE, END
	};
	static const char dots[] = ".leading\r\n..two\r\n.\r\nmid . dot\r\n.\r\n";
	static const char bare[] = "a\nb\r\n.c\rd";
	size_t biglen = 300000, wlen;
	char *want, *big = big_body(biglen, &want, &wlen);
	struct t t;

	t_init(&t);
	t_msg(&t, dots, strlen(dots), rcpt1);
	t_msg(&t, bare, strlen(bare), rcpt1);
	t_msg(&t, "", 0, rcpt1);
	t_msg(&t, big, biglen, rcpt1);
	free(big);
	t_run(&t, script);
	assert_int_equal(t.ndone, 4);
	for (int i = 0; i < 4; i++)
		assert_res(&t.done[i].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_int_equal(t.f->bodylen, wlen);
	assert_memory_equal(t.f->body, want, wlen);
	free(want);
	t_free(&t);
}

/* One recipient of three is refused: only that one fails. */
static void
test_one_rcpt_refused(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"),
		EXPECT("RCPT TO:<b@example.test>"), EXPECT("RCPT TO:<c@example.test>"), EXPECT("DATA"),
		SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 <b@example.test>: Recipient address rejected:\r\n"
		     "550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n354 go\r\n"),
		BODY("Subject: x\r\n\r\nhello\r\n.\r\n"), SEND("250 2.0.0 Ok: queued\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt3);
	t_run(&t, script);
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_int_equal(t.done[0].naccepted, 2);
	assert_res(&t.done[0].rcpt[0], SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_res(&t.done[0].rcpt[1], SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_RCPT, 550, "5.1.1");
	assert_string_equal(t.done[0].rcpt[1].text,
			    "<b@example.test>: Recipient address rejected: User unknown");
	assert_false(t.done[0].rcpt[1].local);
	assert_res(&t.done[0].rcpt[2], SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	t_free(&t);
}

/* Every recipient refused without PIPELINING: no DATA; the next message on
 * the connection starts with RSET. */
static void
test_all_refused_lockstep(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("550 5.1.1 no such user\r\n"),
		EXPECT("RCPT TO:<b@example.test>"), SEND("450 4.2.0 mailbox busy\r\n"),
		/* RSET, not DATA, comes next */
		EXPECT("RSET"), SEND("250 Ok\r\n"),
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"), EXPECT("DATA"), SEND("354 go\r\n"),
		BODY("Subject: x\r\n\r\nhello\r\n.\r\n"), SEND("250 Ok\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt2);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, script);
	assert_int_equal(t.ndone, 2);
	/* temporary as a whole, since one refusal was */
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_RCPT, 450, "4.2.0");
	assert_int_equal(t.done[0].naccepted, 0);
	assert_res(&t.done[0].rcpt[0], SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_RCPT, 550, "5.1.1");
	assert_res(&t.done[0].rcpt[1], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_RCPT, 450, "4.2.0");
	assert_true(t.usable_after[0]);
	assert_res(&t.done[1].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	t_free(&t);
}

/* Every recipient refused with PIPELINING: DATA was sent and is refused;
 * then one that a broken server accepts anyway gets a lone dot (RFC 2920). */
static void
test_all_refused_pipelined(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n554 5.5.1 Error: no valid recipients\r\n"),
		EXPECT("RSET"), EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"),
		EXPECT("DATA"),
		SEND("250 Ok\r\n250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n354 go ahead anyway\r\n"),
		BODY(".\r\n"), SEND("554 5.5.1 no valid recipients\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, script);
	assert_int_equal(t.ndone, 2);
	for (int i = 0; i < 2; i++) {
		assert_res(&t.done[i].msg, SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_RCPT, 550, "5.1.1");
		assert_res(&t.done[i].rcpt[0], SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_RCPT, 550, "5.1.1");
		assert_true(t.usable_after[i]);
	}
	t_free(&t);
}

/* A 4xx greeting: temporary, at the greeting, and the server hangs up.
 * A 5xx greeting: permanent, and the client still says QUIT. */
static void
test_greeting_refused(void **state)
{
	static const struct fake_step s421[] = {
		SEND("421 4.3.2 fake.test busy, try later\r\n"), CLIENT_CLOSES, END
	};
	static const struct fake_step s554[] = {
		SEND("554 5.7.1 go away\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s421);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_GREETING, 421, "4.3.2");
	assert_string_equal(t.ready.text, "fake.test busy, try later");
	assert_false(t.ready.local);
	assert_int_equal(t.ndone, 0);
	t_free(&t);

	t_init(&t);
	t_run(&t, s554);
	assert_res(&t.ready, SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_GREETING, 554, "5.7.1");
	t_free(&t);
}

/* 421 to MAIL: temporary for every recipient, connection gone, and a next
 * message on it fails at once. A 451 to a pipelined MAIL: the 503s that
 * follow for RCPT and DATA do not make it permanent. */
static void
test_mail_refused(void **state)
{
	static const struct fake_step s421[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"),
		EXPECT("RCPT TO:<b@example.test>"), EXPECT("DATA"),
		SEND("421 4.3.0 fake.test shutting down\r\n"), CLIENT_CLOSES, END
	};
	static const struct fake_step s451[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"),
		EXPECT("RCPT TO:<b@example.test>"), EXPECT("DATA"),
		SEND("451 4.3.0 queue full\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
		     "503 5.5.1 need MAIL\r\n"),
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"),
		EXPECT("DATA"), SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"),
		BODY("Subject: x\r\n\r\nhello\r\n.\r\n"), SEND("250 Ok\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt2);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s421);
	assert_int_equal(t.ndone, 2);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 421, "4.3.0");
	assert_res(&t.done[0].rcpt[0], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 421, "4.3.0");
	assert_res(&t.done[0].rcpt[1], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 421, "4.3.0");
	assert_false(t.usable_after[0]);
	assert_int_equal(t.done[1].msg.status, SMTP_CLIENT_TEMP);
	assert_int_equal(t.done[1].rcpt[0].status, SMTP_CLIENT_TEMP);
	t_free(&t);

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt2);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s451);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 451, "4.3.0");
	assert_res(&t.done[0].rcpt[0], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 451, "4.3.0");
	assert_res(&t.done[0].rcpt[1], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 451, "4.3.0");
	assert_true(t.usable_after[0]);
	assert_res(&t.done[1].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	t_free(&t);
}

/* A closed port, and an address that is not one. */
static void
test_connect_refused(void **state)
{
	struct t t;
	int fd;

	t_init(&t);
	fd = bound_socket(&t.opts.port, 0);   /* bound, never listening: refused */
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, NULL);
	close(fd);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.1");
	assert_true(t.ready.local);
	assert_non_null(strstr(t.ready.text, "refused"));
	assert_int_equal(t.ndone, 0);
	t_free(&t);

	t_init(&t);
	t.opts.addr = "mx.example.test";
	t.opts.port = 25;
	t_run(&t, NULL);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.1");
	t_free(&t);
}

/* A connect that never completes (the listener's queue is full, so the
 * kernel drops the SYN): a timeout at the connect stage. */
static void
test_connect_timeout(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct t t;
	int lfd, fd;

	t_init(&t);
	lfd = bound_socket(&t.opts.port, 0);
	assert_int_equal(listen(lfd, 0), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(t.opts.port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	t.opts.timeouts.connect = 300;
	t_run(&t, NULL);
	close(fd);
	close(lfd);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.1");
	assert_non_null(strstr(t.ready.text, "timeout"));
	assert_true(t.elapsed_ms >= 290);
	t_free(&t);
}

/* A greeting whose line never ends: a timeout, not a hang. */
static void
test_endless_reply(void **state)
{
	static const struct fake_step script[] = { SEND("220 fake.test ESMTP"), EXPIRE(SMTP_CLIENT_STAGE_GREETING), CLIENT_CLOSES,
						   END };
	struct t t;

	/* a timeout no real clock reaches in this test: the seam moves time */
	t_init(&t);
	t.opts.timeouts.greeting = 600000;
	t_run(&t, script);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_GREETING, 421, "4.4.2");
	assert_non_null(strstr(t.ready.text, "timeout after 600000 ms"));
	assert_int_equal(t.expired, 1);
	t_free(&t);
}

/* Replies the parser refuses end the connection with a temporary failure
 * at the stage they came in, and nothing after them is believed. */
static void
test_bad_replies(void **state)
{
	static char longline[700];
	static const struct fake_step s_long[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND(longline), CLIENT_CLOSES, END
	};
	static const struct fake_step s_mismatch[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250-Ok\r\n251 Ok\r\n"), CLIENT_CLOSES, END
	};
	static const struct fake_step s_ehlo[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250-PIPELINING\r\n25"),
		SLEEP(50), SEND("0 SIZE\r\n"),
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY("Subject: x\r\n\r\nhello\r\n.\r\n"),
		SEND("250 Ok\r\n"), BYE, END
	};
	struct t t;

	snprintf(longline, sizeof(longline), "250 2.1.0 Ok\r\n250 %0600d\r\n354 go\r\n", 0);
	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s_long);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_RCPT, 421, "4.5.0");
	assert_non_null(strstr(t.done[0].msg.text, "too long"));
	assert_res(&t.done[0].rcpt[0], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_RCPT, 421, "4.5.0");
	assert_false(t.done[0].msg.dup);
	t_free(&t);

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s_mismatch);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_MAIL, 421, "4.5.0");
	assert_non_null(strstr(t.done[0].msg.text, "differ"));
	t_free(&t);

	/* an EHLO reply that arrives split inside a code is one reply;
	 * "SIZE" without a number means no limit */
	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s_ehlo);
	assert_int_equal(t.ext, SMTP_CLIENT_EXT_PIPELINING | SMTP_CLIENT_EXT_SIZE);
	assert_int_equal(t.size_limit, 0);
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	t_free(&t);
}

/* A drop after the final dot: temporary, and possibly delivered. */
static void
test_drop_after_dot(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY("Subject: x\r\n\r\nhello\r\n.\r\n"), DROP, END
	};
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, script);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_DOT, 421, "4.4.2");
	assert_true(t.done[0].msg.dup);
	assert_true(t.done[0].rcpt[0].dup);
	assert_int_equal(t.done[0].rcpt[0].status, SMTP_CLIENT_TEMP);
	assert_true(log_has("possible_duplicate=yes"));
	t_free(&t);
}

/* A drop in the middle of a big body: temporary, not a duplicate. */
static void
test_drop_mid_data(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), SEND("250 Ok\r\n"), EXPECT("DATA"), SEND("354 go\r\n"),
		READANY, DROP, END
	};
	size_t len = 16 << 20;
	char *big = malloc(len);
	struct t t;

	for (size_t i = 0; i < len; i += 64)
		memcpy(big + i, "0123456789012345678901234567890123456789012345678901234567890\r\n", 64);
	t_init(&t);
	t_msg(&t, big, len, rcpt1);
	free(big);
	t_run(&t, script);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_DATA, 421, "4.4.2");
	assert_false(t.done[0].msg.dup);
	t_free(&t);
}

/* STARTTLS: what the server sends behind "220" in the clear is thrown away
 * (a forged EHLO reply here, without SIZE); after the handshake EHLO is
 * asked again and its answer (with SIZE) is the one that counts. */
static void
test_starttls(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"),
		SEND("250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready to start TLS\r\n250-forged\r\n250 PIPELINING\r\n"),
		STARTTLS_NOW, EXPECT("EHLO client.test"),
		SEND("250-fake.test\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n"),
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY("Subject: x\r\n\r\nhello\r\n.\r\n"),
		SEND("250 2.0.0 Ok\r\n"),
		EXPECT("MAIL FROM:<s@example.org>*"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY(NULL), SEND("250 2.0.0 Ok\r\n"), BYE, END
	};
	size_t biglen = 1 << 20, wlen;
	char *want, *big = big_body(biglen, &want, &wlen);
	struct t t;

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_MAY;
	t.opts.tls_ctx = client_ctx;
	t.opts.servername = "fake.test";
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_msg(&t, big, biglen, rcpt1);
	free(big);
	t_run(&t, script);
	assert_int_equal(t.f->bodylen, wlen);
	assert_memory_equal(t.f->body, want, wlen);
	free(want);
	assert_res(&t.ready, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_true(t.tls);
	assert_int_equal(t.ext, SMTP_CLIENT_EXT_PIPELINING | SMTP_CLIENT_EXT_SIZE);
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_true(log_has("event=smtp_tls_discard bytes=28"));
	assert_true(log_has("event=smtp_tls addr=[127.0.0.1]"));
	t_free(&t);
}

/* A relay host's AUTH PLAIN after STARTTLS (the secret base64 on the
 * wire, never in the log); refused, or offered only in the clear, or not
 * offered at all: a temporary 454 4.7.0 of stage auth, then QUIT. */
static void
test_auth_plain(void **state)
{
	static const struct fake_step ok[] = {
		GREETING, EXPECT("EHLO client.test"),
		SEND("250-fake.test\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready\r\n"),
		STARTTLS_NOW, EXPECT("EHLO client.test"),
		SEND("250-fake.test\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n"),
		/* base64 of "\0relay@isp.test\0s3cret" */
		EXPECT("AUTH PLAIN AHJlbGF5QGlzcC50ZXN0AHMzY3JldA=="),
		SEND("235 2.7.0 Authentication successful\r\n"),
		EXPECT("MAIL FROM:<s@example.org>"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY("Subject: x\r\n\r\nhello\r\n.\r\n"),
		SEND("250 2.0.0 Ok\r\n"), BYE, END
	};
	static const struct fake_step refused[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready\r\n"),
		STARTTLS_NOW, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN *"), SEND("535 5.7.8 Authentication credentials invalid\r\n"),
		BYE, END
	};
	static const struct fake_step no_plain[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready\r\n"),
		STARTTLS_NOW, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 AUTH CRAM-MD5\r\n"),
		BYE, END
	};
	static const struct fake_step no_tls[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 AUTH PLAIN\r\n"),
		BYE, END
	};
	const struct fake_step *fails[] = { refused, no_plain, no_tls };
	const char *why[] = { "AUTH as relay@isp.test refused: 535", "offers no AUTH PLAIN",
			      "AUTH needs TLS" };
	struct t t;

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_MAY;
	t.opts.tls_ctx = client_ctx;
	t.opts.auth_user = "relay@isp.test";
	t.opts.auth_password = "s3cret";
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, ok);
	assert_res(&t.ready, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_res(&t.done[0].msg, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_true(log_has("event=smtp_auth addr=[127.0.0.1]"));
	assert_false(log_has("s3cret"));
	assert_false(log_has("AHJlbGF5"));
	t_free(&t);
	for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
		t_init(&t);
		t.opts.tls = i == 2 ? SMTP_CLIENT_TLS_NONE : SMTP_CLIENT_TLS_MAY;
		t.opts.tls_ctx = client_ctx;
		t.opts.auth_user = "relay@isp.test";
		t.opts.auth_password = "s3cret";
		t_msg(&t, body1, strlen(body1), rcpt1);
		t_run(&t, fails[i]);
		assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_AUTH, 454, "4.7.0");
		assert_non_null(strstr(t.ready.text, why[i]));
		assert_int_equal(t.ndone, 0);
		t_free(&t);
	}
}

/* encrypt and no STARTTLS: 4.7.0, and QUIT. STARTTLS refused under may:
 * plaintext. */
static void
test_tls_required(void **state)
{
	static const struct fake_step s_none[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE, BYE, END
	};
	static const struct fake_step s_454[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("454 4.7.0 TLS not available\r\n"), BYE, END
	};
	struct t t;

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_ENCRYPT;
	t.opts.tls_ctx = client_ctx;
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s_none);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_TLS, 421, "4.7.0");
	assert_true(t.ready.local);
	assert_false(t.ready.plain);
	assert_int_equal(t.ndone, 0);
	t_free(&t);

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_MAY;
	t.opts.tls_ctx = client_ctx;
	t_run(&t, s_454);
	assert_res(&t.ready, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_false(t.tls);
	t_free(&t);

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_ENCRYPT;
	t.opts.tls_ctx = client_ctx;
	t_run(&t, s_454);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_TLS, 421, "4.7.0");
	t_free(&t);
}

/* A handshake that fails: may → a distinct result, retry in plaintext;
 * encrypt → 4.7.0. */
static void
test_tls_handshake_fails(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 go ahead\r\n"), READANY,
		SEND("HTTP/1.0 400 Bad Request\r\n\r\n"), DROP, END
	};
	struct t t;

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_MAY;
	t.opts.tls_ctx = client_ctx;
	t_run(&t, script);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_TLS, 421, "4.7.5");
	assert_true(t.ready.plain);
	t_free(&t);

	t_init(&t);
	t.opts.tls = SMTP_CLIENT_TLS_ENCRYPT;
	t.opts.tls_ctx = client_ctx;
	t_run(&t, script);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_TLS, 421, "4.7.0");
	assert_false(t.ready.plain);
	t_free(&t);
}

/* Two messages on one connection, the second sent from the first's
 * callback; the client is dropped with smtp_client_free at the end. */
static void
test_two_messages(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("MAIL FROM:<s@example.org> SIZE=21"), EXPECT("RCPT TO:<a@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY("Subject: x\r\n\r\nhello\r\n.\r\n"),
		SEND("250 2.0.0 first\r\n"),
		EXPECT("MAIL FROM:<t@example.org> SIZE=5 SMTPUTF8"), EXPECT("RCPT TO:<a@example.test>"),
		EXPECT("RCPT TO:<b@example.test>"), EXPECT("DATA"),
		SEND("250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"), BODY("hi\r\n\r\n.\r\n"),
		SEND("250 2.0.0 second\r\n"), CLIENT_CLOSES, END
	};
	struct t t;
	struct smtp_client_msg *m;

	t_init(&t);
	t.use_free = 1;
	t_msg(&t, body1, strlen(body1), rcpt1);
	m = t_msg(&t, "hi\r\n\r\n", 5, rcpt2);   /* a truncated last line gets its CRLF */
	m->sender = "t@example.org";
	m->smtputf8 = 1;
	t_run(&t, script);
	assert_int_equal(t.ndone, 2);
	assert_string_equal(t.done[0].msg.text, "first");
	assert_string_equal(t.done[1].msg.text, "second");
	assert_int_equal(t.done[1].naccepted, 2);
	t_free(&t);
}

/* Refused here, with no word to the server: over its SIZE, or needing
 * SMTPUTF8 it lacks, or an address with a line break. */
static void
test_local_refusal(void **state)
{
	static const struct fake_step script[] = {
		GREETING, EXPECT("EHLO client.test"), SEND("250-fake.test\r\n250 SIZE 10\r\n"), BYE, END
	};
	static const char *const bad[] = { "a@example.test\r\nDATA", NULL };
	struct t t;

	t_init(&t);
	t_msg(&t, body1, strlen(body1), rcpt2);
	t_msg(&t, "hi\r\n", 4, rcpt1)->smtputf8 = 1;
	t_msg(&t, "hi\r\n", 4, bad);
	t_run(&t, script);
	assert_int_equal(t.ndone, 3);
	assert_res(&t.done[0].msg, SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_MAIL, 552, "5.3.4");
	assert_true(t.done[0].msg.local);
	assert_res(&t.done[0].rcpt[1], SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_MAIL, 552, "5.3.4");
	assert_true(t.usable_after[0]);
	assert_res(&t.done[1].msg, SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_MAIL, 553, "5.6.7");
	assert_res(&t.done[2].msg, SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_MAIL, 554, "5.1.3");
	t_free(&t);
}

/* A server slower than the timeout: temporary, at that stage. A reply
 * dribbled a byte at a time does not stretch the timeout either. */
static void
test_slow_server(void **state)
{
	static const struct fake_step s_slow[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("MAIL FROM:<s@example.org>"), SEND("250 Ok\r\n"),
		EXPECT("RCPT TO:<a@example.test>"), EXPIRE(SMTP_CLIENT_STAGE_RCPT), CLIENT_CLOSES, END
	};
	static const struct fake_step s_dribble_expire[] = {
		GREETING, EXPECT("EHLO client.test"),
		SLOW("250-fake.test\r\n250-PIPELINING\r\n", 1), EXPIRE(SMTP_CLIENT_STAGE_HELO), CLIENT_CLOSES, END
	};
	static const struct fake_step s_dribble[] = {
		GREETING, EXPECT("EHLO client.test"),
		SLOW("250-fake.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 30), CLIENT_CLOSES, END
	};
	static const struct fake_step s_ok[] = {
		GREETING, EXPECT("EHLO client.test"), SLEEP(100), EHLO_PLAIN, BYE, END
	};
	struct t t;

	t_init(&t);
	t.opts.timeouts.rcpt = 600000;
	t_msg(&t, body1, strlen(body1), rcpt1);
	t_run(&t, s_slow);
	assert_res(&t.done[0].msg, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_RCPT, 421, "4.4.2");
	assert_non_null(strstr(t.done[0].msg.text, "timeout"));
	assert_int_equal(t.expired, 1);
	t_free(&t);

	/* bytes of a reply that never ends do not restart the timer */
	t_init(&t);
	t.opts.timeouts.helo = 600000;
	t_run(&t, s_dribble_expire);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_HELO, 421, "4.4.2");
	assert_int_equal(t.expired, 1);
	t_free(&t);

	t_init(&t);
	t.opts.timeouts.helo = 300;
	t_run(&t, s_dribble);
	assert_res(&t.ready, SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_HELO, 421, "4.4.2");
	t_free(&t);

	t_init(&t);
	t.opts.timeouts.helo = 1000;
	t_run(&t, s_ok);
	assert_res(&t.ready, SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	t_free(&t);
}

/* ETRN (RFC 1985): each domain in turn; 25x is success, 458/459 a
 * temporary refusal, 5xx (a server without ETRN) permanent; a 421 or a
 * drop ends it; a domain with a space never reaches the server. */
static void
test_etrn(void **state)
{
	static const char *const two[] = { "example.test", "example.org", NULL };
	static const char *const bad[] = { "a b", NULL };
	static const struct fake_step s_ok[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PIPE,
		EXPECT("ETRN example.test"), SEND("250 2.0.0 Queuing started\r\n"),
		EXPECT("ETRN example.org"), SEND("459 4.7.1 Not a relay domain\r\n"), BYE, END
	};
	static const struct fake_step s_unknown[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN,
		EXPECT("ETRN example.test"), SEND("502 5.5.1 Unknown command\r\n"), BYE, END
	};
	static const struct fake_step s_drop[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN, EXPECT("ETRN example.test"), DROP, END
	};
	static const struct fake_step s_bad[] = {
		GREETING, EXPECT("EHLO client.test"), EHLO_PLAIN, BYE, END
	};
	struct t t;

	t_init(&t);
	t.etrn = two;
	t_run(&t, s_ok);
	assert_int_equal(t.netrn, 2);
	assert_res(&t.etrn_res[0], SMTP_CLIENT_OK, SMTP_CLIENT_STAGE_NONE, 250, "2.0.0");
	assert_string_equal(t.etrn_res[0].text, "Queuing started");
	assert_res(&t.etrn_res[1], SMTP_CLIENT_TEMP, SMTP_CLIENT_STAGE_ETRN, 459, "4.7.1");
	t_free(&t);

	t_init(&t);
	t.etrn = two;
	t_run(&t, s_unknown);
	assert_int_equal(t.netrn, 1);
	assert_res(&t.etrn_res[0], SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_ETRN, 502, "5.5.1");
	t_free(&t);

	t_init(&t);
	t.etrn = two;
	t_run(&t, s_drop);
	assert_int_equal(t.netrn, 1);
	assert_int_equal(t.etrn_res[0].status, SMTP_CLIENT_TEMP);
	assert_int_equal(t.etrn_res[0].local, 1);
	t_free(&t);

	t_init(&t);
	t.etrn = bad;
	t_run(&t, s_bad);
	assert_int_equal(t.netrn, 1);
	assert_res(&t.etrn_res[0], SMTP_CLIENT_PERM, SMTP_CLIENT_STAGE_ETRN, 501, "5.5.4");
	t_free(&t);
}

static int
setup(void **state)
{
	char cert[128], key[128], log[128], err[256];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tandem-test-smtp-client-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(log, sizeof(log), "%s/log", tmpdir);
	log_init(log);
	log_set_debug(1);
	if (tls_generate_selfsigned(cert, key, "fake.test", err, sizeof(err)) != 0)
		return -1;
	server_ctx = tls_server_ctx_new(cert, key, NULL, "fake.test", err, sizeof(err));
	client_ctx = tls_client_ctx_new();
	return server_ctx && client_ctx ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_lockstep),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_one_rcpt_refused),
		cmocka_unit_test(test_all_refused_lockstep),
		cmocka_unit_test(test_all_refused_pipelined),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_endless_reply),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_drop_after_dot),
		cmocka_unit_test(test_drop_mid_data),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_tls_required),
		cmocka_unit_test(test_tls_handshake_fails),
		cmocka_unit_test(test_two_messages),
		cmocka_unit_test(test_local_refusal),
		cmocka_unit_test(test_slow_server),
		cmocka_unit_test(test_etrn),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
