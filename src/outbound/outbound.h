/*
 * outbound: delivery over SMTP to other hosts — the MX hosts of a foreign
 * domain (RFC 5321 5.1, self-pruned), or for a backup's relay domains the
 * MX hosts better than itself or [relay] primary. Runs on the event loop:
 * DNS through dns/resolver, host choice through dns/mx, the conversation
 * through smtp/smtp_client. Hosts are tried in order until one takes the
 * message; connection-level failures move on to the next host.
 * Public: outbound_new, outbound_free, outbound_deliver, outbound_set_up_cb,
 * outbound_is_down, outbound_forget_down, outbound_cancel, outbound_down_read.
 */
#ifndef TANDEM_OUTBOUND_H
#define TANDEM_OUTBOUND_H
#include <sys/types.h>

#include "queue/queue_sched.h"

struct config;
struct event_base;
struct outbound;

typedef void outbound_done_fn(void *arg);

struct outbound *outbound_new(struct event_base *base, const struct config *cf, char *err,
			      size_t errlen);
void outbound_free(struct outbound **op);
/* up(arg) runs when a destination that was down answers a probe again. */
void outbound_set_up_cb(struct outbound *o, void (*up)(void *arg), void *arg);
/* Is domain marked down (and being probed)? */
int outbound_is_down(struct outbound *o, const char *domain);
/* Forget that domain's destination is down (ETRN), or with domain NULL
 * every one (`tandem queue flush`: try them all). */
void outbound_forget_down(struct outbound *o, const char *domain);
/* A destination down, as the running server last wrote it (data_dir/queue/down). */
struct outbound_down {
	char domain[256], host[256], addr[64];
	int port;
	long long since;
	unsigned probe_interval;
	char reason[200];   /* why it got no answer: "cannot connect: Connection refused" */
};
/* Read the list (*vp malloc'd, *np entries; none when the file is absent). */
int outbound_down_read(const char *data_dir, struct outbound_down **vp, int *np);
/* Stop every delivery in flight (shutdown): their recipients are deferred. */
void outbound_cancel(struct outbound *o);
/* Deliver every recipient i with res[i].status == RCPT_REMOTE and set its
 * result; prefix (or NULL): header fields sent before the message. env,
 * fd, prefix and res stay valid until done(arg) is called (from the loop,
 * never from inside this call). */
void outbound_deliver(struct outbound *o, const struct queue_env *env, int fd, off_t body_off,
		      const char *prefix, struct rcpt_result *res, outbound_done_fn *done,
		      void *arg);

#endif
