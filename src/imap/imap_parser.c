/*
 * imap_parser: the push parser of IMAP commands declared in imap_parser.h.
 * Public: imap_parser_new, imap_parser_free, imap_parser_feed,
 * imap_parser_tag, imap_parser_command, imap_parser_args,
 * imap_parser_error, imap_parser_literal, imap_parser_literal_accept,
 * imap_parser_literal_stream, imap_parser_literal_streamed,
 * imap_parser_literal_reject, imap_parser_reset, imap_arg_atom,
 * imap_arg_string, imap_arg_astring, imap_arg_nstring, imap_arg_list.
 *
 * One state machine over bytes, so any split of the input gives the same
 * result. Every string of a command (tag, name, atoms, quoted strings,
 * kept literals) goes NUL-terminated into one growing buffer, and every
 * argument into a flat array of nodes in the order they were read (with
 * their parent list); the tree of struct imap_arg is laid out from those
 * only when a command (or a literal header) is complete, because the
 * buffer moves while it grows. Both are reset for each command, and a
 * buffer that a big command made large is given back.
 *
 * Spaces: as Dovecot's parser, runs of SP between arguments and a trailing
 * SP before the end of the line are accepted (clients send them, and they
 * are not ambiguous); the structure itself is strict: an argument that is
 * not an atom must be followed by SP, ')' or the end of the line, and the
 * tag starts the line. CRLF or a bare LF ends a line; a CR elsewhere is an
 * error. An empty line is an error without a tag (the session answers
 * "* BAD"). max_line counts the bytes of a line without its CR LF.
 */
#include "imap/imap_parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/xalloc.h"

/* A buffer that a command grew past this is freed when the command ends. */
#define IMAP_PARSER_KEEP_BYTES 65536
/* Literal sizes are at most 2^63 (no client means more; no overflow). */
#define IMAP_PARSER_LITERAL_DIGITS 19

#define NO_PARENT SIZE_MAX
#define NO_STR SIZE_MAX

enum pstate {
	PS_TAG,            /* the tag's first byte or more of it */
	PS_CMD_SP,         /* after the tag: SP, then the command name */
	PS_CMD,            /* in the command name */
	PS_ARGS,           /* where an argument may start */
	PS_AFTER,          /* after a quoted string, literal or list */
	PS_ATOM,
	PS_QUOTED,
	PS_QUOTED_ESC,
	PS_LIT_SIZE,       /* after '{': digits */
	PS_LIT_PLUS,       /* after '+': '}' */
	PS_LIT_EOL,        /* after '}': CR or LF */
	PS_LIT_LF,         /* after '}' CR: LF */
	PS_LIT_PENDING,    /* IMAP_PARSE_LITERAL returned: waiting for a decision */
	PS_LIT_DATA,       /* an accepted literal's bytes */
	PS_LIT_STREAM,     /* the session reads the literal */
	PS_LF,             /* after CR: LF */
	PS_SKIP_LINE,      /* after an error: through the end of the line */
	PS_SKIP_LITERAL    /* ... and through the data of a trailing {N+} */
};

/* Recognises a "{N+}" (optionally CR) before LF while a line is skipped. */
enum skiptrack { ST_NONE, ST_DIGITS, ST_PLUS, ST_CLOSE, ST_CR };

struct pnode {
	enum imap_arg_type type;
	size_t off;        /* in buf, or NO_STR */
	size_t len;
	size_t parent;     /* node index, or NO_PARENT */
	size_t idx;        /* position among its parent's children */
	size_t nchild;
	size_t block;      /* LIST: where its children start in out */
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum pstate state;
	int finished;      /* COMMAND, ERROR or a rejection was returned */

	char *buf;
	size_t buflen, bufcap;
	struct pnode *nodes;
	size_t nnodes, nodecap, ntop;
	struct imap_arg *out;
	size_t outcap, nout;
	size_t *open;      /* the stack of open lists (node indices) */
	size_t depth, opencap;

