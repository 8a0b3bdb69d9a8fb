/*
 * config_value: what each config type means: parsing a value from the file
 * into struct config (with its range), writing it back in the file's
 * syntax, comparing, copying and freeing it. One switch per operation, so a
 * new type is one case in each.
 * Module-internal: config_value_set, config_value_append, config_value_format,
 * config_value_is_set, config_value_equal, config_value_copy, config_value_free.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_int.h"
#include "util/xalloc.h"

#define FIELD(cf, k, type) ((type *)((char *)(cf) + (k)->off))
#define CFIELD(cf, k, type) ((const type *)((const char *)(cf) + (k)->off))

/* Message buffer for range errors; config loading is single-threaded. */
static char value_msg[160];

static const char *
value_range_error(const struct config_key *k, const char *unit)
{
	if (k->max > 0)
		snprintf(value_msg, sizeof(value_msg), "must be between %lld%s and %lld%s",
			 k->min, unit, k->max, unit);
	else
		snprintf(value_msg, sizeof(value_msg), "must be at least %lld%s", k->min, unit);
	return value_msg;
}

static int
value_in_range(const struct config_key *k, long long v)
{
	return v >= k->min && (k->max == 0 || v <= k->max);
}

static const char *
value_set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
	return NULL;
}

static void
value_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* HOST[:PORT] or [V6]:PORT, HOST a domain name or a numeric address. */
static int
value_hostport_ok(const char *s)
{
	char host[256];
	int port;

	if (config_parse_hostport(s, host, sizeof(host), &port) == 0)
		return config_parse_is_domain(host) || config_parse_is_ip(host);
	return config_parse_is_domain(s) || (config_parse_is_ip(s) && strchr(s, ':') == NULL);
}

/* "HOST[@PORT]" with a numeric HOST, the form libunbound forwards to. */
static const char *
value_resolver(const char *s)
{
	const char *at = strrchr(s, '@');
	char host[64];
	size_t hl = at ? (size_t)(at - s) : strlen(s);

	if (strcmp(s, "system") == 0)
		return NULL;
	if (at == NULL && strchr(s, ':') != NULL && strchr(s, '.') != NULL)
		return "the form is HOST@PORT (e.g. 127.0.0.1@53), not HOST:PORT; or system";
	if (hl == 0 || hl >= sizeof(host))
		return "expected system or HOST@PORT (e.g. 127.0.0.1@53)";
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (!config_parse_is_ip(host))
		return "expected system or HOST@PORT, HOST a numeric address (e.g. 127.0.0.1@53)";
	if (at != NULL) {
		char *end;
		unsigned long port;

		errno = 0;
		port = strtoul(at + 1, &end, 10);
		if (!isdigit((unsigned char)at[1]) || *end != '\0' || errno || port == 0 || port > 65535)
			return "expected system or HOST@PORT with a PORT from 1 to 65535";
	}
	return NULL;
}

/* Check the entries of a list key from index first on (a continuation
 * line checks only what it added). */
static const char *
value_list_check(const struct config_key *k, struct config_list *lst, int first)
{
	char host[256];
	int port;

	if (k->max > 0 && lst->n > k->max) {
		snprintf(value_msg, sizeof(value_msg), "at most %lld entries", k->max);
		return value_msg;
	}
	for (int i = first; i < lst->n; i++) {
		const char *v = lst->v[i];

		switch (k->type) {
		case CT_LISTEN:
			if (config_parse_hostport(v, host, sizeof(host), &port) < 0)
				return "expected ADDR:PORT[, ADDR:PORT...] (IPv6 as [ADDR]:PORT)";
			if (!config_parse_is_ip(host)) {
				snprintf(value_msg, sizeof(value_msg),
					 "%s: a numeric address is needed (e.g. 127.0.0.1:25, [::1]:25), "
					 "not a host name", v);
				return value_msg;
			}
			break;
		case CT_HOSTPORTS:
			if (!value_hostport_ok(v)) {
				snprintf(value_msg, sizeof(value_msg),
					 "%s: expected HOST[:PORT], HOST a domain or an address", v);
				return value_msg;
			}
			break;
		case CT_DOMAINS:
			if (!config_parse_is_domain(v)) {
				snprintf(value_msg, sizeof(value_msg), "%s: not a valid domain name", v);
				return value_msg;
			}
			value_lower(lst->v[i]);
			break;
		default:
			break;
		}
	}
	return NULL;
}

