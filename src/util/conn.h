/*
 * conn: the connection layer every protocol session stands on (SMTP now,
 * IMAP, POP3 and submission next). One struct conn per client connection
 * on the event loop: plain or implicit TLS, a STARTTLS upgrade that throws
 * away every byte the client sent before the switch, line mode with a
 * maximum length (an over-long line is skipped and reported once), direct
 * access to the input for byte-count and stream modes (SMTP DATA, IMAP
 * literals), replies batched into one write, close-after-flush that waits
 * for the TLS layer, and the session's bounds: a deadline for each command
 * line (not the silence between bytes), an absolute lifetime, and an
 * output watermark above which the connection stops reading, so a client
 * that never reads its replies cannot grow our memory.
 *
 * The listener side (conn_listener) accepts on an address and counts live
 * connections per listener and, through a conn_limits shared by every
 * listener, per client address (IPv4 /32, IPv6 /64) and per network (IPv4
 * /24, IPv6 /48).
 *
 * Rules for the session above: while it has work in flight on a worker it
 * calls conn_pause(); a paused connection reads nothing and fires no timer,
 * so no timer can free a session whose work is not done. end() is final
 * except for a timeout, which leaves room for one last reply; after a
 * final end() the session calls conn_free() (at once or when its work
 * completes). No callback ever runs from inside a call the session made.
 *
 * Public: conn_limits_new, conn_limits_set, conn_limits_free,
 * conn_listener_new, conn_listener_count, conn_listener_port,
 * conn_listener_free, conn_set_callbacks, conn_set_timeouts, conn_free,
 * conn_id, conn_client, conn_client_port, conn_sockaddr, conn_fd,
 * conn_is_tls, conn_tls_info, conn_read_line, conn_read_bytes, conn_input,
 * conn_input_len,
 * conn_progress, conn_printf, conn_vprintf, conn_write, conn_flush,
 * conn_blocked, conn_starttls, conn_close, conn_pause, conn_resume.
 */
#ifndef TANDEM_CONN_H
#define TANDEM_CONN_H
#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evbuffer;
struct conn;
struct conn_listener;
struct conn_limits;

/* Output above this stops the reading of more input (and of more commands
 * already read): a session's memory stays bounded whatever the client does. */
#define CONN_OUT_HIGH (256 * 1024)
/* Input read ahead of the session at most. */
#define CONN_IN_HIGH (256 * 1024)

enum conn_tls_mode { CONN_PLAIN, CONN_IMPLICIT_TLS };

enum conn_end {
	CONN_END_CLOSED,    /* conn_close()'s last bytes have left */
	CONN_END_EOF,       /* the client closed */
	CONN_END_ERROR,     /* socket or TLS error */
	CONN_END_TIMEOUT,   /* a command took longer than its deadline */
	CONN_END_LIFETIME   /* the session outlived its absolute limit */
};

/* Why an accepted connection is over a limit (0: it is not). */
enum conn_over {
	CONN_OVER_NONE = 0,
	CONN_OVER_SERVICE,    /* the service's max_connections (the caller checks) */
	CONN_OVER_CLIENT,     /* per client address */
	CONN_OVER_NET         /* per client network */
};

struct conn_cbs {
	/* Input is waiting, or output fell below the watermark, or the
	 * connection was resumed: run what can run. */
	void (*input)(struct conn *c, void *arg);
	/* The connection ended (see enum conn_end); called once. The
	 * session answers, if it wants, with conn_close() for a timeout
	 * (the connection is still writable then) or frees with conn_free. */
	void (*end)(struct conn *c, enum conn_end why, void *arg);
};

/* --- limits shared by the listeners ------------------------------------ */

/* 0 means no limit. */
struct conn_limits *conn_limits_new(unsigned per_client, unsigned per_net);
void conn_limits_set(struct conn_limits *l, unsigned per_client, unsigned per_net);
void conn_limits_free(struct conn_limits **lp);

/* --- listeners ---------------------------------------------------------- */

/* A new connection (over says whether it is over a limit: the session then
 * answers with its protocol's "too many connections" and closes). */
