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
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

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
	const char *colon;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_PASSIVE},
			*res;
	int fd, rc, one = 1;

	if (bind_addr[0] == '[') {
		const char *end = strchr(bind_addr, ']');
		if (!end || end[1] != ':')
			return px_err_set(err, "%s: not [address]:port", bind_addr);
		snprintf(host, sizeof(host), "%.*s", (int)(end - bind_addr - 1), bind_addr + 1);
		colon = end + 1;
	} else {
		colon = strrchr(bind_addr, ':');
		if (!colon)
			return px_err_set(err, "%s: not address:port", bind_addr);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - bind_addr), bind_addr);
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
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