/* One of k->names: its index into *v_r; else "expected a, b or c". */
static const char *
value_enum(const struct config_key *k, const char *value, int *v_r)
{
	size_t o;

	for (int i = 0; k->names[i] != NULL; i++) {
		if (strcmp(k->names[i], value) == 0) {
			*v_r = i;
			return NULL;
		}
	}
	o = (size_t)snprintf(value_msg, sizeof(value_msg), "expected");
	for (int i = 0; k->names[i] != NULL && o < sizeof(value_msg); i++)
		o += (size_t)snprintf(value_msg + o, sizeof(value_msg) - o, "%s %s",
				      i == 0 ? "" : k->names[i + 1] ? "," : " or", k->names[i]);
	return value_msg;
}

static const char *
value_number(const struct config_key *k, const char *value, long long *v_r)
{
	char *end;

	errno = 0;
	*v_r = strtoll(value, &end, 10);
	if (errno || *end != '\0' || !isdigit((unsigned char)*value))
		return "expected a whole number";
	if (!value_in_range(k, *v_r))
		return value_range_error(k, "");
	return NULL;
}

/* "500ms", or a duration in seconds. */
static long long
value_msec(const char *value)
{
	size_t n = strlen(value);
	long long v;
	char *end;

	if (n > 2 && strcmp(value + n - 2, "ms") == 0) {
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || end != value + n - 2 || !isdigit((unsigned char)*value))
			return -1;
		return v;
	}
	if ((v = config_parse_duration(value)) < 0 || v > (1LL << 40) / 1000)
		return -1;
	return v * 1000;
}

const char *
config_value_set(struct config *cf, const struct config_key *k, const char *value)
{
	long long v;
	const char *err;

	switch (k->type) {
	case CT_STRING:
		if (*value == '\0')
			return "must not be empty";
		return value_set_str(FIELD(cf, k, char *), value);
	case CT_PATH:
		if (value[0] != '/')
			return "must be an absolute path";
		return value_set_str(FIELD(cf, k, char *), value);
	case CT_DELIM:
		if (value[0] != '\0' && (value[1] != '\0' || strchr(CONFIG_DELIMITERS, value[0]) == NULL))
			return "expected one of " CONFIG_DELIMITERS ", or nothing (no subaddressing)";
		return value_set_str(FIELD(cf, k, char *), value);
	case CT_DOMAIN:
		if (!config_parse_is_domain(value))
			return "not a valid domain name (letters, digits, '-' in labels of at most 63)";
		return value_set_str(FIELD(cf, k, char *), value);
	case CT_HOSTPORT:
		if (!value_hostport_ok(value))
			return "expected HOST[:PORT], HOST a domain or an address (IPv6 as [ADDR]:PORT)";
		return value_set_str(FIELD(cf, k, char *), value);
	case CT_RESOLVER:
		if ((err = value_resolver(value)) != NULL)
			return err;
		return value_set_str(FIELD(cf, k, char *), value);
	case CT_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			*FIELD(cf, k, int) = 1;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
			*FIELD(cf, k, int) = 0;
		else
			return "expected yes or no";
		return NULL;
	case CT_ENUM:
		return value_enum(k, value, FIELD(cf, k, int));
	case CT_UINT:
		if ((err = value_number(k, value, &v)) != NULL)
			return err;
		*FIELD(cf, k, unsigned) = (unsigned)v;
		return NULL;
	case CT_DURATION:
		if ((v = config_parse_duration(value)) < 0 || v > 0xffffffffLL)
			return "expected a duration like 30s, 5m, 2h or 5d";
		if (!value_in_range(k, v))
			return value_range_error(k, "s");
		*FIELD(cf, k, unsigned) = (unsigned)v;
		return NULL;
	case CT_MSEC:
		if ((v = value_msec(value)) < 0)
			return "expected milliseconds like 500ms, or a duration like 2s";
		if (!value_in_range(k, v))
			return value_range_error(k, "ms");
		*FIELD(cf, k, unsigned) = (unsigned)v;
		return NULL;
	case CT_SIZE:
		if ((v = config_parse_size(value)) < 0)
			return "expected a size like 4096, 512k, 50M or 1G";
		if (!value_in_range(k, v))
			return value_range_error(k, " bytes");
		*FIELD(cf, k, unsigned long long) = (unsigned long long)v;
		return NULL;
	case CT_LISTEN:
	case CT_HOSTPORTS:
	case CT_DOMAINS:
		if (config_parse_list(value, FIELD(cf, k, struct config_list)) < 0)
			return "too many entries";
		return value_list_check(k, FIELD(cf, k, struct config_list), 0);
	case CT_NETLIST:
		return config_netlist_parse(value, FIELD(cf, k, struct config_netlist), &err) < 0 ?
		       err : NULL;
	}
	return "internal error: unknown type";
}

