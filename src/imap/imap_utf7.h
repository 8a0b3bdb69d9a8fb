/*
 * imap_utf7: folder names between UTF-8 (the store's) and the modified
 * UTF-7 of RFC 3501 §5.1.3 (IMAP4rev1 clients). Decoding is strict: a
 * non-canonical or malformed name ("&" runs that encode printable ASCII,
 * bad base64, unpaired surrogates, a missing "-") is refused, so one
 * folder never has two spellings.
 * Public: imap_utf7_to_utf8, imap_utf8_to_utf7.
 */
#ifndef TANDEM_IMAP_UTF7_H
#define TANDEM_IMAP_UTF7_H
#include <stddef.h>

/* 0 with a malloc'd result in *out_r, or -1. */
int imap_utf7_to_utf8(const char *in, char **out_r);
int imap_utf8_to_utf7(const char *in, char **out_r);

#endif
