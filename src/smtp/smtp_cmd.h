/*
 * smtp_cmd: the SMTP server's command table and one small handler per
 * command. State rules ("needs EHLO", "needs MAIL", "no argument") are flags
 * on the table rows, checked in one place. Public (module-internal):
 * smtp_cmd_dispatch, plus the session helpers the handlers use.
 */
#ifndef TANDEM_SMTP_CMD_H
#define TANDEM_SMTP_CMD_H
#include <stddef.h>

struct smtp_session;

void smtp_cmd_dispatch(struct smtp_session *s, const char *line, size_t len);

/* from smtp_session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtp_session_reset(struct smtp_session *s);
void smtp_session_begin_data(struct smtp_session *s);
int smtp_session_has_input(struct smtp_session *s);

#endif
