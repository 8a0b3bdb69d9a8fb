/*
 * dkim: DKIM signatures (RFC 6376) of a message as it will be sent:
 * relaxed/relaxed canonicalization, SHA-256, an RSA key (rsa-sha256) or
 * an Ed25519 one (ed25519-sha256, RFC 8463); the header set of RFC 6376
 * 5.4.1 that the message has, with From, To, Cc, Subject, Date and
 * Message-ID signed once more than they occur, so that none can be added
 * later. Line ends are taken as the SMTP client sends them: CRLF, a bare
 * LF or a bare CR each end a line.
 * Public: dkim_sign, dkim_header_field, dkim_key_generate, dkim_key_read,
 * dkim_key_write, dkim_dns_record.
 */
#ifndef TANDEM_DKIM_H
#define TANDEM_DKIM_H
#include <openssl/evp.h>
#include <stddef.h>

/* The DKIM-Signature header field for msg (header and body, len bytes),
 * folded, ending in CRLF, to put before the message; malloc'd. NULL with
 * *error_r when the key cannot sign. now: the t= tag. */
char *dkim_sign(EVP_PKEY *key, const char *domain, const char *selector, const char *msg,
		size_t len, long long now, const char **error_r);

/* The value of the header's first field called name (after its colon,
 * continuation lines joined, line ends dropped), as dkim_sign reads the
 * header; malloc'd, NULL when there is none. */
char *dkim_header_field(const char *msg, size_t len, const char *name);

/* A new key: "rsa" (2048 bits) or "ed25519". NULL on failure. */
EVP_PKEY *dkim_key_generate(const char *type);
/* PEM files; write creates path (mode 0600, never over another file)
 * durably. -1 with errno. */
EVP_PKEY *dkim_key_read(const char *path);
int dkim_key_write(EVP_PKEY *key, const char *path);

/* The zone-file line that publishes key under selector:
 * SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; " "p=..." with
 * strings of at most 255 bytes; malloc'd, no newline. */
char *dkim_dns_record(EVP_PKEY *key, const char *selector, const char *domain);

#endif
