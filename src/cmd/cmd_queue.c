/*
 * cmd_queue: `tandem queue list [--json] | show ID | delete ID | hold ID |
 * release ID | flush`. Works on the queue directories directly, so it runs
 * whether or not the server does; when it does, the server is told to look
 * again (SIGUSR1) or to attempt everything now (SIGUSR2).
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "outbound/outbound.h"
#include "mail/addr.h"
#include "queue/queue.h"
#include "util/pidfile.h"

static void
fmt_time(long long t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0) {
		snprintf(buf, len, "now");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

struct queue_list {
	struct queue *q;
	enum queue_state st;
	json_t *json;
	int n;
	struct outbound_down *down;     /* destinations the running server has down */
	int ndown;
};

/* Why the message waits without attempts: a recipient's domain is down. */
static const struct outbound_down *
queue_waiting_for(const struct queue_list *ql, const struct queue_env *env,
		  const struct queue_meta *m)
{
	if (ql->st == Q_HOLD)
		return NULL;
	for (int i = 0; i < env->nrcpt; i++) {
		if (i < m->ndone && m->done[i])
			continue;
		for (int k = 0; k < ql->ndown; k++)
			if (strcasecmp(addr_domain(env->rcpt[i]), ql->down[k].domain) == 0)
				return &ql->down[k];
	}
	return NULL;
}

static void
queue_waiting_text(const struct outbound_down *d, char *buf, size_t len)
{
	char t[64];

	fmt_time(d->since, t, sizeof(t));
	snprintf(buf, len, "waiting: %s is down since %s (%s[%s]:%d did not answer); probed every %us",
		 d->domain, t, d->host, d->addr, d->port, d->probe_interval);
}

static json_t *
queue_entry_json(const char *qid, enum queue_state st, const struct queue_env *env,
		 const struct queue_meta *m, const char *waiting)
{
	json_t *o = json_object(), *rc = json_array();

	json_object_set_new(o, "id", json_string(qid));
	json_object_set_new(o, "state", json_string(queue_state_name(st)));
	json_object_set_new(o, "arrival", json_integer(env->arrival));
	json_object_set_new(o, "size", json_integer(env->size));
	json_object_set_new(o, "sender", json_string(env->sender));
	for (int i = 0; i < env->nrcpt; i++) {
		json_t *r = json_object();
		json_object_set_new(r, "address", json_string(env->rcpt[i]));
		json_object_set_new(r, "done", json_boolean(i < m->ndone && m->done[i]));
		json_array_append_new(rc, r);
	}
	json_object_set_new(o, "recipients", rc);
	json_object_set_new(o, "attempts", json_integer(m->attempts));
	json_object_set_new(o, "next_attempt", json_integer(m->next_attempt));
	json_object_set_new(o, "last_error", m->last_error ? json_string(m->last_error) : json_null());
	json_object_set_new(o, "client", json_string(env->client ? env->client : ""));
	json_object_set_new(o, "waiting", waiting ? json_string(waiting) : json_null());
	return o;
}

static void
queue_list_one(const char *qid, void *arg)
{
	struct queue_list *ql = arg;
	struct queue_env env;
	struct queue_meta m;
	size_t off;
	char t1[64], t2[64], waiting[800];
	const struct outbound_down *down;
	int fd = queue_read_env(ql->q, ql->st, qid, &env, &off);

	if (fd < 0)
		return;   /* delivered or moved while we looked */
	close(fd);
	queue_meta_read(ql->q, qid, &m);
	ql->n++;
	if ((down = queue_waiting_for(ql, &env, &m)) != NULL)
		queue_waiting_text(down, waiting, sizeof(waiting));
	if (ql->json) {
		json_array_append_new(ql->json, queue_entry_json(qid, ql->st, &env, &m,
								 down ? waiting : NULL));
	} else {
		fmt_time(env.arrival, t1, sizeof(t1));
		fmt_time(m.next_attempt, t2, sizeof(t2));
		printf("%s %-8s %8lld %s <%s>\n", qid, queue_state_name(ql->st), env.size, t1, env.sender);
		for (int i = 0; i < env.nrcpt; i++)
			printf("%27s -> <%s>%s\n", "", env.rcpt[i],
			       i < m.ndone && m.done[i] ? " (delivered)" : "");
		if (m.attempts > 0)
			printf("%27s attempts %d, next %s\n", "", m.attempts, t2);
		if (m.last_error)
			printf("%27s (%s)\n", "", m.last_error);
		if (down)
			printf("%27s (%s)\n", "", waiting);
	}
	queue_meta_clear(&m);
	queue_env_clear(&env);
}

