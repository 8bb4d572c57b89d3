/*
 * Unit tests of chan_sip's address ACLs (modules/chan_sip/acl.c), the
 * matcher behind a trunk's "match" and [general] local_net, on its own
 * without the SIP stack: parsing of hosts and CIDR networks (IPv4, IPv6,
 * with "!" exclusions) and what is refused; matching at prefix edges
 * (/0, /32, /128, prefixes that end inside a byte), IPv4-mapped IPv6
 * sources, the first entry deciding between exclusions and networks, and
 * addresses of the other family or no address at all.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "../../modules/chan_sip/sip.h"

/* A sockaddr for text (v4 or v6). */
static const struct sockaddr *addr(const char *text)
{
	static struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		CU_ASSERT_FATAL(inet_pton(AF_INET6, text, &s6->sin6_addr) == 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		CU_ASSERT_FATAL(inet_pton(AF_INET, text, &s4->sin_addr) == 1);
	}
	return (const struct sockaddr *)&ss;
}

/* Parse a comma-separated list into acl (as sip.conf's list values come). */
static size_t acl_of(const char *list, struct sip_acl_entry *acl, size_t max)
{
	char copy[512], *save = NULL;
	size_t n = 0;

	snprintf(copy, sizeof(copy), "%s", list);
	for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
		CU_ASSERT_EQUAL_FATAL(sip_acl_parse(t, &acl[n]), 0);
		n++;
	}
	return n;
}

static bool matches(const char *list, const char *a)
{
	struct sip_acl_entry acl[16];
	size_t n = acl_of(list, acl, 16);

	return sip_acl_match(acl, n, addr(a));
}

static void test_parse(void)
{
	struct sip_acl_entry e;
	char text[64];

	CU_ASSERT_EQUAL(sip_acl_parse("198.51.100.7", &e), 0);
	CU_ASSERT_EQUAL(e.family, AF_INET);
	CU_ASSERT_EQUAL(e.prefix, 32);
	CU_ASSERT_FALSE(e.deny);
	sip_acl_format(&e, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "198.51.100.7/32");

	CU_ASSERT_EQUAL(sip_acl_parse("203.0.113.0/24", &e), 0);
	CU_ASSERT_EQUAL(e.prefix, 24);
	CU_ASSERT_EQUAL(sip_acl_parse(" !203.0.113.66", &e), 0);
	CU_ASSERT_TRUE(e.deny);
	sip_acl_format(&e, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "!203.0.113.66/32");

	CU_ASSERT_EQUAL(sip_acl_parse("2001:db8::/32", &e), 0);
	CU_ASSERT_EQUAL(e.family, AF_INET6);
	CU_ASSERT_EQUAL(e.prefix, 32);
	sip_acl_format(&e, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "2001:db8::/32");
	CU_ASSERT_EQUAL(sip_acl_parse("::1", &e), 0);
	CU_ASSERT_EQUAL(e.prefix, 128);
	CU_ASSERT_EQUAL(sip_acl_parse("0.0.0.0/0", &e), 0);
	CU_ASSERT_EQUAL(e.prefix, 0);

	/* Refused: names, bad prefixes, garbage. */
	static const char *const bad[] = {
		"carrier.example.com",
		"",
		"/24",
		"10.0.0.0/33",
		"10.0.0.0/-1",
		"10.0.0.0/",
		"10.0.0.0/24x",
		"10.0.0.0/ 8",
		"2001:db8::/129",
		"10.0.0.256",
		"10.0.0",
		"!",
		"!!10.0.0.1",
		"[::1]",
		"10.0.0.1/+8",
		"1234567890123456789012345678901234567890123456789012345678901234567890123456789"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sip_acl_parse(bad[i], &e) != -1)
			fprintf(stderr, "accepted: '%s'\n", bad[i]);
		CU_ASSERT_EQUAL(sip_acl_parse(bad[i], &e), -1);
	}
}

static void test_cidr_v4(void)
{
	CU_ASSERT_TRUE(matches("203.0.113.0/24", "203.0.113.0"));
	CU_ASSERT_TRUE(matches("203.0.113.0/24", "203.0.113.255"));
	CU_ASSERT_FALSE(matches("203.0.113.0/24", "203.0.114.0"));
	CU_ASSERT_FALSE(matches("203.0.113.0/24", "203.0.112.255"));
	/* A prefix that ends inside a byte: /27 is .64 to .95. */
	CU_ASSERT_FALSE(matches("198.51.100.64/27", "198.51.100.63"));
	CU_ASSERT_TRUE(matches("198.51.100.64/27", "198.51.100.64"));
	CU_ASSERT_TRUE(matches("198.51.100.64/27", "198.51.100.95"));
	CU_ASSERT_FALSE(matches("198.51.100.64/27", "198.51.100.96"));
	/* Host bits in the network are ignored. */
	CU_ASSERT_TRUE(matches("198.51.100.70/27", "198.51.100.90"));
	/* A host is exactly itself; /0 is everything of its family. */
	CU_ASSERT_TRUE(matches("198.51.100.7", "198.51.100.7"));
	CU_ASSERT_FALSE(matches("198.51.100.7", "198.51.100.6"));
	CU_ASSERT_TRUE(matches("0.0.0.0/0", "192.0.2.1"));
	CU_ASSERT_FALSE(matches("0.0.0.0/0", "2001:db8::1"));
	/* Any entry of a list. */
	CU_ASSERT_TRUE(matches("192.0.2.1, 198.51.100.0/24", "198.51.100.9"));
	CU_ASSERT_FALSE(matches("192.0.2.1, 198.51.100.0/24", "192.0.2.2"));
}