	size_t cmd_off;
	int have_tag, have_cmd;
	size_t line_len;
	size_t cur;        /* the node being read (atom, quoted) */
	unsigned brackets; /* '[' open in the current atom */

	uint64_t lit_size, lit_left;
	int lit_sync, lit_digits, lit8;

	enum skiptrack st;
	uint64_t st_size;
	int st_digits;
	const char *error;
};

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *lim)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->lim = *lim;
	p->state = PS_TAG;
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	free(p->buf);
	free(p->nodes);
	free(p->out);
	free(p->open);
	free(p);
	*pp = NULL;
}

/* Forget the command's data (not the state: a skip may be under way). */
static void
parser_clear(struct imap_parser *p)
{
	if (p->bufcap > IMAP_PARSER_KEEP_BYTES) {
		free(p->buf);
		p->buf = NULL;
		p->bufcap = 0;
	}
	if (p->nodecap > 1024) {
		free(p->nodes);
		free(p->out);
		p->nodes = NULL;
		p->out = NULL;
		p->nodecap = p->outcap = 0;
	}
	p->buflen = 0;
	p->nnodes = p->ntop = p->nout = 0;
	p->depth = 0;
	p->have_tag = p->have_cmd = 0;
	p->line_len = 0;
	p->brackets = 0;
	p->lit_size = p->lit_left = 0;
	p->lit_sync = p->lit8 = p->lit_digits = 0;
	p->error = NULL;
	p->finished = 0;
}

void
imap_parser_reset(struct imap_parser *p)
{
	parser_clear(p);
	p->state = PS_TAG;
	p->st = ST_NONE;
}

static void
buf_reserve(struct imap_parser *p, size_t more)
{
	size_t cap;

	if (p->bufcap - p->buflen > more)
		return;
	cap = p->bufcap ? p->bufcap : 256;
	while (cap - p->buflen <= more)
		cap *= 2;
	p->buf = xrealloc(p->buf, cap);
	p->bufcap = cap;
}

static void
buf_add(struct imap_parser *p, const char *s, size_t n)
{
	buf_reserve(p, n + 1);
	memcpy(p->buf + p->buflen, s, n);
	p->buflen += n;
}

static void
buf_nul(struct imap_parser *p)
{
	buf_add(p, "", 1);
}

/* A new argument in the innermost open list (or at the top); -1 when the
 * command has max_args already. */
static int
node_new(struct imap_parser *p, enum imap_arg_type type, size_t *idx_r)
{
	struct pnode *n;

	if (p->nnodes >= p->lim.max_args)
		return -1;
	if (p->nnodes == p->nodecap) {
		p->nodecap = p->nodecap ? p->nodecap * 2 : 16;
		p->nodes = xrealloc(p->nodes, p->nodecap * sizeof(*p->nodes));
	}
	n = &p->nodes[p->nnodes];
	n->type = type;
	n->off = NO_STR;
	n->len = 0;
	n->nchild = 0;
	n->block = 0;
	if (p->depth > 0) {
		n->parent = p->open[p->depth - 1];
		n->idx = p->nodes[n->parent].nchild++;
	} else {
		n->parent = NO_PARENT;
		n->idx = p->ntop++;
	}
	*idx_r = p->nnodes++;
	return 0;
}

/* Lay out the tree of the arguments read so far (open lists hold what
 * they have). */
static void
parser_build(struct imap_parser *p)
{
	size_t next = p->ntop;

	if (p->nnodes > p->outcap) {
		p->outcap = p->nnodes;
		p->out = xrealloc(p->out, p->outcap * sizeof(*p->out));
	}
	for (size_t i = 0; i < p->nnodes; i++) {
		if (p->nodes[i].type == IMAP_ARG_LIST) {
			p->nodes[i].block = next;
			next += p->nodes[i].nchild;
		}
	}
	for (size_t i = 0; i < p->nnodes; i++) {
		const struct pnode *n = &p->nodes[i];
		size_t slot = n->idx + (n->parent == NO_PARENT ? 0 : p->nodes[n->parent].block);
		struct imap_arg *a = &p->out[slot];

		a->type = n->type;
		a->str = n->off == NO_STR ? NULL : p->buf + n->off;
		a->len = n->len;
		a->list = n->type == IMAP_ARG_LIST && n->nchild > 0 ? p->out + n->block : NULL;
		a->nlist = n->type == IMAP_ARG_LIST ? n->nchild : 0;
	}
	p->nout = p->ntop;
}

