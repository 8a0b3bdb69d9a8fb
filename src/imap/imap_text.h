/*
 * imap_text: stateless text helpers of the IMAP server (see imap_text.c).
 * Public: imap_crlf, imap_header_each, imap_date_parse, imap_text_match.
 */
#ifndef TANDEM_IMAP_TEXT_H
#define TANDEM_IMAP_TEXT_H
#include <stddef.h>

/* in with every bare LF turned into CRLF: malloc'd, NUL-terminated. */
char *imap_crlf(const char *in, size_t len, size_t *len_r);
/* Each field of a header block (through its continuation lines) to fn;
 * stops at the blank line or at fn's non-zero return, which it returns. */
int imap_header_each(const char *h, size_t len,
		     int (*fn)(const char *name, size_t nlen, const char *field, size_t flen, void *arg),
		     void *arg);
/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time): *t_r unix time,
 * *tz_r minutes east of UTC. 0, or -1. */
int imap_date_parse(const char *str, long long *t_r, int *tz_r);
/* LIST pattern p against name n: '*' anything, '%' anything but '/'. The
 * caller bounds the number of wildcards (the match backtracks). */
int imap_text_match(const char *p, const char *n);

#endif
