/*
 * imap_parser: a push parser of IMAP commands (RFC 3501 §9 syntax) over the
 * raw input bytes, fed in pieces of any size (a byte at a time gives the
 * same result as the whole command). It yields a command as its tag, its
 * name and a tree of arguments: atoms, quoted strings, literals, NIL and
 * parenthesised lists.
 *
 * An atom that contains '[' extends to the matching ']', spaces and
 * parentheses included, so FETCH's BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>
 * is one atom. Literals: "{N}" (synchronising: the parser stops with
 * IMAP_PARSE_LITERAL and the session decides: accept, so it sends "+ ...",
 * or reject before any continuation), "{N+}" (LITERAL+, RFC 7888; also
 * stops, the data follows at once). An accepted literal is kept by the
 * parser (up to limits.max_literal_buffered) or streamed: the session
 * reads the N bytes itself (an APPENDed message going to the store) and
 * then calls imap_parser_literal_streamed. Nothing of the declared size is
 * allocated before the bytes arrive.
 *
 * Bounded: a line (outside literals) longer than max_line, more than
 * max_args arguments in all, lists nested deeper than max_depth, a NUL
 * anywhere outside a literal (CVE-2019-11500), 8-bit bytes in an atom, bad
 * quoting: each is IMAP_PARSE_ERROR with a message for a tagged BAD, and
 * the parser skips the rest of that command (through the end of its line,
 * and through the data of a "{N+}" literal at its end) before it parses
 * the next one.
 * Public: imap_parser_new, imap_parser_free, imap_parser_feed,
 * imap_parser_tag, imap_parser_command, imap_parser_args,
 * imap_parser_error, imap_parser_literal, imap_parser_literal_accept,
 * imap_parser_literal_stream, imap_parser_literal_streamed,
 * imap_parser_literal_reject, imap_parser_reset, imap_arg_* accessors.
 */
#ifndef TANDEM_IMAP_PARSER_H
#define TANDEM_IMAP_PARSER_H
#include <stddef.h>
#include <stdint.h>

struct imap_parser;

struct imap_parser_limits {
	size_t max_line;              /* bytes of one line outside literals (e.g. 65536) */
	size_t max_args;              /* arguments of one command, all levels (e.g. 10000) */
	unsigned max_depth;           /* list nesting (e.g. 32) */
	size_t max_literal_buffered;  /* a literal the parser keeps itself (e.g. 1 MiB) */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,      /* str NULL when it was streamed; len its size */
	IMAP_ARG_NIL,          /* the atom NIL (case-insensitive) */
	IMAP_ARG_LIST          /* "(...)": list, nlist */
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;       /* NUL-terminated copy (literals may hold NULs: use len) */
	size_t len;
	const struct imap_arg *list;
	size_t nlist;
};

enum imap_parse {
	IMAP_PARSE_MORE,       /* all input taken; feed more */
	IMAP_PARSE_COMMAND,    /* a complete command: tag, command, args */
	IMAP_PARSE_LITERAL,    /* a literal header: imap_parser_literal, then decide */
	IMAP_PARSE_ERROR       /* imap_parser_error; tag when one was read (else NULL) */
};

struct imap_parser *imap_parser_new(const struct imap_parser_limits *lim);
void imap_parser_free(struct imap_parser **pp);

/* Parse from data; *consumed_r: bytes taken (the session drains them).
 * After IMAP_PARSE_COMMAND consumed ends right after the command's CRLF
 * (or LF), so lines that follow (AUTHENTICATE answers, IDLE's DONE) can be
 * read by the session directly. After COMMAND or ERROR the next feed starts
 * a new command (the results stay valid until then). */
enum imap_parse imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
				 size_t *consumed_r);
const char *imap_parser_tag(const struct imap_parser *p);       /* NULL before it is read */
const char *imap_parser_command(const struct imap_parser *p);   /* as sent (compare ci) */
const struct imap_arg *imap_parser_args(const struct imap_parser *p, size_t *n_r);
const char *imap_parser_error(const struct imap_parser *p);
/* The pending literal: its size, whether it is synchronising, and the
 * arguments read so far in the command (so APPEND can tell its message
 * literal, and check the folder, before accepting). */
void imap_parser_literal(const struct imap_parser *p, uint64_t *size_r, int *sync_r);
/* Accept: the parser reads and keeps the data (size <= max_literal_buffered). */
void imap_parser_literal_accept(struct imap_parser *p);
/* Stream: the session reads the size bytes itself from its input, then
 * calls imap_parser_literal_streamed and feeds the rest. */
void imap_parser_literal_stream(struct imap_parser *p);
void imap_parser_literal_streamed(struct imap_parser *p);
/* Refuse a synchronising literal (no data will come): the command ends as
 * IMAP_PARSE_ERROR-free "rejected" state; the next feed starts afresh
 * (the rest of the line, if any, is skipped). For a "{N+}" literal the N
 * bytes are skipped without being kept. */
void imap_parser_literal_reject(struct imap_parser *p);
/* Forget the command in progress (after STARTTLS the input is dropped). */
void imap_parser_reset(struct imap_parser *p);

/* Accessors for command handlers: 1 when the argument has that form,
 * filling *s_r (NUL-terminated; a string with a NUL in it is refused). */
int imap_arg_atom(const struct imap_arg *a, const char **s_r);
int imap_arg_string(const struct imap_arg *a, const char **s_r);    /* quoted or literal */
int imap_arg_astring(const struct imap_arg *a, const char **s_r);   /* atom or string */
int imap_arg_nstring(const struct imap_arg *a, const char **s_r);   /* NIL: *s_r NULL */
int imap_arg_list(const struct imap_arg *a, const struct imap_arg **list_r, size_t *n_r);

#endif
