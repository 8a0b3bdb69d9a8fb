/*
 * test_pidfile: the pid file is believed only for the process that holds
 * its lock, a link or odd file at its name is never opened, and the
 * durable *_at helpers never follow a link planted in the directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/pidfile.h"

static char dir[64], path[128], victim[128];

static void
write_file(const char *p, const char *text)
{
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static int
file_is(const char *p, const char *text)
{
	char buf[256] = { 0 };
	FILE *fp = fopen(p, "r");
	size_t n;

	if (fp == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	return n == strlen(text) && memcmp(buf, text, n) == 0;
}

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/tandem-test-pidfile-XXXXXX");
	assert_non_null(mkdtemp(dir));
	pidfile_path(dir, path, sizeof(path));
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	write_file(victim, "precious\n");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_link_and_odd_files_refused(void **state)
{
	assert_int_equal(symlink(victim, path), 0);
	assert_int_equal(pidfile_create(path), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(pidfile_running(path), 0);
	assert_true(file_is(victim, "precious\n"));
	unlink(path);

	/* A hard link would let ftruncate reach the other name's file. */
	assert_int_equal(link(victim, path), 0);
	assert_int_equal(pidfile_create(path), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(file_is(victim, "precious\n"));
	unlink(path);

	/* A FIFO must neither hang the open nor be used. */
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(pidfile_create(path), -1);
	assert_int_equal(pidfile_running(path), 0);
	unlink(path);
}

/* A child that locks path as a server would (or, with fake_pid, as an
 * impostor who writes another pid), names itself tandem, reports each
 * signal on a pipe and exits when its stdin pipe closes. */
struct child {
	pid_t pid;
	int ctl, report;
};

static void
child_start(struct child *c, pid_t fake_pid)
{
	int ctl[2], rep[2];
	char ok;

	assert_int_equal(pipe(ctl), 0);
	assert_int_equal(pipe(rep), 0);
	if ((c->pid = fork()) == 0) {
		sigset_t set;
		int fd, sig;
		char b;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		prctl(PR_SET_NAME, "tandem");
		close(ctl[1]);
		close(rep[0]);
		if ((fd = pidfile_create(path)) < 0)
			_exit(1);
		if (fake_pid > 0) {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "%d\n", (int)fake_pid);

			if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != n)
				_exit(1);
		}
		b = 'R';
		if (write(rep[1], &b, 1) != 1)
			_exit(1);
		/* SIGUSR1 arrives as 'S'; EOF on ctl ends the child. */
		sig = signalfd(-1, &set, 0);
		for (;;) {
			struct pollfd pfd[2] = { { sig, POLLIN, 0 }, { ctl[0], POLLIN, 0 } };
			struct signalfd_siginfo si;

			if (poll(pfd, 2, -1) < 0)
				_exit(1);
			if (pfd[0].revents && read(sig, &si, sizeof(si)) == sizeof(si)) {
				b = 'S';
				if (write(rep[1], &b, 1) != 1)
					_exit(1);
			}
			if (pfd[1].revents && read(ctl[0], &b, 1) <= 0)
				_exit(0);
		}
	}
	assert_true(c->pid > 0);
	close(ctl[0]);
	close(rep[1]);
	c->ctl = ctl[1];
	c->report = rep[0];
	assert_int_equal(read(c->report, &ok, 1), 1);
	assert_int_equal(ok, 'R');
}

/* Ends the child; returns how many signals it reported. */
static int
child_stop(struct child *c)
{
	char b;
	int n = 0, status;

	close(c->ctl);
	while (read(c->report, &b, 1) == 1)
		n += b == 'S';
	close(c->report);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return n;
}

static void
test_running_server_is_found_and_signalled(void **state)
{
	struct child c;
	const char *error = NULL;

	assert_int_equal(pidfile_signal(dir, SIGUSR1, NULL, &error), 0);
	child_start(&c, 0);
	assert_int_equal(pidfile_running(path), c.pid);
	/* A second server is kept out. */
	assert_int_equal(pidfile_create(path), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(pidfile_signal(dir, SIGUSR1, NULL, &error), 1);
	assert_int_equal(child_stop(&c), 1);
	/* Its locks went with it. */
	assert_int_equal(pidfile_running(path), 0);
	assert_int_equal(pidfile_signal(dir, SIGUSR1, NULL, &error), 0);
}

static void
test_pid_of_another_process_is_not_believed(void **state)
{
	struct child c;
	const char *error = NULL;
	pid_t victim_pid = fork();

	if (victim_pid == 0) {
		pause();
		_exit(0);
	}
	/* The lock holder wrote someone else's pid: nobody is signalled. */
	child_start(&c, victim_pid);
	assert_int_equal(pidfile_running(path), 0);
	assert_int_equal(pidfile_signal(dir, SIGUSR2, NULL, &error), 0);
	assert_int_equal(child_stop(&c), 0);
	assert_int_equal(kill(victim_pid, 0), 0);
	kill(victim_pid, SIGKILL);
	waitpid(victim_pid, NULL, 0);

	/* A stale file with our pid and nobody holding its lock: the same. */
	write_file(path, "1\n");
	assert_int_equal(pidfile_running(path), 0);
	assert_int_equal(pidfile_signal(dir, SIGUSR2, NULL, &error), 0);
}

static void
test_durable_at_never_follows_links(void **state)
{
	char name[160];
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int fd;

	assert_true(dfd >= 0);
	/* createat removes a planted link instead of writing through it. */
	assert_int_equal(symlinkat(victim, dfd, "x.tmp"), 0);
	fd = durable_createat(dfd, "x.tmp", 0600);
	assert_true(fd >= 0);
	assert_int_equal(durable_write_all(fd, "new\n", 4), 0);
	close(fd);
	assert_true(file_is(victim, "precious\n"));
	assert_int_equal(durable_renameat(dfd, "x.tmp", "x"), 0);
	snprintf(name, sizeof(name), "%s/x", dir);
	assert_true(file_is(name, "new\n"));

	/* openat_dir: a link to a directory is refused, a missing one made. */
	assert_int_equal(symlinkat("/", dfd, "sub"), 0);
	assert_int_equal(durable_openat_dir(dfd, "sub", 0700), -1);
	assert_true(errno == ELOOP || errno == ENOTDIR);
	fd = durable_openat_dir(dfd, "made", 0700);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(durable_openat_dir(dfd, "absent", 0), -1);
	assert_int_equal(errno, ENOENT);
	close(dfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link_and_odd_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_server_is_found_and_signalled, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pid_of_another_process_is_not_believed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_durable_at_never_follows_links, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
