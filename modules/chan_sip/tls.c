/*
 * The certificate check of chan_sip's TLS transport. sofia-sip takes a
 * directory (agent.pem: certificate chain and private key; cafile.pem: the
 * CAs trusted for peers) and, given a file it cannot use, either fails the
 * whole stack (UDP and TCP with it) or, worse, listens on TLS with no
 * certificate and fails every handshake without a word. So the files are
 * read here with OpenSSL first, the way sofia will read them, and a
 * problem is reported naming the file; the caller then runs without TLS.
 * The TLS address is tried the same way first: a nua_create() that fails
 * to bind leaves part of the event loop behind, so it is better not to
 * make it fail.
 *
 * The minimum TLS version (tls_min_version) is also set here, through
 * OpenSSL rather than sofia-sip: sofia's only version tag
 * (TPTAG_TLS_VERSION) picks between TLS_method() and TLSv1_client_method()
 * (TLS 1.0 only), and it never hands out its SSL_CTX. Every SSL_CTX
 * OpenSSL makes takes the "system_default" commands of its configuration
 * (ssl_conf) at its creation, and sofia makes its one context when
 * nua_create() binds the TLS transport (connections are SSL objects of
 * that context, which keep its floor). So for the time of nua_create()
 * the process's system_default becomes the system's own (read from the
 * OpenSSL configuration file) with our MinProtocol, and then the system's
 * again: other users of OpenSSL in the process are not affected.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <plexus/log.h>

#include "sip.h"

/* OpenSSL's first queued error as text ("" when none), and the queue cleared. */
static void ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	buf[0] = '\0';
	if (e)
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
}

static int file_error(px_err *err, const char *path, const char *what)
{
	char reason[256];

	ssl_reason(reason, sizeof(reason));
	return px_err_set(err, "%s: %s%s%s", path, what, reason[0] ? ": " : "", reason);
}

int sip_tls_check(const char *dir, bool need_ca, px_err *err)
{
	char agent[600], cafile[600];
	SSL_CTX *ctx;
	int rc = -1;

	if ((size_t)snprintf(agent, sizeof(agent), "%s/agent.pem", dir) >= sizeof(agent) ||
	    (size_t)snprintf(cafile, sizeof(cafile), "%s/cafile.pem", dir) >= sizeof(cafile))
		return px_err_set(err, "%s: directory name too long", dir);
	if (access(agent, R_OK) != 0)
		return px_err_set(err, "%s: cannot read the certificate and key: %s", agent,
				  strerror(errno));
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_method());
	if (!ctx)
		return file_error(err, agent, "cannot make a TLS context");
	if (SSL_CTX_use_certificate_chain_file(ctx, agent) != 1) {
		file_error(err, agent, "no usable certificate (PEM)");
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, agent, SSL_FILETYPE_PEM) != 1) {
		file_error(err, agent, "no usable private key (PEM, unencrypted)");
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		file_error(err, agent, "the private key does not belong to the certificate");
		goto out;
	}
	if (access(cafile, F_OK) == 0 || need_ca) {
		if (access(cafile, R_OK) != 0) {
			px_err_set(
				err,
				"%s: cannot read the trusted CAs (needed by tls_verify_peer): %s",
				cafile, strerror(errno));
			goto out;
		}
		if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
			file_error(err, cafile, "no usable CA certificate (PEM)");
			goto out;
		}
	}
	rc = 0;
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int sip_tls_bind_check(const char *bind_addr, px_err *err)
{
	char host[256], port[16];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_PASSIVE},
			*res;
	int fd, rc, one = 1;

	if (sip_bind_split(bind_addr, host, sizeof(host), port, sizeof(port)) < 0)
		return px_err_set(err, "%s: not address:port or [address]:port", bind_addr);
	rc = getaddrinfo(!strcmp(host, "*") ? NULL : host, port, &hints, &res);
	if (rc != 0)
		return px_err_set(err, "%s: %s", bind_addr, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return px_err_set(err, "%s: %s", bind_addr, strerror(errno));
	}
	/* As sofia binds it: with SO_REUSEADDR, which still fails while
	 * another socket listens there. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = bind(fd, res->ai_addr, res->ai_addrlen);
	if (rc < 0)
		px_err_set(err, "cannot listen for TLS on %s: %s", bind_addr, strerror(errno));
	close(fd);
	freeaddrinfo(res);
	return rc < 0 ? -1 : 0;
}

int sip_tls_version_parse(const char *text, int *minor)
{
	if (!strcmp(text, "1.2") || !strcasecmp(text, "TLSv1.2"))
		*minor = 2;
	else if (!strcmp(text, "1.3") || !strcasecmp(text, "TLSv1.3"))
		*minor = 3;
	else
		return -1;
	return 0;
}

/* Append "name = "value"\n" to buf, the value quoted for OpenSSL's
 * configuration syntax (no variable expansion inside quotes). */
