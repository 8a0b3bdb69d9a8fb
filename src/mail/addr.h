/*
 * addr: RFC 5321 paths and addresses. Parses "<local@domain>" (or "<>"),
 * with an optional source route, checks the grammar and the length limits
 * (local part 64, domain 255, path 256), and gives back the canonical
 * address: the domain in lower case, a quoted local part unquoted when it
 * needs no quotes ("a"@x is a@x; "a b"@x stays quoted, with only '"' and
 * backslash escaped). Non-ASCII only under SMTPUTF8, and only well-formed UTF-8.
 * Public: addr_parse_path, addr_domain, addr_is_ascii, addr_error_str.
 */
#ifndef TANDEM_ADDR_H
#define TANDEM_ADDR_H
#include <stddef.h>

#define ADDR_MAX 256          /* RFC 5321 4.5.3.1.3 path, with NUL room */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255

enum addr_err {
	ADDR_OK = 0,
	ADDR_ESYNTAX,         /* not a path */
	ADDR_ELOCAL_LONG,     /* local part over 64 octets */
	ADDR_EDOMAIN_LONG,    /* domain over 255 octets */
	ADDR_EPATH_LONG,      /* whole path over 256 octets */
	ADDR_EDOMAIN,         /* bad domain or address literal */
	ADDR_EUTF8,           /* non-ASCII without SMTPUTF8 */
	ADDR_ENULL,           /* "<>" where a mailbox is needed */
	ADDR_EBADUTF8         /* non-ASCII that is not well-formed UTF-8 (overlong,
			       * surrogate, above U+10FFFF, broken sequence) */
};

/* Parse a path at s (len bytes, NUL not required). On ADDR_OK, addr_r
 * (ADDR_MAX bytes) holds "local@domain" or "" for "<>", and *used_r the
 * number of bytes consumed (up to and including '>').
 * allow_null: "<>" accepted (MAIL FROM). utf8: SMTPUTF8 in effect. */
enum addr_err addr_parse_path(const char *s, size_t len, int allow_null, int utf8,
			      char *addr_r, size_t *used_r);
/* Pointer to the domain part of a canonical address ("" for none). */
const char *addr_domain(const char *addr);
int addr_is_ascii(const char *addr);
const char *addr_error_str(enum addr_err e);

#endif