typedef void conn_accept_fn(struct conn *c, enum conn_over over, void *arg);

/* Bind addr ("127.0.0.1:25", "[::1]:993"): numeric only. NULL with
 * *error_r set on failure. tls_ctx: for CONN_IMPLICIT_TLS; the listener
 * reads *tls_ctx at each accept, so a reload can swap the context. */
struct conn_listener *conn_listener_new(struct event_base *base, const char *addr,
					enum conn_tls_mode mode, SSL_CTX *const *tls_ctx,
					struct conn_limits *limits, conn_accept_fn *accept,
					void *arg, const char **error_r);
/* Live connections accepted here. */
unsigned conn_listener_count(const struct conn_listener *l);
/* The port it is bound to (useful after binding port 0). */
int conn_listener_port(const struct conn_listener *l);
void conn_listener_free(struct conn_listener **lp);

/* --- one connection ----------------------------------------------------- */

void conn_set_callbacks(struct conn *c, const struct conn_cbs *cbs, void *arg);
/* line_secs: the time a command line may take from the moment we wait for
 * it (and each stretch of a byte stream without progress); life_secs: the
 * whole session (0: none). Either restarts its clock. */
void conn_set_timeouts(struct conn *c, unsigned line_secs, unsigned life_secs);
void conn_free(struct conn **cp);

const char *conn_id(const struct conn *c);           /* "S1a2b" for the logs */
const char *conn_client(const struct conn *c);       /* "1.2.3.4", "IPv6:..." */
int conn_client_port(const struct conn *c);
const struct sockaddr *conn_sockaddr(const struct conn *c, socklen_t *len_r);
evutil_socket_t conn_fd(const struct conn *c);
int conn_is_tls(const struct conn *c);
/* "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384" (log fields) once the
 * handshake is done, else NULL. */
const char *conn_tls_info(struct conn *c, char *buf, size_t len);
/* Channel binding data of the finished handshake (SCRAM-PLUS), into out
 * (room for 64 bytes): "tls-exporter" (RFC 9266, TLS 1.3 only) or
 * "tls-server-end-point" (RFC 5929: the hash of our certificate). Its
 * length, or -1 when there is none. */
int conn_tls_channel_binding(struct conn *c, const char *type, unsigned char *out);

/* Take one line off the input into buf (CRLF or LF removed, NUL-terminated).
 * 1: a line in buf (*len_r its length; it may contain NULs); 0: need more;
 * -1: over-long (longer than buflen - 1): the line is skipped through its
 * end, reported once. A complete line restarts the command deadline. */
int conn_read_line(struct conn *c, char *buf, size_t buflen, size_t *len_r);
/* Byte-count mode (an IMAP literal): take up to want bytes into buf;
 * returns how many (0: none waiting). Any progress restarts the deadline. */
size_t conn_read_bytes(struct conn *c, void *buf, size_t want);
/* The raw input, for stream modes (SMTP DATA filters it in place). */
struct evbuffer *conn_input(struct conn *c);
size_t conn_input_len(struct conn *c);
/* A stream mode made progress (a complete line of DATA, a literal chunk):
 * restart the deadline. */
void conn_progress(struct conn *c);

/* Queue output; it leaves at conn_flush (one write for a batch). */
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_vprintf(struct conn *c, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void conn_write(struct conn *c, const void *data, size_t len);
void conn_flush(struct conn *c);
/* Is the session blocked (paused, closing, or output above the watermark)?
 * Then it must stop taking commands; input() is called again later. */
int conn_blocked(struct conn *c);

/* After the pending output has left, switch to TLS (server side). Every
 * byte received until then is discarded. 0, or -1 (no context). */
int conn_starttls(struct conn *c, SSL_CTX *ctx);
/* Stop reading, send the pending output and last (may be NULL), then end
 * with CONN_END_CLOSED once it has left the TLS layer too. */
void conn_close(struct conn *c, const char *last);
/* Work in flight: no reading, no timers, until conn_resume. */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

#endif
