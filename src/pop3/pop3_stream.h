/*
 * pop3_stream: a message file as POP3 sends it (RFC 1939 §3): the stored
 * LF line ends become CRLF (a CRLF already there stays as it is), a line
 * beginning with '.' gets one more '.', and the response ends with
 * ".\r\n" on a line of its own. For TOP the stream stops after the header,
 * the blank line and n lines of the body. Pure: the caller reads the file
 * in chunks and writes what comes out, so a 50 MB message never sits in
 * memory whole.
 * Public: pop3_stream_init, pop3_stream_feed, pop3_stream_end.
 */
#ifndef TANDEM_POP3_STREAM_H
#define TANDEM_POP3_STREAM_H
#include <stddef.h>

struct pop3_stream {
	long body_lines;          /* TOP's n still to send; -1: the whole message */
	size_t line_len;          /* bytes of the current line, CR excluded */
	unsigned bol : 1;         /* at the beginning of a line */
	unsigned cr : 1;          /* the last byte was a CR */
	unsigned in_body : 1;     /* past the blank line after the header */
	unsigned done : 1;        /* TOP: nothing more wanted from the file */
};

/* body_lines: -1 for RETR, n for TOP msg n. */
void pop3_stream_init(struct pop3_stream *st, long body_lines);
/* Converts in[0..len) into out, which has room for 2 * len bytes; returns
 * how many input bytes it took (fewer than len only once st->done).
 * *out_len_r: bytes written. */
size_t pop3_stream_feed(struct pop3_stream *st, const char *in, size_t len, char *out,
			size_t *out_len_r);
/* The end of the response: CRLF when the last line had none, then
 * ".\r\n". out has room for 5 bytes; returns the bytes written. */
size_t pop3_stream_end(const struct pop3_stream *st, char *out);

#endif