static void test_cidr_v6(void)
{
	CU_ASSERT_TRUE(matches("2001:db8::/32", "2001:db8:ffff::1"));
	CU_ASSERT_FALSE(matches("2001:db8::/32", "2001:db9::1"));
	CU_ASSERT_TRUE(matches("2001:db8:0:10::/60", "2001:db8:0:1f::1"));
	CU_ASSERT_FALSE(matches("2001:db8:0:10::/60", "2001:db8:0:20::1"));
	CU_ASSERT_TRUE(matches("::1", "::1"));
	CU_ASSERT_FALSE(matches("::1", "::2"));
	CU_ASSERT_TRUE(matches("::/0", "2001:db8::5"));
	CU_ASSERT_FALSE(matches("::/0", "192.0.2.1"));
	CU_ASSERT_FALSE(matches("2001:db8::/32", "192.0.2.1"));
	/* An IPv4-mapped source is its IPv4 address, not an IPv6 one. */
	CU_ASSERT_TRUE(matches("192.0.2.0/24", "::ffff:192.0.2.10"));
	CU_ASSERT_FALSE(matches("192.0.2.0/24", "::ffff:192.0.3.10"));
	CU_ASSERT_FALSE(matches("::/0", "::ffff:192.0.2.10"));
}

static void test_order(void)
{
	/* The exclusion first: the network but one host. */
	CU_ASSERT_FALSE(matches("!203.0.113.66, 203.0.113.0/24", "203.0.113.66"));
	CU_ASSERT_TRUE(matches("!203.0.113.66, 203.0.113.0/24", "203.0.113.67"));
	/* The exclusion after the network comes too late. */
	CU_ASSERT_TRUE(matches("203.0.113.0/24, !203.0.113.66", "203.0.113.66"));
	/* A network carved out of a wider one, then that wider one. */
	CU_ASSERT_FALSE(matches("!10.1.0.0/16, 10.0.0.0/8", "10.1.2.3"));
	CU_ASSERT_TRUE(matches("!10.1.0.0/16, 10.0.0.0/8", "10.2.2.3"));
	CU_ASSERT_TRUE(matches("10.1.2.3, !10.1.0.0/16, 10.0.0.0/8", "10.1.2.3"));
	/* Only exclusions: nothing matches. */
	CU_ASSERT_FALSE(matches("!10.0.0.1", "10.0.0.2"));
	CU_ASSERT_FALSE(matches("!10.0.0.1", "10.0.0.1"));
	/* An exclusion of the other family does not decide. */
	CU_ASSERT_TRUE(matches("!::/0, 192.0.2.0/24", "192.0.2.1"));
}

static void test_empty(void)
{
	struct sip_acl_entry e;
	struct sockaddr_un_like {
		sa_family_t family;
		char path[20];
	} other = {.family = AF_UNIX};

	CU_ASSERT_FALSE(sip_acl_match(NULL, 0, addr("192.0.2.1")));
	CU_ASSERT_EQUAL(sip_acl_parse("0.0.0.0/0", &e), 0);
	CU_ASSERT_FALSE(sip_acl_match(&e, 1, NULL));
	CU_ASSERT_FALSE(sip_acl_match(&e, 1, (const struct sockaddr *)&other));
}

static void test_bind_split(void)
{
	char host[64], port[16];

	CU_ASSERT_EQUAL(sip_bind_split("127.0.0.1:5060", host, sizeof(host), port, sizeof(port)),
			0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(port, "5060");
	CU_ASSERT_EQUAL(sip_bind_split("[::1]:5070", host, sizeof(host), port, sizeof(port)), 0);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_STRING_EQUAL(port, "5070");
	CU_ASSERT_EQUAL(sip_bind_split("*:5061", host, sizeof(host), port, sizeof(port)), 0);
	CU_ASSERT_STRING_EQUAL(host, "*");
	CU_ASSERT_STRING_EQUAL(port, "5061");
	/* No port, or an IPv6 address without brackets' port. */
	CU_ASSERT_EQUAL(sip_bind_split("127.0.0.1", host, sizeof(host), port, sizeof(port)), -1);
	CU_ASSERT_EQUAL(sip_bind_split("[::1]", host, sizeof(host), port, sizeof(port)), -1);
	CU_ASSERT_EQUAL(sip_bind_split("[::1", host, sizeof(host), port, sizeof(port)), -1);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("chan_sip acl", NULL, NULL);
	if (!suite || !CU_add_test(suite, "parse and format", test_parse) ||
	    !CU_add_test(suite, "IPv4 networks and hosts", test_cidr_v4) ||
	    !CU_add_test(suite, "IPv6 networks and mapped sources", test_cidr_v6) ||
	    !CU_add_test(suite, "exclusions: the first entry decides", test_order) ||
	    !CU_add_test(suite, "empty lists, no address, other families", test_empty) ||
	    !CU_add_test(suite, "bind address split into host and port", test_bind_split))
		return 1;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