static void conf_line(char *buf, size_t size, const char *name, const char *value)
{
	size_t used = strlen(buf);

	used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s = \"", name);
	for (const char *p = value; *p && used + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			buf[used++] = '\\';
		buf[used++] = *p;
	}
	if (used < size)
		snprintf(buf + used, size - used, "\"\n");
}

/* The system_default commands of the OpenSSL configuration file this
 * process reads (OPENSSL_CONF, else OpenSSL's default file), as lines
 * without MinProtocol; the system's MinProtocol into min ("" when none). */
static void system_defaults(char *lines, size_t size, char *min, size_t minsize)
{
	char *path = CONF_get1_default_config_file();
	CONF *conf = NCONF_new(NULL);
	const char *init, *ssl, *sys;
	STACK_OF(CONF_VALUE) *sect = NULL;

	lines[0] = min[0] = '\0';
	if (path && conf && NCONF_load(conf, path, NULL) > 0) {
		init = NCONF_get_string(conf, NULL, "openssl_conf");
		ssl = init ? NCONF_get_string(conf, init, "ssl_conf") : NULL;
		sys = ssl ? NCONF_get_string(conf, ssl, "system_default") : NULL;
		sect = sys ? NCONF_get_section(conf, sys) : NULL;
	}
	for (int i = 0; sect && i < sk_CONF_VALUE_num(sect); i++) {
		const CONF_VALUE *v = sk_CONF_VALUE_value(sect, i);
		if (!strcasecmp(v->name, "MinProtocol"))
			snprintf(min, minsize, "%s", v->value);
		else
			conf_line(lines, size, v->name, v->value);
	}
	NCONF_free(conf);
	OPENSSL_free(path);
	ERR_clear_error(); /* a missing file or section is no error here */
}

/* Make system_default hold lines plus "MinProtocol = min". */
static int load_system_default(const char *lines, const char *min, px_err *err)
{
	char text[4096];
	BIO *bio;
	CONF *conf = NCONF_new(NULL);
	long eline = 0;
	int rc = -1;

	snprintf(text, sizeof(text),
		 "plexus_chan_sip = plexus_init\n[plexus_init]\nssl_conf = plexus_ssl\n"
		 "[plexus_ssl]\nsystem_default = plexus_system_default\n"
		 "[plexus_system_default]\n%s",
		 lines);
	conf_line(text, sizeof(text), "MinProtocol", min);
	bio = BIO_new_mem_buf(text, -1);
	if (!bio || !conf || NCONF_load_bio(conf, bio, &eline) <= 0 ||
	    CONF_modules_load(conf, "plexus_chan_sip", 0) <= 0) {
		char reason[256];
		ssl_reason(reason, sizeof(reason));
		px_err_set(err, "cannot set OpenSSL's minimum TLS version: %s",
			   reason[0] ? reason : "out of memory");
	} else {
		rc = 0;
	}
	NCONF_free(conf);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

int sip_tls_floor_set(int minor, px_err *err)
{
	char lines[2048], min[64];

	/* The system's configuration is loaded first (once per process), so
	 * that it cannot come later and replace ours. */
	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL);
	system_defaults(lines, sizeof(lines), min, sizeof(min));
	return load_system_default(lines, minor == 3 ? "TLSv1.3" : "TLSv1.2", err);
}

void sip_tls_floor_restore(void)
{
	char lines[2048], min[64];
	px_err err = {""};

	system_defaults(lines, sizeof(lines), min, sizeof(min));
	/* "None": OpenSSL's own default, no floor of its configuration. */
	if (load_system_default(lines, min[0] ? min : "None", &err) < 0)
		px_log_warning("chan_sip: %s", err.msg);
}