const char *
config_value_append(struct config *cf, const struct config_key *k, const char *value)
{
	struct config_list *lst, more = { 0 };
	const char *err = NULL;
	int first;

	if (k->type == CT_NETLIST) {
		struct config_netlist *nl = FIELD(cf, k, struct config_netlist), add;

		if (config_netlist_parse(value, &add, &err) < 0)
			return err;
		if (nl->n + add.n > CONFIG_MAX_LIST)
			return "too many entries";
		memcpy(&nl->v[nl->n], add.v, add.n * sizeof(add.v[0]));
		nl->n += add.n;
		return NULL;
	}
	if (k->type != CT_LISTEN && k->type != CT_HOSTPORTS && k->type != CT_DOMAINS)
		return config_value_set(cf, k, value);
	lst = FIELD(cf, k, struct config_list);
	first = lst->n;
	if (config_parse_list(value, &more) < 0 || lst->n + more.n > CONFIG_MAX_LIST)
		err = "too many entries";
	for (int i = 0; i < more.n; i++) {
		if (err == NULL)
			lst->v[lst->n++] = more.v[i];
		else
			free(more.v[i]);
	}
	return err != NULL ? err : value_list_check(k, lst, first);
}

/* The largest unit that divides v: 300 "5m", 90 "90s". */
static void
value_format_duration(unsigned long long v, char *buf, size_t len)
{
	static const struct { unsigned long long n; char u; } units[] = {
		{ 7 * 86400, 'w' }, { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};

	for (size_t i = 0; v != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (v % units[i].n == 0) {
			snprintf(buf, len, "%llu%c", v / units[i].n, units[i].u);
			return;
		}
	}
	snprintf(buf, len, "%llus", v);
}

static void
value_format_size(unsigned long long v, char *buf, size_t len)
{
	if (v != 0 && v % (1ULL << 30) == 0)
		snprintf(buf, len, "%lluG", v >> 30);
	else if (v != 0 && v % (1ULL << 20) == 0)
		snprintf(buf, len, "%lluM", v >> 20);
	else if (v != 0 && v % (1ULL << 10) == 0)
		snprintf(buf, len, "%lluk", v >> 10);
	else
		snprintf(buf, len, "%llu", v);
}

static void
value_format_net(const struct config_net *n, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(n->family, n->addr, a, sizeof(a));
	if (n->prefix == (n->family == AF_INET ? 32 : 128))
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%d", a, n->prefix);
}

const char *
config_value_format_number(const struct config_key *k, unsigned long long v, char *buf, size_t len)
{
	switch (k->type) {
	case CT_DURATION:
		value_format_duration(v, buf, len);
		break;
	case CT_MSEC:
		if (v % 1000 == 0)
			value_format_duration(v / 1000, buf, len);
		else
			snprintf(buf, len, "%llums", v);
		break;
	case CT_SIZE:
		value_format_size(v, buf, len);
		break;
	default:
		snprintf(buf, len, "%llu", v);
		break;
	}
	return buf;
}

const char *
config_value_format(const struct config *cf, const struct config_key *k, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
	case CT_DELIM:
	case CT_DOMAIN:
	case CT_HOSTPORT:
	case CT_RESOLVER:
		snprintf(buf, len, "%s", *CFIELD(cf, k, char *) ? *CFIELD(cf, k, char *) : "");
		break;
	case CT_BOOL:
		snprintf(buf, len, "%s", *CFIELD(cf, k, int) ? "yes" : "no");
		break;
	case CT_ENUM:
		snprintf(buf, len, "%s", k->names[*CFIELD(cf, k, int)]);
		break;
	case CT_UINT:
	case CT_DURATION:
	case CT_MSEC:
		config_value_format_number(k, *CFIELD(cf, k, unsigned), buf, len);
		break;
	case CT_SIZE:
		config_value_format_number(k, *CFIELD(cf, k, unsigned long long), buf, len);
		break;
	case CT_LISTEN:
	case CT_HOSTPORTS:
	case CT_DOMAINS: {
		const struct config_list *l = CFIELD(cf, k, struct config_list);

		for (int i = 0; i < l->n && o < len; i++)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", l->v[i]);
		break;
	}
	case CT_NETLIST: {
		const struct config_netlist *l = CFIELD(cf, k, struct config_netlist);
		char one[INET6_ADDRSTRLEN + 8];

		for (int i = 0; i < l->n && o < len; i++) {
			value_format_net(&l->v[i], one, sizeof(one));
			o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", one);
		}
		break;
	}
	}
	return buf;
}

