/*
 * imap_fetch: pieces of FETCH that SEARCH shares (see imap_fetch.c).
 * Public: imap_crlf, imap_header_each.
 */
#ifndef TANDEM_IMAP_FETCH_H
#define TANDEM_IMAP_FETCH_H
#include <stddef.h>

/* in with every bare LF turned into CRLF: malloc'd, NUL-terminated. */
char *imap_crlf(const char *in, size_t len, size_t *len_r);
/* Each field of a header block (through its continuation lines) to fn;
 * stops at the blank line or at fn's non-zero return, which it returns. */
int imap_header_each(const char *h, size_t len,
		     int (*fn)(const char *name, size_t nlen, const char *field, size_t flen, void *arg),
		     void *arg);

#endif