/* Strict UTF-8 (no overlongs, surrogates or values over U+10FFFF). */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, min;
		uint32_t v;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1, min = 0x80, v = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, min = 0x800, v = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, min = 0x10000, v = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= need)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			v = (v << 6) | (s[i + k] & 0x3f);
		}
		if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* The error for byte c: the rest of the line is skipped unless c ended it. */
static int parser_skip_byte(struct imap_parser *p, unsigned char c);

/* The error for byte c: the rest of the line is skipped unless c ended it,
 * and the skip still sees a "{N+}" whose header the error interrupted. */
static enum imap_parse
parser_fail(struct imap_parser *p, const char *msg, unsigned char c)
{
	p->error = msg;
	p->finished = 1;
	p->nout = 0;
	p->st = ST_NONE;
	p->st_size = p->lit_size;
	p->st_digits = p->lit_digits;
	if (p->state == PS_LIT_SIZE)
		p->st = ST_DIGITS;
	else if (p->state == PS_LIT_PLUS)
		p->st = ST_PLUS;
	else if (p->state == PS_LIT_EOL && !p->lit_sync)
		p->st = ST_CLOSE;
	else if (p->state == PS_LIT_LF && !p->lit_sync)
		p->st = ST_CR;
	if (c == '\n') {
		p->state = PS_TAG;
	} else {
		p->state = PS_SKIP_LINE;
		parser_skip_byte(p, c);
	}
	return IMAP_PARSE_ERROR;
}

static int
is_tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

static int
is_atom_char(unsigned char c)
{
	/* Argument atoms: ATOM-CHAR plus ']' (astrings), '%' and '*' (LIST
	 * patterns, sequence sets) and '\' (flags). */
	return c > 0x20 && c < 0x7f && strchr("(){\"", c) == NULL;
}

static int
is_cmd_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* The end of the command's line. */
static enum imap_parse
parser_eol(struct imap_parser *p)
{
	if (p->depth > 0)
		return parser_fail(p, "Missing ')'", '\n');
	parser_build(p);
	p->finished = 1;
	p->state = PS_TAG;
	return IMAP_PARSE_COMMAND;
}

static enum imap_parse
parser_close_list(struct imap_parser *p, unsigned char c)
{
	if (p->depth == 0)
		return parser_fail(p, "Unexpected ')'", c);
	p->depth--;
	p->state = PS_AFTER;
	return IMAP_PARSE_MORE;
}

/* End the atom being read; NIL is its own type. */
static void
atom_end(struct imap_parser *p)
{
	struct pnode *n = &p->nodes[p->cur];

	n->len = p->buflen - n->off;
	buf_nul(p);
	if (n->len == 3 && strncasecmp(p->buf + n->off, "NIL", 3) == 0)
		n->type = IMAP_ARG_NIL;
}

