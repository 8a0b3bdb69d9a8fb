/*
 * queue_env: encode and parse queue file records (see queue_env.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_env.h"
#include "util/xalloc.h"

void
queue_rec_put(char **buf, size_t *len, size_t *cap, char type, const char *val, size_t vlen)
{
	char head[32];
	int hl = snprintf(head, sizeof(head), "%c%zu:", type, vlen);

	if (*len + hl + vlen + 1 > *cap) {
		*cap = (*len + hl + vlen + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, head, hl);
	memcpy(*buf + *len + hl, val, vlen);
	*len += hl + vlen;
	(*buf)[(*len)++] = '\n';
}

int
queue_rec_get(const char *p, size_t n, char *type_r, const char **val_r, size_t *vlen_r,
	      size_t *used_r)
{
	size_t i = 1, v = 0;

	if (n < 1)
		return 0;
	if (!isalnum((unsigned char)p[0]))
		return -1;
	for (;; i++) {
		if (i >= n)
			return 0;
		if (p[i] == ':')
			break;
		if (!isdigit((unsigned char)p[i]) || i > 6)
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (i == 1 || v > QUEUE_REC_MAX)
		return -1;
	if (n < i + 1 + v + 1)
		return 0;
	if (p[i + 1 + v] != '\n')
		return -1;
	*type_r = p[0];
	*val_r = p + i + 1;
	*vlen_r = v;
	*used_r = i + 1 + v + 1;
	return 1;
}

static void
put_str(char **b, size_t *l, size_t *c, char t, const char *s)
{
	queue_rec_put(b, l, c, t, s ? s : "", s ? strlen(s) : 0);
}

static void
put_num(char **b, size_t *l, size_t *c, char t, long long v)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%lld", v);

	queue_rec_put(b, l, c, t, num, n);
}

char *
queue_env_encode(const struct queue_env *env, size_t *len_r)
{
	size_t len = 0, cap = 256;
	char *b = xmalloc(cap);

	memcpy(b, QUEUE_MAGIC, 4);
	len = 4;
	put_str(&b, &len, &cap, 'I', env->qid);
	put_num(&b, &len, &cap, 'T', env->arrival);
	put_str(&b, &len, &cap, 'S', env->sender);
	for (int i = 0; i < env->nrcpt; i++)
		put_str(&b, &len, &cap, 'R', env->rcpt[i]);
	put_str(&b, &len, &cap, 'C', env->client);
	put_str(&b, &len, &cap, 'H', env->helo);
	put_str(&b, &len, &cap, 'P', env->proto);
	put_num(&b, &len, &cap, 'U', env->smtputf8);
	put_num(&b, &len, &cap, '8', env->body8bit);
	queue_rec_put(&b, &len, &cap, 'M', "", 0);
	*len_r = len;
	return b;
}

static int
parse_num(const char *v, size_t n, long long *out)
{
	long long x = 0;

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return 0;
}

void
queue_env_add_rcpt(struct queue_env *env, const char *rcpt)
{
	env->rcpt = xrealloc(env->rcpt, (env->nrcpt + 1) * sizeof(char *));
	env->rcpt[env->nrcpt++] = xstrdup(rcpt);
}

static int
queue_env_field(struct queue_env *env, char t, const char *v, size_t n)
{
	long long x;

	switch (t) {
	case 'I':
		if (n != QUEUE_ID_LEN)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (!isdigit((unsigned char)v[i]) && !(v[i] >= 'A' && v[i] <= 'F'))
				return -1;
		memcpy(env->qid, v, n);
		env->qid[n] = '\0';
		return 0;
	case 'T':
		return parse_num(v, n, &env->arrival);
	case 'S':
		if (env->sender)
			return -1;
		env->sender = xstrndup(v, n);
		return 0;
	case 'R':
		env->rcpt = xrealloc(env->rcpt, (env->nrcpt + 1) * sizeof(char *));
		env->rcpt[env->nrcpt++] = xstrndup(v, n);
		return 0;
	case 'C': free(env->client); env->client = xstrndup(v, n); return 0;
	case 'H': free(env->helo); env->helo = xstrndup(v, n); return 0;
	case 'P': free(env->proto); env->proto = xstrndup(v, n); return 0;
	case 'U':
		if (parse_num(v, n, &x) < 0)
			return -1;
		env->smtputf8 = x != 0;
		return 0;
	case '8':
		if (parse_num(v, n, &x) < 0)
			return -1;
		env->body8bit = x != 0;
		return 0;
	default:
		return 0;   /* unknown record types from newer versions are skipped */
	}
}

