/*
 * smtpd_cmd: the SMTP server's command table and one small handler per
 * command. State rules ("needs EHLO", "needs MAIL", "no argument") are flags
 * on the table rows, checked in one place. Public (module-internal):
 * smtpd_cmd_dispatch, plus the session helpers the handlers use.
 */
#ifndef TANDEM_SMTPD_CMD_H
#define TANDEM_SMTPD_CMD_H
#include <stddef.h>

struct smtpd_session;

void smtpd_cmd_dispatch(struct smtpd_session *s, const char *line, size_t len);
/* Refuse a command: its log line (event=reject) and the reply; counts
 * toward [smtp] max_errors. */
void smtpd_reject(struct smtpd_session *s, const char *cmd, const char *code, const char *text,
		  const char *detail);

/* from smtpd_session.c */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtpd_session_reset(struct smtpd_session *s);
void smtpd_session_begin_data(struct smtpd_session *s);
int smtpd_session_has_input(struct smtpd_session *s);
void smtpd_session_pause(struct smtpd_session *s);
int smtpd_session_resume(struct smtpd_session *s);
void smtpd_session_continue(struct smtpd_session *s);

#endif
