/*
 * imap_utf7: modified UTF-7 (RFC 3501 §5.1.3) to and from UTF-8 (see
 * imap_utf7.h). Public: imap_utf7_to_utf8, imap_utf8_to_utf7.
 *
 * The decoder accepts exactly what the encoder produces, so a folder name
 * has one spelling: printable ASCII stands for itself ('&' as "&-"), every
 * other character is in a base64 run of UTF-16 (',' for '/', no '=') that
 * is as short as possible, whose spare bits are zero, and that does not
 * directly follow another run (the encoder would have made one of them).
 */
#include "imap/imap_utf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static const char utf7_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

struct utf7_out {
	char *s;
	size_t len, cap;
};

static void
out_add(struct utf7_out *o, char c)
{
	if (o->len + 1 >= o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->s = xrealloc(o->s, o->cap);
	}
	o->s[o->len++] = c;
	o->s[o->len] = '\0';
}

static int
b64_value(char c)
{
	const char *p = c != '\0' ? strchr(utf7_b64, c) : NULL;

	return p != NULL ? (int)(p - utf7_b64) : -1;
}

static void
utf8_put(struct utf7_out *o, uint32_t v)
{
	if (v < 0x80) {
		out_add(o, (char)v);
	} else if (v < 0x800) {
		out_add(o, (char)(0xc0 | (v >> 6)));
		out_add(o, (char)(0x80 | (v & 0x3f)));
	} else if (v < 0x10000) {
		out_add(o, (char)(0xe0 | (v >> 12)));
		out_add(o, (char)(0x80 | ((v >> 6) & 0x3f)));
		out_add(o, (char)(0x80 | (v & 0x3f)));
	} else {
		out_add(o, (char)(0xf0 | (v >> 18)));
		out_add(o, (char)(0x80 | ((v >> 12) & 0x3f)));
		out_add(o, (char)(0x80 | ((v >> 6) & 0x3f)));
		out_add(o, (char)(0x80 | (v & 0x3f)));
	}
}

/* One base64 run from just after '&' through its '-'; *sp moves past it. */
static int
utf7_decode_run(const char **sp, struct utf7_out *o)
{
	const char *s = *sp;
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	int v, units = 0;

	while ((v = b64_value(*s)) >= 0) {
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		s++;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;

		bits &= (1u << nbits) - 1;
		units++;
		if (high != 0) {
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			utf8_put(o, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			return -1;
		} else if (u == 0 || (u >= 0x20 && u <= 0x7e)) {
			/* printable ASCII must stand for itself; NUL ends C strings */
			return -1;
		} else {
			utf8_put(o, u);
		}
	}
	/* a '-' ends it; spare bits are fewer than one base64 digit, zero */
	if (*s != '-' || units == 0 || high != 0 || nbits >= 6 || bits != 0)
		return -1;
	*sp = s + 1;
	return 0;
}

int
imap_utf7_to_utf8(const char *in, char **out_r)
{
	struct utf7_out o = { NULL, 0, 0 };
	int after_run = 0;

	out_add(&o, 'x');
	o.len = 0;
	o.s[0] = '\0';
	while (*in != '\0') {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&') {
			out_add(&o, (char)c);
			in++;
			after_run = 0;
			continue;
		}
		in++;
		if (*in == '-') {
			out_add(&o, '&');
			in++;
			after_run = 0;
			continue;
		}
		if (after_run || utf7_decode_run(&in, &o) < 0)
			goto fail;
		after_run = 1;
	}
	*out_r = o.s;
	return 0;
fail:
	free(o.s);
	*out_r = NULL;
	return -1;
}

/* The next code point of strict UTF-8 (no overlongs, surrogates, NUL). */
static int
utf8_next(const unsigned char **sp, uint32_t *v_r)
{
	const unsigned char *s = *sp;
	unsigned need;
	uint32_t v, min;

	if (s[0] < 0x80) {
		*v_r = s[0];
		*sp = s + 1;
		return 0;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1, min = 0x80, v = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 2, min = 0x800, v = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 3, min = 0x10000, v = s[0] & 0x07;
	else
		return -1;
	for (unsigned k = 1; k <= need; k++) {
		/* a NUL is not a continuation byte: no read past the end */
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*v_r = v;
	*sp = s + need + 1;
	return 0;
}

struct utf7_enc {
	uint32_t bits;
	unsigned nbits;
};

static void
enc_unit(struct utf7_out *o, struct utf7_enc *e, uint32_t u)
{
	e->bits = (e->bits << 16) | u;
	e->nbits += 16;
	while (e->nbits >= 6) {
		e->nbits -= 6;
		out_add(o, utf7_b64[(e->bits >> e->nbits) & 0x3f]);
	}
	e->bits &= (1u << e->nbits) - 1;
}

int
imap_utf8_to_utf7(const char *in, char **out_r)
{
	const unsigned char *s = (const unsigned char *)in;
	struct utf7_out o = { NULL, 0, 0 };
	struct utf7_enc e = { 0, 0 };
	int in_run = 0;

	out_add(&o, 'x');
	o.len = 0;
	o.s[0] = '\0';
	while (*s != '\0') {
		uint32_t v;

		if (utf8_next(&s, &v) < 0) {
			free(o.s);
			*out_r = NULL;
			return -1;
		}
		if (v >= 0x20 && v <= 0x7e) {
			if (in_run) {
				if (e.nbits > 0)
					out_add(&o, utf7_b64[(e.bits << (6 - e.nbits)) & 0x3f]);
				out_add(&o, '-');
				e.bits = e.nbits = 0;
				in_run = 0;
			}
			out_add(&o, (char)v);
			if (v == '&')
				out_add(&o, '-');
			continue;
		}
		if (!in_run) {
			out_add(&o, '&');
			in_run = 1;
		}
		if (v >= 0x10000) {
			enc_unit(&o, &e, 0xd800 + ((v - 0x10000) >> 10));
			enc_unit(&o, &e, 0xdc00 + ((v - 0x10000) & 0x3ff));
		} else {
			enc_unit(&o, &e, v);
		}
	}
	if (in_run) {
		if (e.nbits > 0)
			out_add(&o, utf7_b64[(e.bits << (6 - e.nbits)) & 0x3f]);
		out_add(&o, '-');
	}
	*out_r = o.s;
	return 0;
}
