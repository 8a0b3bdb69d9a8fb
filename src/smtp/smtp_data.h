/*
 * smtp_data: the DATA stream filter. Finds the one true end of data
 * (CR LF "." CR LF), removes dot-stuffing, and flags what must not pass:
 * a bare CR or bare LF anywhere (the SMTP smuggling vectors: "\n.\n",
 * "\r.\r", "\r\n.\r\r\n"... none of them ends the data, and a message
 * containing one is refused), lines over 1000 octets, a message over the
 * size limit. Counts Received: headers for loop detection and keeps the
 * first Message-ID: value (for the log; folded values are joined). For
 * submission it also notes whether Date: and Message-ID: are there, keeps
 * the first From: value (unfolded) and counts From: fields, and with
 * stop_at_body returns right after the blank line that ends the header
 * section (at_body), so the caller can add fields in front of it. Pure: no
 * I/O, fed any split of the input it gives the same result.
 * Public: smtp_data_init, smtp_data_feed.
 */
#ifndef TANDEM_SMTP_DATA_H
#define TANDEM_SMTP_DATA_H
#include <stddef.h>

#define SMTP_DATA_LINE_MAX 1000      /* octets including CRLF, RFC 5321 4.5.3.1.6 */

enum smtp_data_err {
	SMTP_DATA_EBARE = 1,         /* bare CR or LF */
	SMTP_DATA_ELONG = 2,         /* a line over 1000 octets */
	SMTP_DATA_ESIZE = 4,         /* over the size limit */
	SMTP_DATA_EHDR = 8           /* header section over 1 MiB */
};

struct smtp_data {
	int state;
	int errors;                  /* enum smtp_data_err bits */
	int in_headers;
	int received;                /* Received: header lines seen */
	int eightbit;                /* any octet >= 0x80 */
	size_t line_len;
	long long size, max_size;
	char lbuf[11];               /* first octets of the line: "Received:", "Message-ID:" */
	int in_msgid;                /* 1: in the first Message-ID: line, 2: just after it */
	int msgid_done;
	char msgid[256];             /* its value, whitespace-trimmed, for the log */
	size_t msgid_len;
	int saw_msgid, saw_date;     /* a Message-ID: / Date: field is there */
	int nfrom;                   /* From: fields */
	int in_from, from_done, from_over;
	char from[2048];             /* the first From: value, unfolded (from_over: longer) */
	size_t from_len;
	int stop_at_body;            /* set by the caller: stop after the header section */
	int at_body;                 /* the last feed stopped there (the next feed clears it) */
};

void smtp_data_init(struct smtp_data *d, long long max_size);
/* Feed len bytes. Unstuffed message bytes go to out (room for len bytes),
 * their count to *outlen. Returns the bytes consumed: fewer than len only
 * when the end of data was found (then *done = 1, and the rest of the input
 * belongs to the next command). */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len, char *out, size_t *outlen,
		      int *done);

#endif
