/*
 * dkim_keys: see dkim_keys.h.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mail/addr.h"
#include "mail/addrlist.h"
#include "mail/dkim.h"
#include "mail/dkim_keys.h"
#include "util/durable.h"
#include "util/xalloc.h"

#define DKIM_PATH 4096

int
dkim_keys_domain(const char *domain, char *out, size_t len)
{
	size_t n = strlen(domain);

	if (n == 0 || n > 253 || n >= len || domain[0] == '.' || domain[0] == '-' ||
	    strstr(domain, "..") != NULL)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		char c = domain[i];

		if (c >= 'A' && c <= 'Z')
			c += 32;
		if (c != '\0' && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' &&
		    c != '.')
			return -1;
		out[i] = c;
	}
	return 0;
}

static int
dkim_dir(const char *data_dir, const char *domain, char *out, size_t len)
{
	char d[256];

	if (dkim_keys_domain(domain, d, sizeof(d)) != 0)
		return -1;
	snprintf(out, len, "%s/dkim/%s", data_dir, d);
	return 0;
}

int
dkim_keys_list(const char *data_dir, const char *domain, struct dkim_sel *sel, int max,
	       const char **error_r)
{
	char dir[DKIM_PATH], path[DKIM_PATH + 16], line[256];
	FILE *fp;
	int n = 0;

	if (dkim_dir(data_dir, domain, dir, sizeof(dir)) != 0) {
		*error_r = "not a domain name";
		return -1;
	}
	snprintf(path, sizeof(path), "%s/selectors", dir);
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = strerror(errno);
		return -1;
	}
	while (n < max && fgets(line, sizeof(line), fp) != NULL) {
		char name[64], state[16];
		long long since;

		if (sscanf(line, "%63s %15s %lld", name, state, &since) != 3 ||
		    strlen(name) >= sizeof(sel[n].name) || strspn(name, "abcdefghijklmnopqrstuvwxyz"
								    "0123456789") != strlen(name) ||
		    (strcmp(state, "active") != 0 && strcmp(state, "retired") != 0))
			continue;
		snprintf(sel[n].name, sizeof(sel[n].name), "%s", name);
		sel[n].active = strcmp(state, "active") == 0;
		sel[n].since = since;
		n++;
	}
	fclose(fp);
	return n;
}

EVP_PKEY *
dkim_keys_read(const char *data_dir, const char *domain, const char *selector)
{
	char dir[DKIM_PATH], path[DKIM_PATH + 64];

	if (dkim_dir(data_dir, domain, dir, sizeof(dir)) != 0 ||
	    strspn(selector, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(selector))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.key", dir, selector);
	return dkim_key_read(path);
}

int
dkim_keys_new(const char *data_dir, const char *domain, long long now, char *sel_r, size_t len,
	      const char **error_r)
{
	char dir[DKIM_PATH], path[DKIM_PATH + 64], name[32], *text;
	struct dkim_sel sel[DKIM_KEYS_MAX];
	time_t t = (time_t)now;
	struct tm tm;
	size_t o = 0, cap;
	EVP_PKEY *key;
	int n, rc;

	if ((n = dkim_keys_list(data_dir, domain, sel, DKIM_KEYS_MAX - 1, error_r)) < 0)
		return -1;
	dkim_dir(data_dir, domain, dir, sizeof(dir));
	if (durable_mkdirs(dir, 0700) != 0) {
		*error_r = strerror(errno);
		return -1;
	}
	gmtime_r(&t, &tm);
	/* t20261202, then t20261202b ... z */
	for (int k = 0;; k++) {
		struct stat sb;

		if (k > 25) {
			*error_r = "too many keys made today";
			return -1;
		}
		snprintf(name, sizeof(name), "t%04d%02d%02d%.*s", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, k > 0, &"abcdefghijklmnopqrstuvwxyz"[k]);
		snprintf(path, sizeof(path), "%s/%s.key", dir, name);
		if (lstat(path, &sb) != 0)
			break;
	}
	if ((key = dkim_key_generate("rsa")) == NULL) {
		*error_r = "cannot make a key";
		return -1;
	}
	rc = dkim_key_write(key, path);
	EVP_PKEY_free(key);
	if (rc != 0) {
		*error_r = strerror(errno);
		return -1;
	}
	cap = (size_t)(n + 1) * 80;
	text = xmalloc(cap);
	o += (size_t)snprintf(text + o, cap - o, "%s active %lld\n", name, now);
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(text + o, cap - o, "%s retired %lld\n", sel[i].name,
				      sel[i].active ? now : sel[i].since);
	snprintf(path, sizeof(path), "%s/selectors", dir);
	rc = durable_write_file(path, text, o, 0600);
	free(text);
	if (rc != 0) {
		*error_r = strerror(errno);
		return -1;
	}
	snprintf(sel_r, len, "%s", name);
	return 0;
}

/* --- the server's signer ------------------------------------------------ */

struct dkim_dom {
	char domain[256];
	char selector[32];
	EVP_PKEY *key;              /* NULL: the domain has no key */
	struct timespec mtime;      /* of its selectors file, as read */
	int exists;
	struct dkim_dom *next;
};