int
config_value_is_set(const struct config *cf, const struct config_key *k)
{
	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
	case CT_DELIM:
	case CT_DOMAIN:
	case CT_HOSTPORT:
	case CT_RESOLVER:
		return *CFIELD(cf, k, char *) != NULL;
	case CT_LISTEN:
	case CT_HOSTPORTS:
	case CT_DOMAINS:
		return CFIELD(cf, k, struct config_list)->n > 0;
	case CT_NETLIST:
		return CFIELD(cf, k, struct config_netlist)->set;
	default:
		return 1;
	}
}

int
config_value_equal(const struct config *a, const struct config *b, const struct config_key *k)
{
	char *va, *vb;
	size_t na = 4096, nb = 4096;
	int eq;

	if (k->type == CT_NETLIST) {
		const struct config_netlist *x = CFIELD(a, k, struct config_netlist);
		const struct config_netlist *y = CFIELD(b, k, struct config_netlist);

		return x->set == y->set && x->n == y->n &&
		       memcmp(x->v, y->v, x->n * sizeof(x->v[0])) == 0;
	}
	if (config_value_is_set(a, k) != config_value_is_set(b, k))
		return 0;
	/* The canonical text is the value: one comparison for every type. */
	va = xmalloc(na);
	vb = xmalloc(nb);
	eq = strcmp(config_value_format(a, k, va, na), config_value_format(b, k, vb, nb)) == 0;
	free(va);
	free(vb);
	return eq;
}

void
config_value_free(struct config *cf, const struct config_key *k)
{
	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
	case CT_DELIM:
	case CT_DOMAIN:
	case CT_HOSTPORT:
	case CT_RESOLVER:
		free(*FIELD(cf, k, char *));
		*FIELD(cf, k, char *) = NULL;
		break;
	case CT_LISTEN:
	case CT_HOSTPORTS:
	case CT_DOMAINS: {
		struct config_list *l = FIELD(cf, k, struct config_list);

		for (int i = 0; i < l->n; i++)
			free(l->v[i]);
		l->n = 0;
		break;
	}
	default:
		break;
	}
}

void
config_value_copy(struct config *dst, const struct config *src, const struct config_key *k)
{
	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
	case CT_DELIM:
	case CT_DOMAIN:
	case CT_HOSTPORT:
	case CT_RESOLVER: {
		const char *s = *CFIELD(src, k, char *);

		config_value_free(dst, k);
		*FIELD(dst, k, char *) = s != NULL ? xstrdup(s) : NULL;
		break;
	}
	case CT_BOOL:
	case CT_ENUM:
		*FIELD(dst, k, int) = *CFIELD(src, k, int);
		break;
	case CT_UINT:
	case CT_DURATION:
	case CT_MSEC:
		*FIELD(dst, k, unsigned) = *CFIELD(src, k, unsigned);
		break;
	case CT_SIZE:
		*FIELD(dst, k, unsigned long long) = *CFIELD(src, k, unsigned long long);
		break;
	case CT_LISTEN:
	case CT_HOSTPORTS:
	case CT_DOMAINS: {
		const struct config_list *s = CFIELD(src, k, struct config_list);
		struct config_list *d = FIELD(dst, k, struct config_list);

		config_value_free(dst, k);
		for (int i = 0; i < s->n; i++)
			d->v[i] = xstrdup(s->v[i]);
		d->n = s->n;
		break;
	}
	case CT_NETLIST:
		*FIELD(dst, k, struct config_netlist) = *CFIELD(src, k, struct config_netlist);
		break;
	}
}