static enum imap_parse
parser_start_arg(struct imap_parser *p, unsigned char c)
{
	size_t idx;

	switch (c) {
	case ' ':
		return IMAP_PARSE_MORE;
	case '\r':
		p->state = PS_LF;
		return IMAP_PARSE_MORE;
	case '\n':
		return parser_eol(p);
	case ')':
		return parser_close_list(p, c);
	case '{':
		if (p->nnodes >= p->lim.max_args)
			return parser_fail(p, "Too many arguments", c);
		p->lit_size = 0;
		p->lit_digits = 0;
		p->lit_sync = 1;
		p->lit8 = 0;
		p->state = PS_LIT_SIZE;
		return IMAP_PARSE_MORE;
	default:
		break;
	}
	if (c == '(') {
		if (p->depth >= p->lim.max_depth)
			return parser_fail(p, "Too deeply nested lists", c);
		if (node_new(p, IMAP_ARG_LIST, &idx) < 0)
			return parser_fail(p, "Too many arguments", c);
		if (p->depth == p->opencap) {
			p->opencap = p->opencap ? p->opencap * 2 : 8;
			p->open = xrealloc(p->open, p->opencap * sizeof(*p->open));
		}
		p->open[p->depth++] = idx;
		return IMAP_PARSE_MORE;
	}
	if (c == '"') {
		if (node_new(p, IMAP_ARG_QUOTED, &p->cur) < 0)
			return parser_fail(p, "Too many arguments", c);
		p->nodes[p->cur].off = p->buflen;
		p->state = PS_QUOTED;
		return IMAP_PARSE_MORE;
	}
	if (c >= 0x80)
		return parser_fail(p, "8-bit character in atom", c);
	if (!is_atom_char(c))
		return parser_fail(p, "Invalid character in argument", c);
	if (node_new(p, IMAP_ARG_ATOM, &p->cur) < 0)
		return parser_fail(p, "Too many arguments", c);
	p->nodes[p->cur].off = p->buflen;
	p->brackets = 0;
	p->state = PS_ATOM;
	buf_reserve(p, 1);
	p->buf[p->buflen++] = (char)c;
	if (c == '[')
		p->brackets = 1;
	return IMAP_PARSE_MORE;
}

static enum imap_parse
parser_atom(struct imap_parser *p, unsigned char c)
{
	struct pnode *n = &p->nodes[p->cur];

	if (c >= 0x80)
		return parser_fail(p, "8-bit character in atom", c);
	if (p->brackets > 0) {
		/* BODY[HEADER.FIELDS (FROM TO)]: anything printable to the ']' */
		if (c < 0x20 || c == 0x7f)
			return parser_fail(p, c == '\r' || c == '\n' ? "Missing ']'" :
					   "Invalid character in atom", c);
		if (c == '[')
			p->brackets++;
		else if (c == ']')
			p->brackets--;
	} else if (c == ' ' || c == '\r' || c == '\n' || c == ')') {
		atom_end(p);
		if (c == ')')
			return parser_close_list(p, c);
		p->state = PS_ARGS;
		return parser_start_arg(p, c);
	} else if (c == '{' && p->buflen - n->off == 1 && p->buf[n->off] == '~') {
		/* ~{N}: a literal8 (BINARY), refused once its header is read */
		p->nnodes--;
		if (n->parent == NO_PARENT)
			p->ntop--;
		else
			p->nodes[n->parent].nchild--;
		p->buflen = n->off;
		p->state = PS_ARGS;
		parser_start_arg(p, c);
		p->lit8 = 1;
		return IMAP_PARSE_MORE;
	} else if (!is_atom_char(c)) {
		return parser_fail(p, "Invalid character in atom", c);
	} else if (c == '[') {
		p->brackets = 1;
	}
	buf_reserve(p, 1);
	p->buf[p->buflen++] = (char)c;
	return IMAP_PARSE_MORE;
}

static enum imap_parse
parser_quoted(struct imap_parser *p, unsigned char c)
{
	struct pnode *n = &p->nodes[p->cur];

	if (c == '\0')
		return parser_fail(p, "NUL in quoted string", c);
	if (c == '\r' || c == '\n')
		return parser_fail(p, "Unterminated quoted string", c);
	if (p->state == PS_QUOTED_ESC) {
		if (c != '\\' && c != '"')
			return parser_fail(p, "Invalid escape in quoted string", c);
		p->state = PS_QUOTED;
	} else if (c == '\\') {
		p->state = PS_QUOTED_ESC;
		return IMAP_PARSE_MORE;
	} else if (c == '"') {
		n->len = p->buflen - n->off;
		if (!utf8_valid((const unsigned char *)p->buf + n->off, n->len))
			return parser_fail(p, "Invalid 8-bit data in quoted string", c);
		buf_nul(p);
		p->state = PS_AFTER;
		return IMAP_PARSE_MORE;
	}
	buf_reserve(p, 1);
	p->buf[p->buflen++] = (char)c;
	return IMAP_PARSE_MORE;
}

