/*
 * Unit tests of chan_sip's TLS floor (modules/chan_sip/tls.c) without the
 * SIP stack: tls_min_version's values, and sip_tls_floor_set/restore on
 * the SSL contexts OpenSSL makes. The process reads an OpenSSL
 * configuration of the test's own (OPENSSL_CONF, set before OpenSSL
 * starts) whose system_default says MinProtocol = TLSv1.1 and security
 * level 1, so that a floor that leaked, or a restore that lost the
 * system's other settings, shows.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <openssl/ssl.h>

#include <plexus/log.h>

#include "../../modules/chan_sip/sip.h"

static int warnings;

/* tls.c logs through the core; here a warning is only counted. */
void px_log(enum px_log_level level, int sublevel, const char *file, int line, const char *func,
	    const char *fmt, ...)
{
	(void)sublevel;
	(void)file;
	(void)line;
	(void)func;
	(void)fmt;
	if (level <= PX_LOG_WARNING)
		warnings++;
}

static void test_version_parse(void)
{
	int minor = 0;

	CU_ASSERT_EQUAL(sip_tls_version_parse("1.2", &minor), 0);
	CU_ASSERT_EQUAL(minor, 2);
	CU_ASSERT_EQUAL(sip_tls_version_parse("1.3", &minor), 0);
	CU_ASSERT_EQUAL(minor, 3);
	CU_ASSERT_EQUAL(sip_tls_version_parse("TLSv1.2", &minor), 0);
	CU_ASSERT_EQUAL(minor, 2);
	CU_ASSERT_EQUAL(sip_tls_version_parse("tlsv1.3", &minor), 0);
	CU_ASSERT_EQUAL(minor, 3);
	minor = 0;
	CU_ASSERT_EQUAL(sip_tls_version_parse("1.1", &minor), -1);
	CU_ASSERT_EQUAL(sip_tls_version_parse("1.0", &minor), -1);
	CU_ASSERT_EQUAL(sip_tls_version_parse("", &minor), -1);
	CU_ASSERT_EQUAL(sip_tls_version_parse("1.2 ", &minor), -1);
	CU_ASSERT_EQUAL(sip_tls_version_parse("1.3.0", &minor), -1);
	CU_ASSERT_EQUAL(sip_tls_version_parse("3", &minor), -1);
	CU_ASSERT_EQUAL(minor, 0);
}

/* The floor and security level of a context made now. */
static void ctx_now(long *min, int *level)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	*min = SSL_CTX_get_min_proto_version(ctx);
	*level = SSL_CTX_get_security_level(ctx);
	SSL_CTX_free(ctx);
}

static void test_floor(void)
{
	long min;
	int level;
	px_err err = {""};
	SSL_CTX *held;
	SSL *conn;

	/* The system's own setting, from the test's openssl.cnf. */
	ctx_now(&min, &level);
	CU_ASSERT_EQUAL(min, TLS1_1_VERSION);
	CU_ASSERT_EQUAL(level, 1);

	CU_ASSERT_EQUAL_FATAL(sip_tls_floor_set(3, &err), 0);
	ctx_now(&min, &level);
	CU_ASSERT_EQUAL(min, TLS1_3_VERSION);
	CU_ASSERT_EQUAL(level, 1); /* the system's other commands are kept */
	held = SSL_CTX_new(TLS_method());
	CU_ASSERT_PTR_NOT_NULL_FATAL(held);
	sip_tls_floor_restore();
	CU_ASSERT_EQUAL(warnings, 0);

	/* What was made meanwhile keeps the floor, and so do its connections. */
	conn = SSL_new(held);
	CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
	CU_ASSERT_EQUAL(SSL_get_min_proto_version(conn), TLS1_3_VERSION);
	SSL_free(conn);
	SSL_CTX_free(held);

	/* Everything made afterwards has the system's setting again. */
	ctx_now(&min, &level);
	CU_ASSERT_EQUAL(min, TLS1_1_VERSION);
	CU_ASSERT_EQUAL(level, 1);

	CU_ASSERT_EQUAL_FATAL(sip_tls_floor_set(2, &err), 0);
	ctx_now(&min, &level);
	CU_ASSERT_EQUAL(min, TLS1_2_VERSION);
	sip_tls_floor_restore();
	ctx_now(&min, &level);
	CU_ASSERT_EQUAL(min, TLS1_1_VERSION);

	/* Set and restored many times (module load and unload): the same. */
	for (int i = 0; i < 50; i++) {
		CU_ASSERT_EQUAL_FATAL(sip_tls_floor_set(3, &err), 0);
		sip_tls_floor_restore();
	}
	ctx_now(&min, &level);
	CU_ASSERT_EQUAL(min, TLS1_1_VERSION);
	CU_ASSERT_EQUAL(level, 1);
	CU_ASSERT_EQUAL(warnings, 0);
}

int main(void)
{
	char dir[] = "/tmp/px-test-sip-tls.XXXXXX", path[64];
	FILE *f;
	CU_pSuite s;
	unsigned failures;

	/* Before OpenSSL reads any configuration. */
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/openssl.cnf", dir);
	f = fopen(path, "w");
	if (!f)
		return 1;
	fputs("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sysdef\n"
	      "[sysdef]\nMinProtocol = TLSv1.1\nCipherString = \"DEFAULT:@SECLEVEL=1\"\n",
	      f);
	fclose(f);
	setenv("OPENSSL_CONF", path, 1);

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("chan_sip/tls", NULL, NULL);
	CU_add_test(s, "tls_min_version values", test_version_parse);
	CU_add_test(s, "floor set and restored, system settings kept", test_floor);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	unlink(path);
	rmdir(dir);
	return failures != 0;
}