int
queue_env_parse(const char *buf, size_t len, struct queue_env *env, size_t *body_off_r)
{
	size_t off = 4;

	memset(env, 0, sizeof(*env));
	if (len < 4)
		return 0;
	if (memcmp(buf, QUEUE_MAGIC, 4) != 0)
		return -1;
	for (;;) {
		char t;
		const char *v;
		size_t vl, used;
		int rc = queue_rec_get(buf + off, len - off, &t, &v, &vl, &used);

		if (rc <= 0) {
			queue_env_clear(env);
			return rc;
		}
		off += used;
		if (t == 'M')
			break;
		if (queue_env_field(env, t, v, vl) < 0) {
			queue_env_clear(env);
			return -1;
		}
	}
	if (env->qid[0] == '\0' || env->sender == NULL || env->nrcpt == 0) {
		queue_env_clear(env);
		return -1;
	}
	env->size = (long long)(len - off);
	*body_off_r = off;
	return 1;
}

void
queue_env_clear(struct queue_env *env)
{
	free(env->sender);
	for (int i = 0; i < env->nrcpt; i++)
		free(env->rcpt[i]);
	free(env->rcpt);
	free(env->client);
	free(env->helo);
	free(env->proto);
	memset(env, 0, sizeof(*env));
}

/* A string record, none for NULL; cut to fit a record (a long remote reply). */
static void
put_opt(char **b, size_t *l, size_t *c, char t, const char *v)
{
	if (v != NULL)
		queue_rec_put(b, l, c, t, v, strnlen(v, QUEUE_REC_MAX));
}

char *
queue_meta_encode(const struct queue_meta *m, size_t *len_r)
{
	size_t len = 0, cap = 128;
	char *b = xmalloc(cap);

	put_num(&b, &len, &cap, 'A', m->attempts);
	put_num(&b, &len, &cap, 'N', m->next_attempt);
	put_num(&b, &len, &cap, 'L', m->last_attempt);
	if (m->last_error)   /* a long remote reply is cut to fit a record */
		queue_rec_put(&b, &len, &cap, 'E', m->last_error,
			      strnlen(m->last_error, QUEUE_REC_MAX));
	for (int i = 0; i < m->ndone; i++)
		if (m->done[i])
			put_num(&b, &len, &cap, 'D', i);
	/* R starts a recipient's last result; the records after it are its */
	for (int i = 0; i < m->nlast; i++) {
		const struct queue_rcpt_last *l = &m->last[i];

		if (l->state == QR_NONE)
			continue;
		put_num(&b, &len, &cap, 'R', i);
		put_num(&b, &len, &cap, 'S', l->state);
		put_num(&b, &len, &cap, 'W', l->when);
		put_opt(&b, &len, &cap, 'C', l->dsn);
		put_opt(&b, &len, &cap, 'T', l->reason);
		put_opt(&b, &len, &cap, 'H', l->relay);
		put_opt(&b, &len, &cap, 'Y', l->reply);
	}
	queue_rec_put(&b, &len, &cap, 'Z', "", 0);
	*len_r = len;
	return b;
}