/* The LF of "{N}" or "{N+}": the session decides. */
static enum imap_parse
parser_literal_header(struct imap_parser *p)
{
	if (p->lit8) {
		p->error = "literal8 (BINARY) is not supported";
		p->finished = 1;
		p->st = ST_NONE;
		p->lit_left = p->lit_size;
		p->state = p->lit_sync ? PS_TAG : PS_SKIP_LITERAL;
		return IMAP_PARSE_ERROR;
	}
	parser_build(p);
	p->state = PS_LIT_PENDING;
	return IMAP_PARSE_LITERAL;
}

static enum imap_parse
parser_literal_syntax(struct imap_parser *p, unsigned char c)
{
	if (p->state == PS_LIT_SIZE) {
		if (c >= '0' && c <= '9') {
			if (p->lit_digits == IMAP_PARSER_LITERAL_DIGITS)
				return parser_fail(p, "Literal size too large", c);
			p->lit_size = p->lit_size * 10 + (c - '0');
			p->lit_digits++;
			return IMAP_PARSE_MORE;
		}
		if (p->lit_digits == 0)
			return parser_fail(p, "Invalid literal size", c);
		if (c == '+') {
			p->lit_sync = 0;
			p->state = PS_LIT_PLUS;
			return IMAP_PARSE_MORE;
		}
		if (c == '}') {
			p->state = PS_LIT_EOL;
			return IMAP_PARSE_MORE;
		}
		return parser_fail(p, "Invalid literal size", c);
	}
	if (p->state == PS_LIT_PLUS) {
		if (c != '}')
			return parser_fail(p, "Invalid literal size", c);
		p->state = PS_LIT_EOL;
		return IMAP_PARSE_MORE;
	}
	if (p->state == PS_LIT_EOL && c == '\r') {
		p->state = PS_LIT_LF;
		return IMAP_PARSE_MORE;
	}
	if (c == '\n')
		return parser_literal_header(p);
	return parser_fail(p, "Missing end of line after literal size", c);
}

/* A skipped line's byte; 1 when the line (without a literal to skip) ended. */
static int
parser_skip_byte(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case '{':
		p->st = ST_DIGITS;
		p->st_size = 0;
		p->st_digits = 0;
		return 0;
	case '\n':
		if ((p->st == ST_CLOSE || p->st == ST_CR) && p->st_size > 0) {
			p->lit_left = p->st_size;
			p->st = ST_NONE;
			p->state = PS_SKIP_LITERAL;
			return 0;
		}
		p->st = ST_NONE;
		return 1;
	default:
		break;
	}
	if (p->st == ST_DIGITS && c >= '0' && c <= '9' &&
	    p->st_digits < IMAP_PARSER_LITERAL_DIGITS) {
		p->st_size = p->st_size * 10 + (c - '0');
		p->st_digits++;
	} else if (p->st == ST_DIGITS && c == '+' && p->st_digits > 0) {
		p->st = ST_PLUS;
	} else if (p->st == ST_PLUS && c == '}') {
		p->st = ST_CLOSE;
	} else if (p->st == ST_CLOSE && c == '\r') {
		p->st = ST_CR;
	} else {
		p->st = ST_NONE;
	}
	return 0;
}

