/*
 * store_mime: what the index keeps of a message so IMAP never opens the
 * file for it (RFC 3501 §7.4.2): ENVELOPE, BODY and BODYSTRUCTURE in IMAP
 * syntax, the raw header block, RFC822.SIZE, and a plain-text preview; and,
 * for FETCH BODY[section], where a MIME part lies in the file. Parsing is
 * GMime's, within fixed bounds so a MIME bomb (deep nesting, 100,000 parts,
 * huge headers) costs bounded time and memory: past STORE_MIME_MAX_DEPTH
 * levels or STORE_MIME_MAX_PARTS parts the rest of a multipart is
 * summarised as one opaque part, and header fields beyond
 * STORE_MIME_MAX_HEADER bytes are not parsed.
 * Input is the message as stored: LF line ends (CRLF is accepted too);
 * sizes and offsets reported are in CRLF octets (what IMAP counts) unless
 * named _lf.
 * Public: store_mime_summarize, store_mime_summary_free, store_mime_section.
 */
#ifndef TANDEM_STORE_MIME_H
#define TANDEM_STORE_MIME_H
#include <stddef.h>

#define STORE_MIME_MAX_DEPTH 32
#define STORE_MIME_MAX_PARTS 1000
#define STORE_MIME_MAX_HEADER (256 * 1024)
/* Header blocks up to this are kept in the index whole. */
#define STORE_MIME_KEEP_HEADER (16 * 1024)

struct store_mime_summary {
	char *envelope;          /* "(date subject from sender reply-to to cc bcc in-reply-to message-id)" */
	char *body;              /* BODY (no extension data) */
	char *bodystructure;     /* BODYSTRUCTURE (with extension data) */
	char *header;            /* header block incl. the blank line, CRLF; NULL when
				  * longer than STORE_MIME_KEEP_HEADER */
	size_t header_len;       /* its length in CRLF octets (always set) */
	long long size;          /* RFC822.SIZE: the whole message in CRLF octets */
	long long date;          /* the Date: field as unix time, 0 when absent or bad */
	char *message_id;        /* "<...>" or NULL */
	char *preview;           /* up to 200 characters of the first text part, UTF-8 */
	int has_attachment;      /* a part with Content-Disposition attachment or a name */
	int truncated;           /* a bound was hit: the structure is simplified */
};

/* Summarise data (len bytes). 0, or -1 with *error_r (only when nothing at
 * all can be said, e.g. out of memory; a malformed message still gets a
 * summary, as IMAP servers must serve whatever arrived). */
int store_mime_summarize(const char *data, size_t len, struct store_mime_summary *sum_r,
			 const char **error_r);
void store_mime_summary_free(struct store_mime_summary *sum);

/* Where section (IMAP section-spec without the brackets: "", "1", "1.2",
 * "2.HEADER", "1.MIME", "TEXT", "3.TEXT", "HEADER.FIELDS (...)" is not
 * asked here: the caller filters a HEADER itself) lies in data: *off_r and
 * *len_r in bytes of data as given (LF). 0 found; 1 no such part (IMAP
 * returns an empty string); -1 malformed section spec. */
int store_mime_section(const char *data, size_t len, const char *section, size_t *off_r,
		       size_t *len_r);

#endif
