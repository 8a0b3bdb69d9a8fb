/*
 * dkim_keys: each local domain's DKIM keys, under data_dir/dkim/DOMAIN/:
 * SELECTOR.key (PEM, mode 0600) and "selectors", one line per key, the
 * newest first: "SELECTOR active|retired SINCE" (SINCE: when it became
 * so, Unix time). One key is active and signs; a rotation makes a new
 * one active and the old one retired, still published for the grace
 * period so that mail signed just before can still be verified.
 * Selectors are "tYYYYMMDD" (UTC), with a letter added when a domain
 * rotates twice in a day.
 * Public: dkim_keys_domain, dkim_keys_list, dkim_keys_new, dkim_keys_read, dkim_signer_new,
 * dkim_signer_free, dkim_signer_any, dkim_signer_sign.
 */
#ifndef TANDEM_DKIM_KEYS_H
#define TANDEM_DKIM_KEYS_H
#include <openssl/evp.h>
#include <stddef.h>

#define DKIM_KEYS_MAX 32   /* selectors kept per domain */

struct dkim_sel {
	char name[32];
	int active;
	long long since;
};

/* The domain as its keys are kept and signed for: a host name in lower
 * case (into out, which may be domain itself), nothing that could leave
 * data_dir/dkim. 0, or -1 when it is no such name. */
int dkim_keys_domain(const char *domain, char *out, size_t len);
/* The domain's selectors, the newest first: their number, 0 when it has
 * none, -1 with *error_r. */
int dkim_keys_list(const char *data_dir, const char *domain, struct dkim_sel *sel, int max,
		   const char **error_r);
/* A new RSA-2048 key for domain, active from now on; the active one, if
 * any, is retired. Its selector in sel_r. 0, or -1 with *error_r. */
int dkim_keys_new(const char *data_dir, const char *domain, long long now, char *sel_r,
		  size_t len, const char **error_r);
/* One selector's key; NULL when it cannot be read. */
EVP_PKEY *dkim_keys_read(const char *data_dir, const char *domain, const char *selector);

/* What the server signs with: the active key of each domain, read once
 * and again when its selectors file changes. Thread safe. */
struct dkim_signer;
struct dkim_signer *dkim_signer_new(const char *data_dir);
void dkim_signer_free(struct dkim_signer **sp);
/* Does any domain have a key? (a backup relaying others' mail has none:
 * it need not read a message to find its From:) */
int dkim_signer_any(struct dkim_signer *s);
/* The DKIM-Signature field for msg, signed for the first of these
 * domains that has a key: its From:'s, then the fallbacks (nfallback of
 * them, NULL or "" skipped); NULL when none has one. malloc'd. */
char *dkim_signer_sign(struct dkim_signer *s, const char *msg, size_t len,
		       const char *const *fallback, int nfallback, long long now);

#endif
