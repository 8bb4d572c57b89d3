/*
 * Unit tests of console.conf (core/console_roles.c): roles of users and
 * groups named or numbered, a user's own entry deciding alone, a name that
 * does not exist matching nobody, a bad file refused whole (the running
 * roles and event budget kept), the [events] memory budget and gather
 * period applied (a bad period named by file:line); and
 * that resolving a peer's role makes no NSS lookup (getpwuid_r,
 * getgrgid_r, getpwnam_r, getgrnam_r are counted here, interposed in
 * front of libc's): names are resolved when the file is read, outside the
 * roles lock, since NSS may block.
 */
#include <dlfcn.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/cli.h>

#include "../../core/console_roles.h"
#include "../../core/daemon.h"
#include "../../core/event_internal.h"
#include "../../core/log_internal.h"

/* ---- NSS calls, counted ---- */

static atomic_int nss_calls;

#define INTERPOSE(fn, ent, key_t)                                                                  \
	int fn(key_t key, struct ent *e, char *buf, size_t size, struct ent **res)                 \
	{                                                                                          \
		int (*real)(key_t, struct ent *, char *, size_t, struct ent **) = (int (*)(        \
			key_t, struct ent *, char *, size_t, struct ent **))dlsym(RTLD_NEXT, #fn); \
		atomic_fetch_add(&nss_calls, 1);                                                   \
		return real(key, e, buf, size, res);                                               \
	}

INTERPOSE(getpwuid_r, passwd, uid_t)
INTERPOSE(getgrgid_r, group, gid_t)
INTERPOSE(getpwnam_r, passwd, const char *)
INTERPOSE(getgrnam_r, group, const char *)

/* ---- helpers ---- */

static char dir[PATH_MAX];
static char my_user[256], my_group[256];

static int write_conf(const char *text)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/console.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Nobody has these: no user 23456 or 34567 exists on a test machine. */
#define OTHER_UID  23456u
#define NUMBER_UID 34567u
#define NO_GID     54321u

static void test_roles_by_name_and_number(void)
{
	char text[1024];
	px_err err = {""};
	gid_t mine = getgid();
	int before;

	snprintf(text, sizeof(text),
		 "[general]\ndefault_role = none\n"
		 "[users]\n%s = monitor\n%u = admin\npx-no-such-user-here = admin\n"
		 "[groups]\n%s = operator\n",
		 my_user, NUMBER_UID, my_group);
	CU_ASSERT_EQUAL_FATAL(write_conf(text), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);

	before = atomic_load(&nss_calls);
	/* A user's own entry decides alone, even for the daemon's own user. */
	CU_ASSERT_EQUAL(px_console_role_of(getuid(), mine, NULL, 0), PX_ROLE_MONITOR);
	CU_ASSERT_EQUAL(px_console_role_of(NUMBER_UID, NO_GID, NULL, 0), PX_ROLE_ADMIN);
	/* A group named in the file, primary or supplementary. */
	CU_ASSERT_EQUAL(px_console_role_of(OTHER_UID, mine, NULL, 0), PX_ROLE_OPERATOR);
	CU_ASSERT_EQUAL(px_console_role_of(OTHER_UID, NO_GID, &mine, 1), PX_ROLE_OPERATOR);
	/* Nobody's entry, no group: default_role. A name that does not exist
	 * matches nobody. */
	CU_ASSERT_EQUAL(px_console_role_of(OTHER_UID, NO_GID, NULL, 0), PX_ROLE_NONE);
	/* None of that asked NSS. */
	CU_ASSERT_EQUAL(atomic_load(&nss_calls), before);
}

static void test_bad_file_kept(void)
{
	char path[PATH_MAX + 32];
	px_err err = {""};
	size_t sub, total;

	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nqueue_kb = 1024\ntotal_kb = 2048\n"), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	px_event_budget_get(&sub, &total);
	CU_ASSERT_EQUAL(sub, 1024u << 10);
	CU_ASSERT_EQUAL(total, 2048u << 10);
	/* Without an entry the daemon's own user is admin. */
	CU_ASSERT_EQUAL(px_console_role_of(getuid(), getgid(), NULL, 0), PX_ROLE_ADMIN);

	/* Out of range (line 2), unknown key (line 3): refused whole. */
	CU_ASSERT_EQUAL_FATAL(write_conf("[users]\n12345 = none\n[events]\nqueue_kb = 8\n"), 0);
	CU_ASSERT_EQUAL(px_console_roles_load(&err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "console.conf:4"));
	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nqueue_kb = 64\ncolour = blue\n"), 0);
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_console_roles_load(&err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "console.conf:3"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "colour"));
	px_event_budget_get(&sub, &total);
	CU_ASSERT_EQUAL(sub, 1024u << 10);
	CU_ASSERT_EQUAL(px_console_role_of(getuid(), getgid(), NULL, 0), PX_ROLE_ADMIN);

	/* No file: the defaults, budget too. */
	snprintf(path, sizeof(path), "%s/console.conf", dir);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	px_event_budget_get(&sub, &total);
	CU_ASSERT_EQUAL(sub, PX_EVENT_SUB_BYTES_DEFAULT);
	CU_ASSERT_EQUAL(total, PX_EVENT_TOTAL_BYTES_DEFAULT);
	CU_ASSERT_EQUAL(px_console_role_of(OTHER_UID, NO_GID, NULL, 0), PX_ROLE_MONITOR);
}

