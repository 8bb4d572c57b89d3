/*
 * plexusd's entry point: command-line options, start-up in a fixed order
 * (settings, logger, pidfile, store, loader, console, modules), the main
 * loop that turns signals and console requests into reloads and stops, and
 * the orderly shutdown in reverse. When it detaches (no -f), the parent
 * waits for the daemon to report that start-up worked, so a failure is
 * still printed on the terminal and reflected in the exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <plexus/core.h>
#include <plexus/log.h>
#include <plexus/store.h>

#include "allocator.h"
#include "channel_commands.h"
#include "func_internal.h"
#include "channel_internal.h"
#include "cli_internal.h"
#include "console_roles.h"
#include "console_server.h"
#include "daemon.h"
#include "event_internal.h"
#include "loader.h"
#include "log_internal.h"
#include "media_internal.h"
#include "settings.h"
#include "thread_internal.h"

enum { EXIT_START_FAILED = 1, EXIT_REQUIRED_MODULE = 2 };

struct options {
	bool foreground;
	const char *config_dir;
	const char *main_config;
	int verbose;
	int debug;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: plexusd [-f] [-c DIR] [-C FILE] [-v...] [-d...]\n"
		"  -f        stay in the foreground, logging to stderr\n"
		"  -c DIR    configuration directory (default %s)\n"
		"  -C FILE   main configuration file (default DIR/plexus.conf)\n"
		"  -v        more verbose (repeatable)\n"
		"  -d        more debug output (repeatable)\n"
		"  -h        this help\n"
		"  -V        print the version and exit\n",
		PX_SYSCONFDIR);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->config_dir = PX_SYSCONFDIR;
	while ((c = getopt(argc, argv, "fc:C:vdhV")) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'c':
			o->config_dir = optarg;
			break;
		case 'C':
			o->main_config = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'd':
			o->debug++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("plexusd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "plexusd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Write end of the pipe to the waiting parent, while detaching. */
static int startup_pipe = -1;

static void report_startup(int status, const char *msg)
{
	if (startup_pipe < 0)
		return;
	unsigned char st = (unsigned char)status;
	if (write(startup_pipe, &st, 1) != 1 ||
	    (msg && write(startup_pipe, msg, strlen(msg)) < 0)) {
		/* The parent is gone; nobody to tell. */
	}
	close(startup_pipe);
	startup_pipe = -1;
}

static void detach(void)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "plexusd: pipe: %s\n", strerror(errno));
		exit(EXIT_START_FAILED);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "plexusd: fork: %s\n", strerror(errno));
		exit(EXIT_START_FAILED);
	}
	if (pid > 0) {
		unsigned char st = EXIT_START_FAILED;
		char msg[1024];
		ssize_t n;
		close(fds[1]);
		if (read(fds[0], &st, 1) != 1) {
			fprintf(stderr, "plexusd: the daemon died during start-up\n");
			_exit(EXIT_START_FAILED);
		}
		n = read(fds[0], msg, sizeof(msg) - 1);
		if (n > 0) {
			msg[n] = '\0';
			fprintf(stderr, "plexusd: %s\n", msg);
		}
		_exit(st);
	}
	close(fds[0]);
	startup_pipe = fds[1];
	setsid();
	if (chdir("/") < 0) {
		/* "/" always exists; nothing sensible to do otherwise. */
	}
	umask(022);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/* Why start-up failed, told to a waiting parent only once everything taken
 * (pidfile, socket, store) has been given back: a parent that returns at
 * once must find nothing left behind. */
static char failure_msg[PX_ERR_MAX + 128];

