/*
 * queue: the on-disk queue under data_dir/queue/. States are directories:
 *   tmp/       a message being received (removed at start: never committed)
 *   active/    committed, waiting for (or in) a delivery attempt
 *   deferred/  a delivery attempt failed temporarily; meta/ says when next
 *   hold/      put aside by an admin (`tandem queue hold`), or a file the
 *              server may not read (permissions): `queue release` retries
 *   corrupt/   a queue file or meta file that cannot be parsed: never
 *              attempted again (its meta may be what says which recipients
 *              were served), only shown and deleted (`tandem queue delete`)
 *   meta/      mutable state of a message: attempts, next attempt, last
 *              error, each recipient's done flag and last result (written
 *              durably, replaced whole)
 * A message is committed once its file is renamed from tmp/ into active/
 * with both it and the directory fsync'd: only then does SMTP say 250.
 * Public: queue_open, queue_close, queue_new_id, queue_in_*, queue_path,
 * queue_find, queue_move, queue_remove, queue_meta_read, queue_meta_write,
 * queue_read_env, queue_scan, queue_clean_tmp, queue_state_name.
 */
#ifndef TANDEM_QUEUE_H
#define TANDEM_QUEUE_H
#include <stddef.h>

#include "queue/queue_env.h"

enum queue_state { Q_ACTIVE, Q_DEFERRED, Q_HOLD, Q_CORRUPT, Q_NSTATES };

struct queue;
struct queue_in;

struct queue *queue_open(const char *data_dir, char *err, size_t errlen);
void queue_close(struct queue **qp);
const char *queue_dir(struct queue *q);
void queue_new_id(char out[QUEUE_ID_LEN + 1]);
const char *queue_state_name(enum queue_state st);
int queue_state_parse(const char *name, enum queue_state *st_r);

/* Incoming message: creates tmp/QID (env->qid is filled in) and writes the
 * envelope. NULL on error with errno set. */
struct queue_in *queue_in_create(struct queue *q, struct queue_env *env);
/* Append message bytes. After the first error every later call fails
 * too and queue_in_error() returns the errno. */
int queue_in_write(struct queue_in *in, const void *buf, size_t len);
int queue_in_error(struct queue_in *in);
long long queue_in_size(struct queue_in *in);
/* fsync, rename into active/, fsync the directory. Blocking: run it on
 * a worker. 0 committed, -1 not (errno set; the file is removed). */
int queue_in_commit(struct queue_in *in);
/* Remove the partial file (if not committed) and free. */
void queue_in_free(struct queue_in **inp);
const char *queue_in_qid(struct queue_in *in);

void queue_path(struct queue *q, enum queue_state st, const char *qid, char *buf, size_t len);
/* Which state directory holds qid: 0 found (*st_r), -1 not queued
 * (errno ENOENT) or the directory could not be looked at (other errno). */
int queue_find(struct queue *q, const char *qid, enum queue_state *st_r);
/* 0 moved; -1 not (errno; ENOENT: qid is not in from, e.g. an admin
 * moved or deleted it meanwhile). */
int queue_move(struct queue *q, const char *qid, enum queue_state from, enum queue_state to);
/* Delete the message and its meta: 0 the message is gone (a meta file
 * that could not be removed is only an orphan), -1 it is still there. */
int queue_remove(struct queue *q, const char *qid, enum queue_state st);
/* 0 read, 1 no meta yet (m zeroed), -1 error: errno EINVAL when the file
 * exists but cannot be parsed (corrupt), else the read's errno. */
int queue_meta_read(struct queue *q, const char *qid, struct queue_meta *m);
int queue_meta_write(struct queue *q, const char *qid, const struct queue_meta *m);
/* Open the message file and parse its envelope. Returns the open fd (the
 * caller closes it) or -1 (errno; EINVAL for a malformed file). */
int queue_read_env(struct queue *q, enum queue_state st, const char *qid, struct queue_env *env,
		   size_t *body_off_r);
/* fn for each message in state st, in name (= arrival) order. */
int queue_scan(struct queue *q, enum queue_state st, void (*fn)(const char *qid, void *arg),
	       void *arg);
/* Remove every partial in tmp/. Returns how many. */
int queue_clean_tmp(struct queue *q);
int queue_valid_id(const char *qid);

#endif