/* A byte of the command line (not literal data). */
static enum imap_parse
parser_byte(struct imap_parser *p, unsigned char c)
{
	if (c != '\n' && c != '\r' && ++p->line_len > p->lim.max_line)
		return parser_fail(p, "Command line too long", c);
	if (c == '\n')
		p->line_len = 0;
	if (c == '\0' && p->state != PS_QUOTED && p->state != PS_QUOTED_ESC)
		return parser_fail(p, "NUL in command", c);

	switch (p->state) {
	case PS_TAG:
		/* the tag is the first string of buf */
		if (is_tag_char(c)) {
			buf_reserve(p, 1);
			p->buf[p->buflen++] = (char)c;
			return IMAP_PARSE_MORE;
		}
		if (p->buflen == 0)
			return parser_fail(p, c == '\r' || c == '\n' ? "Empty command line" :
					   "Invalid tag", c);
		if (c == ' ' || c == '\r' || c == '\n') {
			buf_nul(p);
			p->have_tag = 1;
			if (c != ' ')
				return parser_fail(p, "Missing command", c);
			p->state = PS_CMD_SP;
			return IMAP_PARSE_MORE;
		}
		p->buflen = 0;
		return parser_fail(p, "Invalid tag", c);
	case PS_CMD_SP:
		if (c == ' ')
			return IMAP_PARSE_MORE;
		if (c == '\r' || c == '\n')
			return parser_fail(p, "Missing command", c);
		if (!is_cmd_char(c))
			return parser_fail(p, "Invalid command name", c);
		p->cmd_off = p->buflen;
		p->state = PS_CMD;
		/* fall through */
	case PS_CMD:
		if (c == ' ' || c == '\r' || c == '\n') {
			buf_nul(p);
			p->have_cmd = 1;
			p->state = PS_ARGS;
			return parser_start_arg(p, c);
		}
		if (!is_cmd_char(c))
			return parser_fail(p, "Invalid command name", c);
		buf_reserve(p, 1);
		p->buf[p->buflen++] = (char)c;
		return IMAP_PARSE_MORE;
	case PS_ARGS:
		return parser_start_arg(p, c);
	case PS_AFTER:
		if (c == ' ' || c == '\r' || c == '\n' || c == ')') {
			p->state = PS_ARGS;
			return parser_start_arg(p, c);
		}
		return parser_fail(p, "Missing space between arguments", c);
	case PS_ATOM:
		return parser_atom(p, c);
	case PS_QUOTED:
	case PS_QUOTED_ESC:
		return parser_quoted(p, c);
	case PS_LIT_SIZE:
	case PS_LIT_PLUS:
	case PS_LIT_EOL:
	case PS_LIT_LF:
		return parser_literal_syntax(p, c);
	case PS_LF:
		if (c != '\n')
			return parser_fail(p, "CR without LF", c);
		return parser_eol(p);
	default:
		log_panic(NULL, "imap_parser: byte in state %d", (int)p->state);
	}
}

/* Literal data or skipped bytes, taken in bulk; returns the count used. */
static size_t
parser_bulk(struct imap_parser *p, const char *data, size_t len)
{
	size_t n = len;

	if (n > p->lit_left)
		n = (size_t)p->lit_left;
	if (p->state == PS_LIT_DATA) {
		struct pnode *node = &p->nodes[p->cur];

		buf_add(p, data, n);
		p->lit_left -= n;
		if (p->lit_left == 0) {
			node->len = p->buflen - node->off;
			buf_nul(p);
			p->state = PS_AFTER;
		}
	} else {
		p->lit_left -= n;
		if (p->lit_left == 0)
			p->state = PS_SKIP_LINE;
	}
	return n;
}

enum imap_parse
imap_parser_feed(struct imap_parser *p, const char *data, size_t len, size_t *consumed_r)
{
	size_t i = 0;

	if (p->finished)
		parser_clear(p);
	*consumed_r = 0;
	if (p->state == PS_LIT_PENDING)
		return IMAP_PARSE_LITERAL;
	if (p->state == PS_LIT_STREAM)
		log_panic(NULL, "imap_parser_feed while a literal is streamed");
	while (i < len) {
		enum imap_parse r;

		if (p->state == PS_LIT_DATA || p->state == PS_SKIP_LITERAL) {
			i += parser_bulk(p, data + i, len - i);
			continue;
		}
		if (p->state == PS_SKIP_LINE) {
			if (parser_skip_byte(p, (unsigned char)data[i++]))
				p->state = PS_TAG;
			continue;
		}
		r = parser_byte(p, (unsigned char)data[i++]);
		if (r != IMAP_PARSE_MORE) {
			*consumed_r = i;
			return r;
		}
	}
	*consumed_r = i;
	return IMAP_PARSE_MORE;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->have_tag ? p->buf : NULL;
}

