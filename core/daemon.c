/*
 * The daemon's shared state: version, configuration paths, running
 * settings, start and reload times, and the requests (stop, reload) that
 * any thread can make and the main thread carries out. px_core_reload is
 * the one reload path, used by SIGHUP and by "core reload".
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <plexus/event.h>
#include <plexus/log.h>
#include <plexus/sound.h>

#include "console_roles.h"
#include "console_server.h"
#include "daemon.h"
#include "loader.h"
#include "thread_internal.h"

static char *config_dir;
static char *main_config;
static struct px_settings settings;
static pthread_mutex_t daemon_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t start_time, reload_time;
static int request_fd = -1;
static atomic_int pending; /* bit per enum px_daemon_request */
static atomic_bool stopping;

const char *px_version(void)
{
	return PACKAGE_VERSION;
}

void px_daemon_init(const char *dir, const char *main)
{
	free(config_dir);
	free(main_config);
	config_dir = strdup(dir);
	main_config = strdup(main);
	start_time = reload_time = time(NULL);
	if (request_fd < 0)
		request_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	atomic_store(&pending, 0);
	atomic_store(&stopping, false);
}

void px_daemon_shutdown(void)
{
	px_settings_free(&settings);
	free(config_dir);
	free(main_config);
	config_dir = main_config = NULL;
	if (request_fd >= 0)
		close(request_fd);
	request_fd = -1;
}

const char *px_core_config_dir(void)
{
	return config_dir;
}

const char *px_core_main_config(void)
{
	return main_config;
}

int px_core_load_config(const char *name, px_config **out, px_err *err)
{
	char path[4096];

	if (name[0] == '/' || !config_dir)
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", config_dir, name);
	return px_config_load(path, out, err);
}

time_t px_core_start_time(void)
{
	return start_time;
}

time_t px_core_reload_time(void)
{
	return reload_time;
}

void px_daemon_set_settings(struct px_settings *s)
{
	px_settings_free(&settings);
	settings = *s;
	memset(s, 0, sizeof(*s));
}

const struct px_settings *px_daemon_settings(void)
{
	return &settings;
}

void px_daemon_lock(void)
{
	pthread_mutex_lock(&daemon_lock);
}

void px_daemon_unlock(void)
{
	pthread_mutex_unlock(&daemon_lock);
}

static void request(enum px_daemon_request r)
{
	uint64_t one = 1;

	atomic_fetch_or(&pending, 1 << r);
	if (request_fd >= 0 && write(request_fd, &one, sizeof(one)) < 0)
		px_log_error("Cannot wake the main thread: %s", strerror(errno));
}

void px_core_request_stop(enum px_stop_mode mode)
{
	atomic_store(&stopping, true);
	request(mode == PX_STOP_NOW ? PX_REQ_STOP_NOW : PX_REQ_STOP_GRACEFULLY);
}

void px_core_request_reload(void)
{
	request(PX_REQ_RELOAD);
}

bool px_core_stopping(void)
{
	return atomic_load(&stopping);
}

int px_daemon_request_fd(void)
{
	return request_fd;
}

enum px_daemon_request px_daemon_take_request(void)
{
	static const enum px_daemon_request order[] = {PX_REQ_STOP_NOW, PX_REQ_STOP_GRACEFULLY,
						       PX_REQ_RELOAD};
	uint64_t v;

	if (read(request_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		px_log_warning("Reading the request fd: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int bit = 1 << order[i];
		if (atomic_fetch_and(&pending, ~bit) & bit) {
			/* Another request may still be pending: keep the fd readable. */
			if (atomic_load(&pending)) {
				uint64_t one = 1;
				if (write(request_fd, &one, sizeof(one)) < 0)
					px_log_warning("Re-arming the request fd: %s",
						       strerror(errno));
			}
			return order[i];
		}
	}
	return PX_REQ_NONE;
}

/* Settings that only take effect at start: say so instead of pretending. */
static void warn_restart_needed(const struct px_settings *old, const struct px_settings *new)
{
	static const struct {
		const char *what;
		size_t offset;
	} fixed[] = {
		{"module_dir", offsetof(struct px_settings, module_dir)},
		{"database", offsetof(struct px_settings, database)},
		{"pidfile", offsetof(struct px_settings, pidfile)},
		{"console socket", offsetof(struct px_settings, socket)},
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		const char *a = *(char *const *)((const char *)old + fixed[i].offset);
		const char *b = *(char *const *)((const char *)new + fixed[i].offset);
		if (a && b && strcmp(a, b))
			px_log_warning("Changing %s takes effect at the next restart",
				       fixed[i].what);
	}
}

int px_daemon_configure_sounds(px_err *err)
{
	char path[4096];
	px_config *conf = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/sounds.conf", config_dir ? config_dir : ".");
	if (access(path, F_OK) == 0 && px_config_load(path, &conf, err) < 0)
		return -1;
	rc = px_sound_configure(conf, err);
	px_config_unref(conf);
	return rc;
}

int px_core_reload(px_err *err)
{
	struct px_settings next;
	int rc = 0;

	px_daemon_lock();
	if (px_settings_load(main_config, &next, err) < 0) {
		px_log_error("Reload of %s failed: %s; keeping the running configuration",
			     main_config, err->msg);
		rc = -1;
	} else {
		px_err lerr;
		warn_restart_needed(&settings, &next);
		next.log.to_stderr = settings.log.to_stderr;
		if (px_log_configure(&next.log, &lerr) < 0) {
			px_log_error("Reload: %s; keeping the running logger", lerr.msg);
			px_err_set(err, "%s", lerr.msg);
			px_settings_free(&next);
			rc = -1;
		} else {
			px_daemon_set_settings(&next);
			px_thread_set_call_nice(settings.call_nice);
		}
	}
	px_daemon_unlock();
	{
		px_err serr;
		if (px_daemon_configure_sounds(&serr) < 0)
			px_log_error("Reload: %s; keeping the running sound settings", serr.msg);
	}
	px_console_roles_reload();
	px_console_roles_changed();
	px_loader_reload_all();
	reload_time = time(NULL);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "core"),
		      PX_EVS("status", rc ? "failed" : "ok"));
	if (rc)
		px_log_notice("Reload finished; plexus.conf was not applied");
	else
		px_log_notice("Reload complete");
	return rc;
}