static int
queue_list(struct queue *q, const char *data_dir, int json)
{
	struct queue_list ql = { .q = q, .json = json ? json_array() : NULL };
	char pidpath[4096];

	pidfile_path(data_dir, pidpath, sizeof(pidpath));
	if (pidfile_running(pidpath) > 0)   /* else nobody is probing: nothing waits */
		outbound_down_read(data_dir, &ql.down, &ql.ndown);

	for (int st = 0; st < Q_NSTATES; st++) {
		ql.st = st;
		queue_scan(q, st, queue_list_one, &ql);
	}
	if (json) {
		json_dumpf(ql.json, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(ql.json);
	} else if (ql.n == 0) {
		printf("queue is empty\n");
	} else {
		printf("-- %d message%s\n", ql.n, ql.n == 1 ? "" : "s");
	}
	free(ql.down);
	return 0;
}

static int
queue_show(struct queue *q, const char *qid)
{
	enum queue_state st;
	struct queue_env env;
	struct queue_meta m;
	char buf[65536];
	size_t off;
	ssize_t n;
	int fd;

	if (queue_find(q, qid, &st) != 0 || (fd = queue_read_env(q, st, qid, &env, &off)) < 0) {
		fprintf(stderr, "tandem: queue: no message %s\n", qid);
		return 1;
	}
	queue_meta_read(q, qid, &m);
	printf("id: %s\nstate: %s\nsender: <%s>\n", qid, queue_state_name(st), env.sender);
	for (int i = 0; i < env.nrcpt; i++)
		printf("recipient: <%s>%s\n", env.rcpt[i], i < m.ndone && m.done[i] ? " (delivered)" : "");
	printf("client: [%s] helo %s\nprotocol: %s\nsize: %lld\n", env.client ? env.client : "",
	       env.helo ? env.helo : "", env.proto ? env.proto : "", env.size);
	if (m.last_error)
		printf("last error: %s\n", m.last_error);
	printf("\n");
	fflush(stdout);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		fwrite(buf, 1, n, stdout);
		off += n;
	}
	close(fd);
	queue_meta_clear(&m);
	queue_env_clear(&env);
	return 0;
}

/* Tell the running server to rescan after a change; the change is made
 * either way, so a server that cannot be reached is only mentioned. */
static void
queue_nudge(struct config *cf)
{
	const char *error;

	if (pidfile_signal(cf->data_dir, SIGUSR1, cf->user, &error) < 0)
		fprintf(stderr, "tandem: queue: %s\n", error);
}

static int
queue_change(struct config *cf, struct queue *q, const char *verb, const char *qid)
{
	enum queue_state st;

	if (queue_find(q, qid, &st) != 0) {
		fprintf(stderr, "tandem: queue: no message %s\n", qid);
		return 1;
	}
	if (strcmp(verb, "delete") == 0) {
		if (queue_remove(q, qid, st) != 0)
			goto fail;
		printf("%s: deleted\n", qid);
	} else if (strcmp(verb, "hold") == 0) {
		if (st == Q_HOLD) {
			printf("%s: already on hold\n", qid);
			return 0;
		}
		if (queue_move(q, qid, st, Q_HOLD) != 0)
			goto fail;
		printf("%s: on hold\n", qid);
	} else {
		if (st != Q_HOLD) {
			fprintf(stderr, "tandem: queue: %s is not on hold\n", qid);
			return 1;
		}
		if (queue_move(q, qid, Q_HOLD, Q_ACTIVE) != 0)
			goto fail;
		printf("%s: released\n", qid);
	}
	queue_nudge(cf);
	return 0;
fail:
	fprintf(stderr, "tandem: queue: %s %s: %s\n", verb, qid, strerror(errno));
	return 1;
}

/* Only a verified server is signalled (see pidfile.h): a pid someone
 * wrote into data_dir/tandem.pid is not one. */
static int
queue_flush(struct config *cf)
{
	const char *error;

	switch (pidfile_signal(cf->data_dir, SIGUSR2, cf->user, &error)) {
	case 1:
		printf("flush requested\n");
		return 0;
	case 0:
		/* Not an error: the queue is attempted when the server starts. */
		printf("no server is running on %s: nothing to flush\n", cf->data_dir);
		return 0;
	default:
		fprintf(stderr, "tandem: queue flush: %s\n", error);
		return 1;
	}
}

static int
queue_usage(void)
{
	fprintf(stderr, "usage: tandem queue list [--json] | show ID | delete ID | hold ID | "
			"release ID | flush\n");
	return 2;
}

int
cmd_queue(struct config *cf, int argc, char **argv)
{
	char err[512];
	struct queue *q;
	int rc;

	if (argc < 2)
		return queue_usage();
	if ((q = queue_open(cf->data_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: queue: %s\n", err);
		return 1;
	}
	if (strcmp(argv[1], "list") == 0 && (argc == 2 || (argc == 3 && strcmp(argv[2], "--json") == 0)))
		rc = queue_list(q, cf->data_dir, argc == 3);
	else if (strcmp(argv[1], "show") == 0 && argc == 3)
		rc = queue_show(q, argv[2]);
	else if ((strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "hold") == 0 ||
		  strcmp(argv[1], "release") == 0) && argc == 3)
		rc = queue_change(cf, q, argv[1], argv[2]);
	else if (strcmp(argv[1], "flush") == 0 && argc == 2)
		rc = queue_flush(cf);
	else
		rc = queue_usage();
	queue_close(&q);
	return rc;
}
