/*
 * The SIP thread of chan_sip: it creates the sofia-sip root and nua stack
 * (single-threaded, as SOFIA-NOTES recommends), runs su_root_run as its
 * loop, executes closures posted by other threads (through an eventfd
 * registered with the root), dispatches nua events to the REGISTER and call
 * handlers, and shuts the stack down cleanly: nua_shutdown, wait for its
 * final answer, then destroy everything in order.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sofia-sip/auth_module.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport_tag.h>

#include <plexus/core.h>
#include <plexus/log.h>

#include "sip.h"

extern su_log_t tport_log[];
extern su_log_t nua_log[];
extern su_log_t nta_log[];

struct sip_stack sip;

struct post {
	void (*fn)(void *arg);
	void *arg;
	struct post *next;
};

static pthread_t thread;
static bool thread_running;
static pthread_t thread_self;
static int post_fd = -1;
static su_wait_t post_wait[1];
static int post_index = -1;
static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static struct post *post_head, *post_tail;
static bool accepting; /* posts are accepted (under post_lock) */

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static int start_state; /* 0 starting, 1 running, -1 failed */
static px_err start_err;

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

bool sip_on_thread(void)
{
	return thread_running && pthread_equal(pthread_self(), thread_self);
}

int sip_post(void (*fn)(void *arg), void *arg)
{
	struct post *p;
	uint64_t one = 1;
	bool wake;

	p = malloc(sizeof(*p));
	if (!p)
		return -1;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&post_lock);
	if (!accepting) {
		pthread_mutex_unlock(&post_lock);
		free(p);
		return -1;
	}
	/* Only the first post into an empty queue wakes the SIP thread: it
	 * reads the eventfd before it takes the queue, so whatever is added
	 * after the first is taken with it or finds the queue empty again. */
	wake = post_head == NULL;
	if (post_tail)
		post_tail->next = p;
	else
		post_head = p;
	post_tail = p;
	pthread_mutex_unlock(&post_lock);
	if (wake && write(post_fd, &one, sizeof(one)) < 0)
		px_log_error("chan_sip: cannot wake the SIP thread: %s", strerror(errno));
	return 0;
}

