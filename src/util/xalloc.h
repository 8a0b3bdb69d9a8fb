/*
 * xalloc: allocation that never returns NULL. Running out of memory aborts
 * the process loudly: a mail server that half-works without memory is worse
 * than one that restarts. Public: xmalloc, xcalloc, xrealloc, xstrdup,
 * xstrndup, xasprintf.
 */
#ifndef TANDEM_XALLOC_H
#define TANDEM_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