/* The recipient result records that follow an R record. */
static int
meta_last_field(struct queue_rcpt_last *l, char t, const char *v, size_t vl)
{
	char **sp = t == 'C' ? &l->dsn : t == 'T' ? &l->reason : t == 'H' ? &l->relay : &l->reply;
	long long x;

	if (t == 'S' || t == 'W') {
		if (parse_num(v, vl, &x) < 0 || (t == 'S' && x >= QR_NSTATES))
			return -1;
		if (t == 'S')
			l->state = (int)x;
		else
			l->when = x;
		return 0;
	}
	free(*sp);
	*sp = xstrndup(v, vl);
	return 0;
}

int
queue_meta_parse(const char *buf, size_t len, struct queue_meta *m)
{
	size_t off = 0;
	long long x;
	struct queue_rcpt_last *cur = NULL;

	memset(m, 0, sizeof(*m));
	while (off < len) {
		char t;
		const char *v;
		size_t vl, used;

		if (queue_rec_get(buf + off, len - off, &t, &v, &vl, &used) != 1)
			goto bad;
		off += used;
		if (t == 'Z')
			return 0;
		if (t == 'E') {
			free(m->last_error);
			m->last_error = xstrndup(v, vl);
			continue;
		}
		if (strchr("SWCTHY", t) != NULL) {
			if (cur == NULL || meta_last_field(cur, t, v, vl) < 0)
				goto bad;
			continue;
		}
		if (strchr("ANLDR", t) == NULL)
			continue;   /* a record of a newer version */
		if (parse_num(v, vl, &x) < 0)
			goto bad;
		if (t == 'A')
			m->attempts = x > 1000000 ? 1000000 : (int)x;
		else if (t == 'N')
			m->next_attempt = x;
		else if (t == 'L')
			m->last_attempt = x;
		else if (t == 'D') {
			if (x >= 100000)
				goto bad;
			if (x >= m->ndone) {
				m->done = xrealloc(m->done, x + 1);
				memset(m->done + m->ndone, 0, x + 1 - m->ndone);
				m->ndone = (int)x + 1;
			}
			m->done[x] = 1;
		} else if (t == 'R') {
			if (x >= 100000)
				goto bad;
			queue_meta_set_last(m, (int)x, QR_NONE, 0, NULL, NULL, NULL, NULL);
			cur = &m->last[x];
		}
	}
bad:
	/* no end record: a torn write; callers treat it as no meta at all */
	queue_meta_clear(m);
	return -1;
}

static void
meta_last_clear(struct queue_rcpt_last *l)
{
	free(l->dsn);
	free(l->reason);
	free(l->relay);
	free(l->reply);
	memset(l, 0, sizeof(*l));
}

void
queue_meta_clear(struct queue_meta *m)
{
	free(m->last_error);
	free(m->done);
	for (int i = 0; i < m->nlast; i++)
		meta_last_clear(&m->last[i]);
	free(m->last);
	memset(m, 0, sizeof(*m));
}

void
queue_meta_set_last(struct queue_meta *m, int i, enum queue_rcpt_state st, long long when,
		    const char *dsn, const char *reason, const char *relay, const char *reply)
{
	struct queue_rcpt_last *l;

	if (i >= m->nlast) {
		m->last = xrealloc(m->last, (i + 1) * sizeof(*m->last));
		memset(m->last + m->nlast, 0, (i + 1 - m->nlast) * sizeof(*m->last));
		m->nlast = i + 1;
	}
	l = &m->last[i];
	meta_last_clear(l);
	l->state = st;
	l->when = when;
	l->dsn = dsn && *dsn ? xstrdup(dsn) : NULL;
	l->reason = reason && *reason ? xstrdup(reason) : NULL;
	l->relay = relay && *relay ? xstrdup(relay) : NULL;
	l->reply = reply && *reply ? xstrdup(reply) : NULL;
}

const char *
queue_rcpt_state_name(enum queue_rcpt_state st)
{
	static const char *const names[QR_NSTATES] = { "pending", "delivered", "deferred",
							 "bounced", "waiting" };

	return st < QR_NSTATES ? names[st] : "?";
}