/* Fail start-up: log, keep the message for the parent, give the exit status. */
static int start_failed(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int start_failed(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(failure_msg, sizeof(failure_msg), fmt, ap);
	va_end(ap);
	px_log_error("%s", failure_msg);
	return status;
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	size_t len = strlen(dir);

	if (len >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int pidfile_fd = -1;

static int pidfile_take(const char *path, px_err *err)
{
	char *dir = strdup(path), *slash;
	char buf[32];
	int n;

	if (dir && (slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		mkdir_p(dir);
	}
	free(dir);
	pidfile_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pidfile_fd < 0)
		return px_err_set(err, "cannot open pidfile %s: %s", path, strerror(errno));
	if (flock(pidfile_fd, LOCK_EX | LOCK_NB) < 0) {
		n = (int)read(pidfile_fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(pidfile_fd);
		pidfile_fd = -1;
		return px_err_set(err, "another plexusd (pid %s) holds the pidfile %s",
				  buf[0] ? buf : "?", path);
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(pidfile_fd, 0) < 0 || pwrite(pidfile_fd, buf, (size_t)n, 0) != n)
		return px_err_set(err, "cannot write pidfile %s: %s", path, strerror(errno));
	return 0;
}

static void pidfile_release(const char *path)
{
	if (pidfile_fd < 0)
		return;
	unlink(path);
	close(pidfile_fd);
	pidfile_fd = -1;
}

/* The heap is busy while there are calls, or were in the last
 * HEAP_BUSY_SECS (see heap_prefault.c): under a load of short calls there
 * are moments with none, and what jemalloc purges then was freed by the
 * calls of the seconds before (its decay is 10 s). */
#define HEAP_BUSY_SECS 10
static bool has_calls(void)
{
	return px_channel_recent(HEAP_BUSY_SECS);
}

/* Calls end before their modules go: every channel is hung up and the
 * sessions get a few seconds to run their hangup handling. */
static void hang_up_everything(void)
{
	size_t n = px_channel_count();

	if (!n)
		return;
	px_log_notice("Hanging up %zu channel%s", n, n == 1 ? "" : "s");
	px_channel_hangup_all(PX_CAUSE_NORMAL_CLEARING);
	for (int waited = 0;
	     waited < 500 && (px_channel_sessions_running() > 0 || px_channel_count() > 0);
	     waited++)
		usleep(10000);
	if (px_channel_count() > 0)
		px_log_warning("%zu channels still exist after hanging up", px_channel_count());
}

/* Wait for signals and requests; returns when a stop was asked for. */
static void main_loop(int sigfd)
{
	for (;;) {
		struct pollfd pfd[2] = {{.fd = sigfd, .events = POLLIN},
					{.fd = px_daemon_request_fd(), .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			px_log_error("poll: %s", strerror(errno));
			return;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					px_err err = {""};
					px_log_notice("SIGHUP received: reloading");
					px_core_reload(&err);
				} else {
					px_log_notice("Signal %d (%s) received: stopping",
						      (int)si.ssi_signo,
						      strsignal((int)si.ssi_signo));
					return;
				}
			}
		}
		if (pfd[1].revents & POLLIN) {
			switch (px_daemon_take_request()) {
			case PX_REQ_STOP_NOW:
			case PX_REQ_STOP_GRACEFULLY:
				/* Nothing holds calls yet: a graceful stop has no work to
				 * wait for, and stops like "now". */
				return;
			case PX_REQ_RELOAD: {
				px_err err = {""};
				px_core_reload(&err);
				break;
			}
			case PX_REQ_NONE:
				break;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct options opt;
	struct px_settings settings;
	char config_dir[PATH_MAX], main_config[PATH_MAX], path[PATH_MAX + 32];
	px_err err = {""};
	px_store *store = NULL;
	px_config *modules_conf = NULL, *rtp_conf = NULL;

	int rc;
	sigset_t sigs;
	int sigfd = -1, status = 0;
	char *pidfile = NULL;

	if (parse_options(argc, argv, &opt) < 0)
		return EXIT_START_FAILED;
	/* Paths are made absolute now: a detached daemon runs from "/". */
	if (!realpath(opt.config_dir, config_dir)) {
		fprintf(stderr, "plexusd: configuration directory %s: %s\n", opt.config_dir,
			strerror(errno));
		return EXIT_START_FAILED;
	}
	snprintf(path, sizeof(path), "%s/plexus.conf", config_dir);
	if (!realpath(opt.main_config ? opt.main_config : path, main_config)) {
		fprintf(stderr, "plexusd: %s: %s\n", opt.main_config ? opt.main_config : path,
			strerror(errno));
		return EXIT_START_FAILED;
	}

	px_log_init();
	if (px_settings_load(main_config, &settings, &err) < 0) {
		fprintf(stderr, "plexusd: %s\n", err.msg);
		return EXIT_START_FAILED;
	}
	px_daemon_init(config_dir, main_config);
	px_log_set_levels((int)settings.verbose + opt.verbose, (int)settings.debug + opt.debug);
	if (px_console_probe(settings.socket)) {
		fprintf(stderr, "plexusd: another plexusd is already running on %s\n",
			settings.socket);
		px_settings_free(&settings);
		px_daemon_shutdown();
		return EXIT_START_FAILED;
	}
	if (!opt.foreground)
		detach();
	settings.log.to_stderr = opt.foreground;
	if (px_log_configure(&settings.log, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		px_settings_free(&settings);
		goto out_daemon;
	}
	pidfile = strdup(settings.pidfile);
	px_daemon_set_settings(&settings);
	const struct px_settings *s = px_daemon_settings();

	/* Signals are taken by the main loop only: block them before any
	 * thread starts, so every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	px_thread_register_self("main");
	px_thread_set_call_nice(s->call_nice);
	px_heap_prefault_start(&(struct px_heap_prefault_opts){.busy = has_calls});

	px_log_notice("Plexus %s starting (pid %d, config %s)", px_version(), (int)getpid(),
		      main_config);
	if (pidfile_take(pidfile, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_log;
	}
	if (mkdir_p(s->state_dir) < 0) {
		status = start_failed(EXIT_START_FAILED, "cannot create state directory %s: %s",
				      s->state_dir, strerror(errno));
		goto out_pid;
	}
	if (px_store_open(s->database, &store, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "store: %s", err.msg);
		goto out_pid;
	}
	px_store_set_default(store);
	snprintf(path, sizeof(path), "%s/rtp.conf", config_dir);
	if (access(path, F_OK) == 0 && px_config_load(path, &rtp_conf, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_store;
	}
	rc = px_media_init(rtp_conf, &err);
	px_config_unref(rtp_conf);
	if (rc < 0) {
		status = start_failed(EXIT_START_FAILED, "media: %s", err.msg);
		goto out_store;
	}
	if (px_daemon_configure_sounds(&err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_media;
	}
	if (px_loader_init(s->module_dir, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_media;
	}
	if (px_core_commands_register(&err) < 0 || px_channel_commands_register(&err) < 0 ||
	    px_func_builtin_register(&err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_loader;
	}
	snprintf(path, sizeof(path), "%s/modules.conf", config_dir);
	if (access(path, F_OK) != 0) {
		px_log_notice("No %s: loading every module in %s", path, s->module_dir);
	} else if (px_config_load(path, &modules_conf, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_loader;
	}
	rc = px_loader_load_all(modules_conf, &err);
	px_config_unref(modules_conf);
	if (rc < 0) {
		status = start_failed(EXIT_REQUIRED_MODULE, "%s; stopping", err.msg);
		goto out_modules;
	}
	/* The console opens last: a console that answers means a daemon that
	 * is ready, with every module loaded. */
	struct px_console_listen listen = {.path = s->socket,
					   .mode = s->socket_mode,
					   .owner = s->socket_owner,
					   .group = s->socket_group};
	if (px_console_roles_load(&err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_modules;
	}
	if (px_console_server_start(&listen, &err) < 0) {
		status = start_failed(EXIT_START_FAILED, "%s", err.msg);
		goto out_modules;
	}

	px_log_notice("Plexus ready (pid %d, console %s)", (int)getpid(), s->socket);
	report_startup(0, NULL);
	main_loop(sigfd);
	px_log_notice("Plexus stopping");

	px_console_server_stop("Plexus is shutting down");
out_modules:
	px_console_roles_shutdown();
	hang_up_everything();
	px_channel_sessions_shutdown();
out_loader:
	px_loader_shutdown();
	px_func_builtin_unregister();
	px_channel_commands_unregister();
	px_core_commands_unregister();
	px_cli_registry_shutdown();
out_media:
	px_media_shutdown();
out_store:
	px_store_set_default(NULL);
	px_store_close(store);
out_pid:
	pidfile_release(pidfile);
out_log:
	if (!status)
		px_log_notice("Plexus stopped");
	px_heap_prefault_stop();
	px_thread_unregister_self();
	px_thread_registry_shutdown();
	px_event_pool_drain();
	px_log_shutdown();
	if (sigfd >= 0)
		close(sigfd);
out_daemon:
	free(pidfile);
	px_daemon_shutdown();
	if (status)
		report_startup(status, failure_msg);
	return status;
}