const char *
imap_parser_command(const struct imap_parser *p)
{
	return p->have_cmd ? p->buf + p->cmd_off : NULL;
}

const struct imap_arg *
imap_parser_args(const struct imap_parser *p, size_t *n_r)
{
	*n_r = p->nout;
	return p->nout > 0 ? p->out : NULL;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error;
}

void
imap_parser_literal(const struct imap_parser *p, uint64_t *size_r, int *sync_r)
{
	*size_r = p->lit_size;
	*sync_r = p->lit_sync;
}

/* The pending literal becomes an argument. */
static void
literal_node(struct imap_parser *p)
{
	if (p->state != PS_LIT_PENDING)
		log_panic(NULL, "imap_parser: no literal is pending");
	/* the count was checked at its '{' */
	if (node_new(p, IMAP_ARG_LITERAL, &p->cur) < 0)
		log_panic(NULL, "imap_parser: literal over max_args");
	p->nodes[p->cur].len = (size_t)p->lit_size;
	p->nout = 0;
}

void
imap_parser_literal_accept(struct imap_parser *p)
{
	if (p->lit_size > p->lim.max_literal_buffered)
		log_panic(NULL, "imap_parser: literal of %llu bytes accepted over the limit",
			  (unsigned long long)p->lit_size);
	literal_node(p);
	p->nodes[p->cur].off = p->buflen;
	p->lit_left = p->lit_size;
	p->state = PS_LIT_DATA;
	if (p->lit_left == 0) {
		buf_nul(p);
		p->state = PS_AFTER;
	}
}

void
imap_parser_literal_stream(struct imap_parser *p)
{
	literal_node(p);
	p->state = PS_LIT_STREAM;
}

void
imap_parser_literal_streamed(struct imap_parser *p)
{
	if (p->state != PS_LIT_STREAM)
		log_panic(NULL, "imap_parser: no literal is streamed");
	p->state = PS_AFTER;
}

void
imap_parser_literal_reject(struct imap_parser *p)
{
	if (p->state != PS_LIT_PENDING)
		log_panic(NULL, "imap_parser: no literal is pending");
	p->finished = 1;
	p->st = ST_NONE;
	p->lit_left = p->lit_size;
	/* a synchronising literal's line ended at its header and no data
	 * comes; a "{N+}" literal's data and the rest of its line are skipped */
	p->state = p->lit_sync ? PS_TAG : PS_SKIP_LITERAL;
}

static int
arg_plain(const struct imap_arg *a, const char **s_r)
{
	if (a->str == NULL || strlen(a->str) != a->len)
		return 0;
	*s_r = a->str;
	return 1;
}

int
imap_arg_atom(const struct imap_arg *a, const char **s_r)
{
	return a->type == IMAP_ARG_ATOM && arg_plain(a, s_r);
}

int
imap_arg_string(const struct imap_arg *a, const char **s_r)
{
	return (a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL) && arg_plain(a, s_r);
}

int
imap_arg_astring(const struct imap_arg *a, const char **s_r)
{
	return imap_arg_atom(a, s_r) || imap_arg_string(a, s_r);
}

int
imap_arg_nstring(const struct imap_arg *a, const char **s_r)
{
	if (a->type == IMAP_ARG_NIL) {
		*s_r = NULL;
		return 1;
	}
	return imap_arg_string(a, s_r);
}

int
imap_arg_list(const struct imap_arg *a, const struct imap_arg **list_r, size_t *n_r)
{
	if (a->type != IMAP_ARG_LIST)
		return 0;
	*list_r = a->list;
	*n_r = a->nlist;
	return 1;
}