struct sync_call {
	void (*fn)(void *arg);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void run_sync(void *p)
{
	struct sync_call *s = p;

	s->fn(s->arg);
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int sip_call_sync(void (*fn)(void *arg), void *arg)
{
	struct sync_call s = {.fn = fn, .arg = arg};

	if (sip_on_thread()) {
		fn(arg);
		return 0;
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	if (sip_post(run_sync, &s) < 0) {
		pthread_cond_destroy(&s.cond);
		pthread_mutex_destroy(&s.lock);
		return -1;
	}
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	return 0;
}

static int post_wakeup(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	uint64_t v;
	struct post *list;

	if (read(post_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		px_log_warning("chan_sip: reading the post fd: %s", strerror(errno));
	pthread_mutex_lock(&post_lock);
	list = post_head;
	post_head = post_tail = NULL;
	pthread_mutex_unlock(&post_lock);
	while (list) {
		struct post *next = list->next;
		list->fn(list->arg);
		free(list);
		list = next;
	}
	return 0;
}

/* sofia-sip's own log lines go to ours. It writes a message in pieces, so
 * pieces are gathered until a newline and logged a line at a time: at
 * notice level while "sip set debug" is on (messages on the wire), else at
 * debug level 3. Only the SIP thread logs through sofia. */
static void sofia_logger(void *stream, char const *fmt, va_list ap)
{
	static char line[8192];
	static size_t used;
	char piece[8192];
	int n = vsnprintf(piece, sizeof(piece), fmt, ap);

	if (n < 0)
		return;
	for (const char *p = piece; *p; p++) {
		if (*p != '\n' && used < sizeof(line) - 1) {
			line[used++] = *p;
			continue;
		}
		if (*p != '\n')
			continue; /* an overlong line is cut, not lost entirely */
		line[used] = '\0';
		if (used && strspn(line, " \t") != used) {
			if (sip.debug)
				px_log(PX_LOG_NOTICE, 0, "sofia", 0, "sip", "%s", line);
			else
				px_debug(3, "sofia: %s", line);
		}
		used = 0;
	}
	(void)stream;
}

void sip_set_debug(bool on)
{
	sip.debug = on;
	if (sip.nua)
		nua_set_params(sip.nua, TPTAG_LOG(on), TAG_END());
	su_log_set_level(tport_log, on ? 3 : 0);
}

static void nua_callback(nua_event_t event, int status, char const *phrase, nua_t *nua,
			 nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic,
			 sip_t const *sipmsg, tagi_t tags[])
{
	switch (event) {
	case nua_r_shutdown:
		if (status >= 200)
			su_root_break(sip.root);
		return;
	case nua_i_register:
		sip_register_incoming(nh, sipmsg);
		return;
	case nua_r_method: /* REGISTERs of trunks */
	case nua_r_options:
		/* Endpoints' qualify OPTIONS (qualify.c), trunks'
		 * registrations and qualify OPTIONS (trunk.c). */
		if (sip_qualify_response(event, status, nh, sipmsg) ||
		    sip_trunk_response(event, status, nh, sipmsg))
			return;
		break;
	case nua_i_invite:
		if (!hmagic) {
			sip_call_incoming(nh, hmagic, sipmsg);
			return;
		}
		break;
	case nua_i_refer:
	case nua_i_message:
	case nua_i_subscribe:
	case nua_i_notify:
	case nua_i_publish:
		/* Not offered (see Allow): refused whoever asks, in or out of a dialog. */
		nua_respond(nh, 405, sip_405_Method_not_allowed,
			    SIPTAG_ALLOW_STR("INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO"),
			    NUTAG_WITH_THIS(sip.nua), TAG_END());
		if (!hmagic)
			nua_handle_destroy(nh);
		return;
	case nua_i_info:
		if (!hmagic || hmagic == (nua_hmagic_t *)&sip_rejected_magic) {
			nua_respond(nh, 481, sip_481_No_transaction, NUTAG_WITH_THIS(sip.nua),
				    TAG_END());
			if (!hmagic)
				nua_handle_destroy(nh);
			return;
		}
		break;
	case nua_i_error:
		px_log_warning("chan_sip: stack error %d %s", status, phrase ? phrase : "");
		return;
	default:
		break;
	}
	if (hmagic == (nua_hmagic_t *)&sip_rejected_magic) {
		int state = -1;
		tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
		if (event == nua_i_terminated ||
		    (event == nua_i_state && state == nua_callstate_terminated))
			nua_handle_destroy(nh);
		return;
	}
	if (hmagic) {
		sip_call_event(event, status, phrase, nh, hmagic, sipmsg, tags);
		return;
	}
	/* Requests for handles we never took (OPTIONS, stray BYE ...) are
	 * answered by nua itself; their handles are ours to release. */
	if (nua_event_is_incoming_request(event) && nh)
		nua_handle_destroy(nh);
}

struct start_args {
	struct sip_config *cfg;
};

static void start_done(int state, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void start_done(int state, const char *fmt, ...)
{
	pthread_mutex_lock(&start_lock);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		px_err_vset(&start_err, fmt, ap);
		va_end(ap);
	}
	start_state = state;
	pthread_cond_broadcast(&start_cond);
	pthread_mutex_unlock(&start_lock);
}

/* The SIP UDP sockets one stack binds: one per address family and address. */
#define UDP_SOCKETS_MAX 8

/* sofia does not give its sockets away: the SIP UDP sockets are found
 * among this process's descriptors by the port of cfg's bind address
 * (*port_out). Found once at start, for the overload control and the
 * datagram shortcut. */
static size_t find_udp_sockets(const struct sip_config *cfg, int *fds, size_t max, int *port_out)
{
	char host[256], portstr[16];
	/* Without a port, sofia listens on 5060. */
	int port = sip_bind_split(cfg->bind, host, sizeof(host), portstr, sizeof(portstr)) < 0
			   ? 5060
			   : atoi(portstr);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	*port_out = port;
	if (!dir) {
		px_log_warning("chan_sip: cannot list /proc/self/fd: %s", strerror(errno));
		return 0;
	}
	while ((de = readdir(dir)) && n < max) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd, type = 0;
		socklen_t tlen = sizeof(type);
		struct stat st;
		char *end;
		long v = strtol(de->d_name, &end, 10);

		if (*end || v < 0 || v == dirfd(dir))
			continue;
		fd = (int)v;
		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_DGRAM ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		if ((ss.ss_family == AF_INET &&
		     ntohs(((struct sockaddr_in *)&ss)->sin_port) == port) ||
		    (ss.ss_family == AF_INET6 &&
		     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == port))
			fds[n++] = fd;
	}
	closedir(dir);
	return n;
}

/* sofia sizes every datagram it receives with a system call, reads it with
 * another and waits for the next, and reads the socket's pending error
 * before every send: on this thread most of that costs nothing
 * (core/dgram_shortcut.c says how). Without it the stack works the same,
 * two or three system calls a message slower. */
static void take_udp_shortcuts(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (px_thread_dgram_shortcut(fds[i]) < 0)
			px_log_warning(
				"chan_sip: UDP socket %d keeps two system calls a message: %s",
				fds[i], strerror(errno));
}

/* "127.0.0.1:5060" → "sip:127.0.0.1:5060" (UDP and TCP) or ";transport=udp".
 * A list such as "transport=udp,tcp" is avoided on purpose: this sofia-sip
 * (1.12.11) splits it into an array it leaves partly uninitialised, which
 * crashed tport_tbind on a reused thread stack. Without the parameter it
 * binds its default SIP transports, UDP and TCP among them. */
static int make_url(const struct sip_config *cfg, char *buf, size_t size)
{
	int n;

	if (cfg->udp && cfg->tcp)
		n = snprintf(buf, size, "sip:%s", cfg->bind);
	else
		n = snprintf(buf, size, "sip:%s;transport=%s", cfg->bind, cfg->udp ? "udp" : "tcp");
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static void *sip_main(void *arg)
{
	struct sip_config *cfg = arg;
	char url[320], sips_url[320] = "";
	bool tls_failed = false;
	int udp_fds[UDP_SOCKETS_MAX], udp_port = 0;
	size_t udp_n = 0;

	thread_self = pthread_self();
	px_thread_carries_every_call();
	/* sofia's loop rounds its timer timeouts down to whole milliseconds and
	 * would otherwise spin through the last one before every timer. */
	px_thread_avoid_poll_spin();
	/* Before sofia's loop watches its sockets: see take_udp_shortcuts. */
	px_thread_dgram_shortcuts_begin();
	if (su_init() != 0) {
		start_done(-1, "su_init failed");
		return NULL;
	}
	su_log_redirect(su_log_default, sofia_logger, su_log_default);
	su_log_redirect(nua_log, sofia_logger, nua_log);
	su_log_redirect(nta_log, sofia_logger, nta_log);
	su_log_redirect(tport_log, sofia_logger, tport_log);
	sip.root = su_root_create(NULL);
	if (!sip.root) {
		start_done(-1, "cannot create the SIP event loop");
		goto out_deinit;
	}
	su_root_threading(sip.root, 0);
	su_wait_create(post_wait, post_fd, SU_WAIT_IN);
	post_index = su_root_register(sip.root, post_wait, post_wakeup, NULL, 0);
	if (post_index < 0) {
		start_done(-1, "cannot register the post fd");
		goto out_root;
	}
	if (make_url(cfg, url, sizeof(url)) < 0 ||
	    (cfg->tls && snprintf(sips_url, sizeof(sips_url), "sips:%s", cfg->tls_bind) >=
				 (int)sizeof(sips_url))) {
		start_done(-1, "bind address too long");
		goto out_root;
	}
	/* TLS is a second bind URL of its own (never a transport list: see
	 * make_url), with sofia's certificate directory. Verifying peers means
	 * the carriers we connect to (VERIFY_OUTGOING): phones connecting in
	 * seldom have certificates of their own. */
	sip.tls_running = cfg->tls;
	if (sip.tls_running) {
		px_err terr = {""};
		if (sip_tls_bind_check(cfg->tls_bind, &terr) < 0) {
			px_log_error("chan_sip: %s; TLS is off, UDP and TCP are not affected",
				     terr.msg);
			sip.tls_running = false;
		}
	}
	if (sip.tls_running) {
		px_err terr = {""};
		/* sofia makes its TLS context in nua_create (tls.c says why
		 * the floor goes through OpenSSL's configuration). */
		if (sip_tls_floor_set(cfg->tls_min_version, &terr) < 0) {
			px_log_error("chan_sip: %s; TLS is off, UDP and TCP are not affected",
				     terr.msg);
			sip.tls_running = false;
		}
	}
	for (;;) {
		sip.nua = nua_create(
			sip.root, nua_callback, NULL, NUTAG_URL(url),
			TAG_IF(sip.tls_running, NUTAG_SIPS_URL(sips_url)),
			TAG_IF(sip.tls_running, NUTAG_CERTIFICATE_DIR(cfg->tls_cert_dir)),
			TAG_IF(sip.tls_running,
			       TPTAG_TLS_VERIFY_POLICY(cfg->tls_verify_peer ? TPTLS_VERIFY_OUTGOING
									    : TPTLS_VERIFY_NONE)),
			NUTAG_MEDIA_ENABLE(0),
			/* Methods nua would otherwise accept on its own (REFER,
			 * MESSAGE ...) come to us, to be refused: nobody may make
			 * plexusd send NOTIFYs or claim deliveries it never makes. */
			NUTAG_APPL_METHOD("REGISTER"), NUTAG_APPL_METHOD("REFER"),
			NUTAG_APPL_METHOD("MESSAGE"), NUTAG_APPL_METHOD("SUBSCRIBE"),
			NUTAG_APPL_METHOD("NOTIFY"), NUTAG_APPL_METHOD("PUBLISH"),
			NUTAG_APPL_METHOD("INFO"), /* answered by dtmf.c, by what it holds */
			SIPTAG_ALLOW_STR("INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO"),
			SIPTAG_SUPPORTED_STR("path"), NUTAG_AUTOALERT(0), NUTAG_AUTOANSWER(0),
			NUTAG_AUTOACK(1), NUTAG_ENABLEINVITE(1), NUTAG_USER_AGENT(cfg->user_agent),
			/* No 100 Trying the moment an INVITE arrives: nta sends
			 * one by itself when nothing else has gone out 200 ms
			 * later (its timer N1), which is what RFC 3261 17.2.1
			 * asks. A challenge, a refusal or a re-INVITE's answer
			 * goes out at once and a callee mostly rings within
			 * milliseconds, so an immediate 100 was two messages a
			 * call that both sides built, sent and parsed for
			 * nothing. */
			NUTAG_AUTO100(0), NUTAG_SESSION_TIMER(0), TPTAG_UDP_RMEM(4 * 1024 * 1024),
			NTATAG_SERVER_RPORT(2), TAG_END());
		if (sip.nua || !sip.tls_running)
			break;
		sip_tls_floor_restore();
		/* Try without TLS: if that starts, the TLS address was what
		 * failed (the certificate passed tls.c's check). */
		sip.tls_running = false;
		tls_failed = true;
	}
	if (sip.tls_running) {
		sip_tls_floor_restore();
		sip.tls_min_version = cfg->tls_min_version;
	}
	if (sip.nua && tls_failed)
		px_log_error(
			"chan_sip: cannot listen for TLS on %s (address in use or not local?); "
			"TLS is off, UDP and TCP are not affected",
			sips_url);
	if (!sip.nua) {
		start_done(-1, "cannot listen on %s (address in use or not local?)", url);
		goto out_root;
	}
	sip.config = cfg;
	sip_auth_load_users(cfg);
	if (!sip.auth) {
		start_done(-1, "cannot create the digest authentication module");
		goto out_nua;
	}
	if (cfg->udp) {
		udp_n = find_udp_sockets(cfg, udp_fds, UDP_SOCKETS_MAX, &udp_port);
		if (!udp_n)
			px_log_warning("chan_sip: no UDP socket found on port %d: overload control "
				       "by CPU only",
				       udp_port);
	}
	if (sip_rtp_watch_start(sip.root) < 0 || sip_overload_start(sip.root, udp_fds, udp_n) < 0 ||
	    sip_qualify_start(sip.root) < 0) {
		sip_overload_stop();
		sip_rtp_watch_stop();
		start_done(-1, "cannot start the SIP thread's timers");
		goto out_auth;
	}
	if (sip.debug)
		sip_set_debug(true);
	take_udp_shortcuts(udp_fds, udp_n);
	sip_trunks_apply(cfg);
	px_verbose(1, "chan_sip listening on %s%s%s", url, sip.tls_running ? " and " : "",
		   sip.tls_running ? sips_url : "");
	start_done(1, NULL);

	su_root_run(sip.root); /* until the shutdown posted by sip_stack_stop */

	sip_qualify_stop();
	sip_overload_stop();
	sip_rtp_watch_stop();
out_auth:
	auth_mod_destroy(sip.auth);
	sip.auth = NULL;
out_nua:
	nua_destroy(sip.nua);
	sip.nua = NULL;
out_root:
	if (post_index >= 0)
		su_root_unregister(sip.root, post_wait, post_wakeup, NULL);
	post_index = -1;
	su_wait_destroy(post_wait);
	su_root_destroy(sip.root);
	sip.root = NULL;
out_deinit:
	su_log_redirect(tport_log, NULL, NULL);
	su_log_redirect(nta_log, NULL, NULL);
	su_log_redirect(nua_log, NULL, NULL);
	su_log_redirect(su_log_default, NULL, NULL);
	su_deinit();
	px_thread_dgram_shortcuts_end();
	return NULL;
}

/* A usable RTP address: rtp_address, else the bind host, else loopback. */
static int resolve_rtp_address(const struct sip_config *cfg, px_err *err)
{
	char host[128];
	const char *src = cfg->rtp_address[0] ? cfg->rtp_address : cfg->bind;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *res;
	size_t len;

	if (src[0] == '[') {
		const char *end = strchr(src, ']');
		len = end ? (size_t)(end - src - 1) : strlen(src + 1);
		snprintf(host, sizeof(host), "%.*s", (int)len, src + 1);
	} else {
		const char *colon = strchr(src, ':');
		len = colon && !strchr(colon + 1, ':') ? (size_t)(colon - src) : strlen(src);
		snprintf(host, sizeof(host), "%.*s", (int)len, src);
	}
	if (!strcmp(host, "*") || !strcmp(host, "0.0.0.0") || !host[0])
		snprintf(host, sizeof(host), "127.0.0.1");
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return px_err_set(err, "sip.conf: rtp_address '%s' is not an IP address", host);
	memset(&sip.rtp_addr, 0, sizeof(sip.rtp_addr));
	memcpy(&sip.rtp_addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	snprintf(sip.contact_host, sizeof(sip.contact_host), "%s", cfg->bind);
	return 0;
}

int sip_stack_start(struct sip_config *cfg, px_err *err)
{
	int rc;

	if (resolve_rtp_address(cfg, err) < 0)
		return -1;
	post_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (post_fd < 0)
		return px_err_set(err, "eventfd: %s", strerror(errno));
	pthread_mutex_lock(&post_lock);
	accepting = true;
	pthread_mutex_unlock(&post_lock);
	start_state = 0;
	rc = px_thread_start(&thread, "sip", sip_main, cfg);
	if (rc) {
		close(post_fd);
		post_fd = -1;
		return px_err_set(err, "cannot start the SIP thread: %s", strerror(rc));
	}
	thread_running = true;
	pthread_mutex_lock(&start_lock);
	while (start_state == 0)
		pthread_cond_wait(&start_cond, &start_lock);
	rc = start_state;
	pthread_mutex_unlock(&start_lock);
	if (rc < 0) {
		pthread_join(thread, NULL);
		thread_running = false;
		pthread_mutex_lock(&post_lock);
		accepting = false;
		pthread_mutex_unlock(&post_lock);
		close(post_fd);
		post_fd = -1;
		sip.config = NULL;
		return px_err_set(err, "%s", start_err.msg);
	}
	return 0;
}

static void do_shutdown(void *arg)
{
	sip_trunks_stop(); /* un-REGISTERs go out before the stack stops */
	sip_qualify_stop();
	nua_shutdown(sip.nua);
}

void sip_stack_stop(void)
{
	struct post *left;

	if (!thread_running)
		return;
	sip_post(do_shutdown, NULL);
	pthread_join(thread, NULL);
	thread_running = false;
	pthread_mutex_lock(&post_lock);
	accepting = false;
	left = post_head;
	post_head = post_tail = NULL;
	pthread_mutex_unlock(&post_lock);
	while (left) { /* posted after the loop ended: nobody will run them */
		struct post *next = left->next;
		free(left);
		left = next;
	}
	close(post_fd);
	post_fd = -1;
	sip.tls_running = false;
	pthread_mutex_lock(&config_lock);
	sip_config_unref(sip.config);
	sip.config = NULL;
	pthread_mutex_unlock(&config_lock);
}

static void do_reconfigure(void *arg)
{
	struct sip_config *cfg = arg, *old;

	pthread_mutex_lock(&config_lock);
	old = sip.config;
	sip.config = cfg;
	pthread_mutex_unlock(&config_lock);
	/* Listening sockets are made once, when the stack starts. */
	if (strcmp(old->bind, cfg->bind) || old->udp != cfg->udp || old->tcp != cfg->tcp ||
	    old->tls != cfg->tls || strcmp(old->tls_bind, cfg->tls_bind) ||
	    strcmp(old->tls_cert_dir, cfg->tls_cert_dir) ||
	    old->tls_verify_peer != cfg->tls_verify_peer ||
	    old->tls_min_version != cfg->tls_min_version)
		px_log_warning("chan_sip: bind, transports and tls_* changes take effect when "
			       "chan_sip is loaded again (module unload, module load) or at a "
			       "restart; the listeners stay as they are (TLS %s)",
			       sip.tls_running ? "on" : "off");
	sip_auth_load_users(cfg);
	sip_trunks_apply(cfg);
	sip_config_unref(old);
}

void sip_stack_reconfigure(struct sip_config *cfg)
{
	if (sip_call_sync(do_reconfigure, cfg) < 0)
		sip_config_unref(cfg);
}

struct sip_config *sip_stack_config(void)
{
	struct sip_config *c;

	pthread_mutex_lock(&config_lock);
	c = sip.config ? sip_config_ref(sip.config) : NULL;
	pthread_mutex_unlock(&config_lock);
	return c;
}