struct dkim_signer {
	char *data_dir;
	pthread_mutex_t mu;
	struct dkim_dom *doms;
	struct timespec any_mtime;  /* of data_dir/dkim when any was counted */
	int any;                    /* -1 not yet */
};

struct dkim_signer *
dkim_signer_new(const char *data_dir)
{
	struct dkim_signer *s = xcalloc(1, sizeof(*s));

	s->data_dir = xstrdup(data_dir);
	s->any = -1;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	while (s->doms != NULL) {
		struct dkim_dom *d = s->doms;

		s->doms = d->next;
		EVP_PKEY_free(d->key);
		free(d);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->data_dir);
	free(s);
}

int
dkim_signer_any(struct dkim_signer *s)
{
	char dir[DKIM_PATH];
	struct stat sb;
	int any;

	snprintf(dir, sizeof(dir), "%s/dkim", s->data_dir);
	if (stat(dir, &sb) != 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (s->any < 0 || s->any_mtime.tv_sec != sb.st_mtim.tv_sec ||
	    s->any_mtime.tv_nsec != sb.st_mtim.tv_nsec) {
		DIR *dp = opendir(dir);
		struct dirent *de;

		s->any = 0;
		while (dp != NULL && (de = readdir(dp)) != NULL)
			if (de->d_name[0] != '.')
				s->any = 1;
		if (dp != NULL)
			closedir(dp);
		s->any_mtime = sb.st_mtim;
	}
	any = s->any;
	pthread_mutex_unlock(&s->mu);
	return any;
}

/* The domain's active key (a reference the caller frees), re-read when
 * its selectors file changed; NULL when it has none. */
static EVP_PKEY *
dkim_signer_key(struct dkim_signer *s, const char *domain, char *sel_r, size_t len)
{
	char dir[DKIM_PATH], path[DKIM_PATH + 16], name[256];
	struct dkim_sel sel[DKIM_KEYS_MAX];
	struct dkim_dom *d;
	struct stat sb;
	EVP_PKEY *key = NULL;
	const char *err;
	int exists, n;

	if (dkim_keys_domain(domain, name, sizeof(name)) != 0 ||
	    dkim_dir(s->data_dir, name, dir, sizeof(dir)) != 0)
		return NULL;
	snprintf(path, sizeof(path), "%s/selectors", dir);
	exists = stat(path, &sb) == 0;
	pthread_mutex_lock(&s->mu);
	for (d = s->doms; d != NULL && strcmp(d->domain, name) != 0; d = d->next)
		;
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		snprintf(d->domain, sizeof(d->domain), "%s", name);
		d->exists = -1;
		d->next = s->doms;
		s->doms = d;
	}
	if (d->exists != exists || (exists && (d->mtime.tv_sec != sb.st_mtim.tv_sec ||
					       d->mtime.tv_nsec != sb.st_mtim.tv_nsec))) {
		EVP_PKEY_free(d->key);
		d->key = NULL;
		d->selector[0] = '\0';
		d->exists = exists;
		if (exists) {
			d->mtime = sb.st_mtim;
			n = dkim_keys_list(s->data_dir, name, sel, DKIM_KEYS_MAX, &err);
			for (int i = 0; i < n; i++)
				if (sel[i].active) {
					d->key = dkim_keys_read(s->data_dir, name, sel[i].name);
					snprintf(d->selector, sizeof(d->selector), "%s", sel[i].name);
					break;
				}
		}
	}
	if (d->key != NULL && EVP_PKEY_up_ref(d->key) == 1) {
		key = d->key;
		snprintf(sel_r, len, "%s", d->selector);
	}
	pthread_mutex_unlock(&s->mu);
	return key;
}

static int
dkim_first_addr(const char *addr, void *arg)
{
	snprintf(arg, ADDR_MAX, "%s", addr);
	return 1;   /* the first is enough */
}

/* The domain of the header's first From: address, into out. */
static int
dkim_from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
	char addr[ADDR_MAX] = "", *value = dkim_header_field(msg, len, "from");

	if (value == NULL)
		return -1;
	addrlist_each(value, 0, NULL, dkim_first_addr, addr);
	free(value);
	if (addr[0] == '\0' || strrchr(addr, '@') == NULL)
		return -1;
	snprintf(out, outlen, "%s", strrchr(addr, '@') + 1);
	return 0;
}

char *
dkim_signer_sign(struct dkim_signer *s, const char *msg, size_t len,
		 const char *const *fallback, int nfallback, long long now)
{
	char domain[256] = "", sel[32];
	EVP_PKEY *key = NULL;
	const char *err;
	char *sig;

	if (dkim_from_domain(msg, len, domain, sizeof(domain)) == 0)
		key = dkim_signer_key(s, domain, sel, sizeof(sel));
	for (int i = 0; key == NULL && i < nfallback; i++) {
		if (fallback[i] == NULL || fallback[i][0] == '\0')
			continue;
		snprintf(domain, sizeof(domain), "%s", fallback[i]);
		key = dkim_signer_key(s, domain, sel, sizeof(sel));
	}
	if (key == NULL)
		return NULL;
	dkim_keys_domain(domain, domain, sizeof(domain));   /* valid: it has a key */
	sig = dkim_sign(key, domain, sel, msg, len, now, &err);
	EVP_PKEY_free(key);
	return sig;
}