static void test_event_gather(void)
{
	px_err err = {""};

	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nevent_gather_ms = 120\n"), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	CU_ASSERT_EQUAL(px_console_event_gather_ms(), 120);
	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nevent_gather_ms = 0\n"), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	CU_ASSERT_EQUAL(px_console_event_gather_ms(), 0);

	/* Above the bound, negative, not a number: refused with file:line,
	 * the running value kept. */
	static const char *const bad[] = {"[events]\nqueue_kb = 64\nevent_gather_ms = 1001\n",
					  "[events]\nqueue_kb = 64\nevent_gather_ms = -5\n",
					  "[events]\nqueue_kb = 64\nevent_gather_ms = soon\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(write_conf(bad[i]), 0);
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(px_console_roles_load(&err), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "console.conf:3"));
		CU_ASSERT_EQUAL(px_console_event_gather_ms(), 0);
	}

	/* A file without the key: the default. */
	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nqueue_kb = 64\n"), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	CU_ASSERT_EQUAL(px_console_event_gather_ms(), PX_EVENT_GATHER_MS_DEFAULT);
	CU_ASSERT_EQUAL(px_console_event_nice(), PX_EVENT_NICE_DEFAULT);

	/* event_nice: 0..19, applied; out of range refused with file:line. */
	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nevent_nice = 0\n"), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	CU_ASSERT_EQUAL(px_console_event_nice(), 0);
	CU_ASSERT_EQUAL_FATAL(write_conf("[events]\nevent_nice = 19\n"), 0);
	CU_ASSERT_EQUAL_FATAL(px_console_roles_load(&err), 0);
	CU_ASSERT_EQUAL(px_console_event_nice(), 19);
	CU_ASSERT_EQUAL_FATAL(write_conf("[general]\n[events]\nevent_nice = 20\n"), 0);
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_console_roles_load(&err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "console.conf:3"));
	CU_ASSERT_EQUAL(px_console_event_nice(), 19);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;
	char conf[PATH_MAX + 32];
	struct passwd *pw = getpwuid(getuid());
	struct group *gr = getgrgid(getgid());

	if (!pw || !gr) {
		fprintf(stderr, "this user or group has no name: skipped\n");
		return 77;
	}
	snprintf(my_user, sizeof(my_user), "%s", pw->pw_name);
	snprintf(my_group, sizeof(my_group), "%s", gr->gr_name);
	snprintf(dir, sizeof(dir), "%s/px-roles-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	snprintf(conf, sizeof(conf), "%s/plexus.conf", dir);
	px_log_init();
	px_daemon_init(dir, conf);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("console roles (console.conf)", NULL, NULL);
	if (!suite ||
	    !CU_add_test(suite, "roles by name and number, no NSS under the lock",
			 test_roles_by_name_and_number) ||
	    !CU_add_test(suite, "bad file refused whole; [events] budget", test_bad_file_kept) ||
	    !CU_add_test(suite,
			 "[events] event_gather_ms, event_nice applied, bad values refused with "
			 "file:line",
			 test_event_gather)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_console_roles_shutdown();
	px_daemon_shutdown();
	snprintf(conf, sizeof(conf), "%s/console.conf", dir);
	unlink(conf);
	rmdir(dir);
	px_log_shutdown();
	return failures != 0;
}
