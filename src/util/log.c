/*
 * log: key=value event lines (see log.h). Each line is built in one buffer and
 * written with one write(2) so lines from worker threads never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static int log_fd = 2;
static int log_debug_on;
static int log_pid;   /* cached: one getpid(2) less per line */

int
log_init(const char *logfile)
{
	int fd, e;

	if (logfile == NULL || *logfile == '\0')
		return 0;
	if ((fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0)
		return -1;
	if (log_fd == 2) {
		log_fd = fd;
		return 0;
	}
	/* Called again (a reopen after logrotate): dup2 swaps the file under
	 * the same descriptor at once, so a thread writing a line meanwhile
	 * writes it whole to the old file or to the new one. */
	if (dup2(fd, log_fd) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void
log_set_debug(int on)
{
	log_debug_on = on;
}

static void __attribute__((format(printf, 3, 0)))
log_v(const char *level, const char *id, const char *fmt, va_list ap)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	int n, m;

	if (log_pid == 0)
		log_pid = (int)getpid();
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ tandem[%d]: %s%s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, log_pid, level, id ? id : "-");
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	while (write(log_fd, line, n) < 0 && errno == EINTR)
		;
}

#define LOG_FN(name, level, cond)                                      \
	void name(const char *id, const char *fmt, ...)                \
	{                                                              \
		va_list ap;                                            \
		if (!(cond))                                           \
			return;                                        \
		va_start(ap, fmt);                                     \
		log_v(level, id, fmt, ap);                             \
		va_end(ap);                                            \
	}

LOG_FN(log_msg, "", 1)
LOG_FN(log_warn, "warning: ", 1)
LOG_FN(log_err, "error: ", 1)
LOG_FN(log_debug, "debug: ", log_debug_on)

void
log_panic(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v("panic: ", id, fmt, ap);
	va_end(ap);
	abort();
}

static __thread char log_ring[8][512];
static __thread int log_slot;

const char *
log_q(const char *s)
{
	char *out = log_ring[log_slot++ & 7];
	size_t o = 0;

	if (s == NULL)
		s = "";
	out[o++] = '"';
	for (; *s != '\0' && o < 500; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = c;
		} else if (c < 0x20 || c == 0x7f) {
			o += snprintf(out + o, 8, "\\x%02x", c);
		} else {
			out[o++] = c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* A mail address as "<addr>"; one that could pass for more than one field
 * (spaces, quotes, '=', controls, as a quoted local part allows) is quoted
 * and escaped whole, so the line keeps exactly the fields we wrote. */
const char *
log_addr(const char *a)
{
	char *out;

	if (a == NULL)
		a = "";
	for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\\' || *p == '=' || *p == '>')
			goto quote;
	out = log_ring[log_slot++ & 7];
	snprintf(out, 512, "<%.500s>", a);
	return out;
quote:
	{
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "<%.500s>", a);
		return log_q(tmp);
	}
}
