/*
 * addr: RFC 5321 path parsing (see addr.h). Strict where the RFC is clear,
 * so that nothing odd reaches the queue file, the logs or the next hop.
 * One canonical form per mailbox: domain in lower case, a quoted local part
 * unquoted when it needs no quotes ("a"@x is a@x) and otherwise written
 * with the fewest escapes, so the directory, the queue and the logs all see
 * the same string for the same mailbox.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"

static int
addr_atext(unsigned char c, int utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Dot-string: atoms separated by single dots. Returns length or -1. */
static int
addr_dot_string(const char *s, size_t len, int utf8, int *nonascii)
{
	size_t i = 0;
	int atom = 0;

	while (i < len) {
		unsigned char c = s[i];
		if (c == '.') {
			if (atom == 0)
				return -1;
			atom = 0;
		} else if (addr_atext(c, 1)) {
			if (c >= 0x80)
				*nonascii = 1;
			atom++;
		} else {
			break;
		}
		i++;
	}
	if (i == 0 || atom == 0)
		return -1;
	(void)utf8;
	return (int)i;
}

/* Quoted-string: DQUOTE *(qtextSMTP / "\" %d32-126) DQUOTE. */
static int
addr_quoted_string(const char *s, size_t len, int *nonascii)
{
	size_t i = 1;

	if (len < 2 || s[0] != '"')
		return -1;
	while (i < len) {
		unsigned char c = s[i];
		if (c == '"')
			return (int)(i + 1);
		if (c == '\\') {
			if (i + 1 >= len || (unsigned char)s[i + 1] < 32 || (unsigned char)s[i + 1] > 126)
				return -1;
			i += 2;
			continue;
		}
		if (c >= 0x80)
			*nonascii = 1;
		else if (c < 32 || c == 127)
			return -1;
		i++;
	}
	return -1;
}

/* Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF, every continuation byte in its place. */
static int
addr_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < len; ) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong */
			else if (c == 0xed)
				hi = 0x9f;	/* UTF-16 surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;	/* overlong */
			else if (c == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else {
			return 0;	/* a stray continuation, C0/C1 overlong, F5-FF */
		}
		if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		i += n + 1;
	}
	return 1;
}

/* The local part at s (n bytes, already checked) in canonical form into
 * out (at least n + 1 bytes; never longer than the input). */
static void
addr_local_canonical(const char *s, size_t n, char *out)
{
	char raw[ADDR_LOCAL_MAX + 1];
	size_t len = 0, o = 0;
	int nonascii = 0;

	if (s[0] != '"') {
		memcpy(out, s, n);
		out[n] = '\0';
		return;
	}
	for (size_t i = 1; i + 1 < n; i++) {
		if (s[i] == '\\')
			i++;
		raw[len++] = s[i];
	}
	if (len > 0 && addr_dot_string(raw, len, 1, &nonascii) == (int)len) {
		memcpy(out, raw, len);
		out[len] = '\0';
		return;
	}
	out[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '"' || raw[i] == '\\')
			out[o++] = '\\';
		out[o++] = raw[i];
	}
	out[o++] = '"';
	out[o] = '\0';
}

static int
addr_domain_valid(const char *d, size_t len, int *nonascii)
{
	size_t label = 0;

	if (len == 0)
		return 0;
	if (d[0] == '[') {
		/* address literal: [IPv4] or [IPv6:...], RFC 5321 4.1.3 */
		char lit[INET6_ADDRSTRLEN + 8];
		unsigned char bin[16];

		if (len < 3 || d[len - 1] != ']' || len - 2 >= sizeof(lit))
			return 0;
		memcpy(lit, d + 1, len - 2);
		lit[len - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, bin) == 1;
		return inet_pton(AF_INET, lit, bin) == 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = d[i];
		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c >= 0x80)
			*nonascii = 1;
		else if (!(isalnum(c) || (c == '-' && label > 0)))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && d[len - 1] != '-';
}

/* Skip a source route "@a,@b:" (RFC 5321 4.1.2: accepted and ignored). */
static size_t
addr_skip_route(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || s[0] != '@')
		return 0;
	while (i < len && s[i] != ':') {
		if (s[i] == '>' || s[i] == '"')
			return 0;
		i++;
	}
	return i < len ? i + 1 : 0;
}

enum addr_err
addr_parse_path(const char *s, size_t len, int allow_null, int utf8, char *addr_r,
		size_t *used_r)
{
	size_t i, at, end, dlen;
	int n, nonascii = 0;

	addr_r[0] = '\0';
	if (len < 2 || s[0] != '<')
		return ADDR_ESYNTAX;
	if (s[1] == '>') {
		*used_r = 2;
		return allow_null ? ADDR_OK : ADDR_ENULL;
	}
	i = 1 + addr_skip_route(s + 1, len - 1);
	if (i >= len)
		return ADDR_ESYNTAX;
	n = s[i] == '"' ? addr_quoted_string(s + i, len - i, &nonascii)
			: addr_dot_string(s + i, len - i, utf8, &nonascii);
	if (n < 0)
		return ADDR_ESYNTAX;
	if (n > ADDR_LOCAL_MAX)
		return ADDR_ELOCAL_LONG;
	at = i + n;
	if (at >= len || s[at] != '@')
		return ADDR_ESYNTAX;
	for (end = at + 1; end < len && s[end] != '>'; end++)
		if (s[end] == ' ' || s[end] == '<' || s[end] == '\0')
			return ADDR_ESYNTAX;
	if (end >= len)
		return ADDR_ESYNTAX;
	if (end - at - 1 > ADDR_DOMAIN_MAX)
		return ADDR_EDOMAIN_LONG;
	if (!addr_domain_valid(s + at + 1, end - at - 1, &nonascii))
		return ADDR_EDOMAIN;
	if (nonascii && !utf8)
		return ADDR_EUTF8;
	if (nonascii && !addr_utf8_valid(s + i, end - i))
		return ADDR_EBADUTF8;
	if (end - i + 2 > ADDR_MAX)   /* "<" mailbox ">" is at most 256 octets */
		return ADDR_EPATH_LONG;
	addr_local_canonical(s + i, (size_t)n, addr_r);
	dlen = strlen(addr_r);
	addr_r[dlen++] = '@';
	for (size_t k = at + 1; k < end; k++)
		addr_r[dlen++] = (char)tolower((unsigned char)s[k]);
	addr_r[dlen] = '\0';
	*used_r = end + 1;
	return ADDR_OK;
}

const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

int
addr_is_ascii(const char *addr)
{
	for (; *addr; addr++)
		if ((unsigned char)*addr >= 0x80)
			return 0;
	return 1;
}

const char *
addr_error_str(enum addr_err e)
{
	switch (e) {
	case ADDR_OK: return "ok";
	case ADDR_ESYNTAX: return "syntax error in mailbox address";
	case ADDR_ELOCAL_LONG: return "local part longer than 64 octets";
	case ADDR_EDOMAIN_LONG: return "domain longer than 255 octets";
	case ADDR_EPATH_LONG: return "path longer than 256 octets";
	case ADDR_EDOMAIN: return "invalid domain";
	case ADDR_EUTF8: return "non-ASCII address needs SMTPUTF8";
	case ADDR_ENULL: return "null address not allowed here";
	case ADDR_EBADUTF8: return "invalid UTF-8 in address";
	}
	return "unknown";
}
