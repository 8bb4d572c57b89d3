/*
 * bench-lua: the cost of the Lua layer per call, outside "make check". It
 * loads the real pbx_lua module through the loader with generated
 * dialplans (a trivial Dial extension, a 50-line routing function, and the
 * trivial extension inside an extensions.lua of 5000 extensions, to show
 * the cost is flat in the size of the file) and runs the dialplan on
 * channels of a do-nothing technology, with a Dial that returns at once.
 * Prints, per dialplan: µs of CPU per call (exec of the extension), and the
 * KiB the Lua state holds (shared by up to 64 concurrent calls). Usage:
 * bench/lua_bench [calls] (default 200000), from the build directory.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/dialplan.h>
#include <plexus/log.h>

#include "../core/cli_internal.h"
#include "../core/daemon.h"
#include "../core/func_internal.h"
#include "../core/loader.h"
#include "../core/log_internal.h"

static int ok(px_channel *ch)
{
	return 0;
}
static int call(px_channel *ch, int t)
{
	return 0;
}
static px_channel *request(const char *dest, px_channel *req, int *cause)
{
	return NULL;
}
static const struct px_channel_tech tech = {
	.type = "Bench", .request = request, .call = call, .answer = ok, .hangup = ok};

static int dial_exec(px_channel *ch, const char *data)
{
	px_channel_var_set(ch, "DIALSTATUS", "ANSWER");
	return 0;
}
static const struct px_app dial = {.name = "Dial", .synopsis = "bench", .exec = dial_exec};

static char dir[] = "/tmp/plexus-bench-lua-XXXXXX";

static const char *trivial =
	"extensions = { default = { [\"_X.\"] = function(c, e) app.Dial(\"SIP/\" .. e) end } }\n";

static const char *routing =
	"local prefixes = { ['0049'] = 'de', ['0033'] = 'fr', ['0044'] = 'uk', ['001'] = 'us' }\n"
	"local trunks = { de = 'SIP/trunk-de', fr = 'SIP/trunk-fr', uk = 'SIP/trunk-uk',\n"
	"                 us = 'SIP/trunk-us' }\n"
	"local blocked = { ['0900'] = true, ['0190'] = true }\n"
	"local function country(num)\n"
	"  for p, c in pairs(prefixes) do\n"
	"    if num:sub(1, #p) == p then return c end\n"
	"  end\n"
	"  return nil\n"
	"end\n"
	"local function normalize(num)\n"
	"  num = num:gsub('[^%d+]', '')\n"
	"  if num:sub(1, 1) == '+' then num = '00' .. num:sub(2) end\n"
	"  return num\n"
	"end\n"
	"local function route(context, exten)\n"
	"  local num = normalize(exten)\n"
	"  if blocked[num:sub(1, 4)] then\n"
	"    channel.DIALSTATUS = 'BLOCKED'\n"
	"    return\n"
	"  end\n"
	"  local cid = channel['CALLERID(num)']:get()\n"
	"  if cid == '' then channel.CALLERID('num'):set('1000') end\n"
	"  local c = country(num)\n"
	"  local target\n"
	"  if #num == 4 and num:match('^1') then\n"
	"    target = 'SIP/' .. num\n"
	"  elseif c then\n"
	"    target = trunks[c] .. '/' .. num\n"
	"    channel.ROUTE = c\n"
	"  else\n"
	"    target = trunks.de .. '/' .. num\n"
	"    channel.ROUTE = 'default'\n"
	"  end\n"
	"  local hour = 12\n"
	"  local open = hour >= 8 and hour < 18\n"
	"  if not open then\n"
	"    channel.AFTER_HOURS = '1'\n"
	"  end\n"
	"  local timeout = open and 30 or 15\n"
	"  channel.__ACCOUNT = 'acct-' .. (cid ~= '' and cid or '1000')\n"
	"  app.Dial(target, timeout)\n"
	"  local status = channel.DIALSTATUS:get()\n"
	"  if status ~= 'ANSWER' then\n"
	"    channel.FAILED = status\n"
	"  end\n"
	"end\n"
	"extensions = { default = { ['_X.'] = route, ['_+X.'] = route } }\n";

static void write_file(const char *name, const char *text, int big)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	if (big) {
		fputs("for i = 1, 100 do\n  local ctx = {}\n  for j = 1, 50 do\n"
		      "    ctx[tostring(1000 + j)] = function(c, e)\n"
		      "      local x = c .. e\n      app.Dial('SIP/' .. x .. '",
		      f);
		fputs("')\n    end\n  end\n  extensions['ctx' .. i] = ctx\nend\n", f);
	}
	fclose(f);
}

static long show_number(const char *label)
{
	char *out = NULL;
	long n = -1;

	if (px_cli_run_capture("dialplan show", &out) == PX_CLI_SUCCESS) {
		char *p = strstr(out, label);
		if (p) {
			while (p > out && p[-1] == ' ')
				p--;
			while (p > out && p[-1] >= '0' && p[-1] <= '9')
				p--;
			n = strtol(p, NULL, 10);
		}
	}
	free(out);
	return n;
}

/* The total of the "-= N extensions (M contexts) =-" line. */
static long extensions_count(void)
{
	char *out = NULL, *p;
	long n = -1;

	if (px_cli_run_capture("dialplan show", &out) == PX_CLI_SUCCESS &&
	    (p = strstr(out, "\n-= ")))
		n = strtol(p + 4, NULL, 10);
	free(out);
	return n;
}

static double cpu_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void measure(const char *what, const char *text, int big, int n)
{
	px_err err = {""};
	px_channel *ch;
	double a, b;

	write_file("extensions.lua", text, big);
	if (px_loader_reload("pbx_lua", &err) < 0) {
		fprintf(stderr, "reload: %s\n", err.msg);
		exit(1);
	}
	ch = px_channel_alloc(&tech, "Bench/1000", NULL, NULL);
	px_channel_set_caller(ch, "1000", "Bench");
	px_channel_set_dialplan(ch, "default", "004930123456");
	px_dialplan_run(ch); /* warm: the state exists */
	a = cpu_us();
	for (int i = 0; i < n; i++) {
		/* exec hangs the channel up at the end of each call (fallthrough) */
		px_channel *c = px_channel_alloc(&tech, "Bench/1000", NULL, NULL);
		px_channel_set_dialplan(c, "default", "004930123456");
		px_dialplan_run(c);
		px_channel_unref(c);
	}
	b = cpu_us();
	px_channel_hangup(ch, 16);
	px_channel_unref(ch);
	printf("%-34s %8.2f us/call   %6ld KiB per Lua state (%ld extensions in the file)\n",
	       what, (b - a) / n, show_number("KiB"), extensions_count());
}

static void measure_alloc_overhead(int n)
{
	double a = cpu_us(), b;

	for (int i = 0; i < n; i++) {
		px_channel *c = px_channel_alloc(&tech, "Bench/1000", NULL, NULL);
		px_channel_set_dialplan(c, "default", "004930123456");
		px_channel_hangup(c, 16);
		px_channel_unref(c);
	}
	b = cpu_us();
	printf("%-34s %8.2f us/call   (subtract from the lines above)\n",
	       "channel alloc + hangup, no Lua", (b - a) / n);
}

static int rm(const char *p, const struct stat *s, int t, struct FTW *f)
{
	return remove(p);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200000;
	char so[PATH_MAX], link[PATH_MAX + 32], conf[PATH_MAX + 32], real[PATH_MAX];
	struct px_log_sinks sinks = {.syslog_facility = -1};
	px_err err = {""};

	if (n <= 0 || !mkdtemp(dir))
		return 1;
	px_log_init();
	px_log_configure(&sinks, &err);
	snprintf(so, sizeof(so), "%s",
		 getenv("PBX_LUA_SO") ? getenv("PBX_LUA_SO") : "modules/.libs/pbx_lua.so");
	if (!realpath(so, real)) {
		fprintf(stderr, "%s not found: run from the build directory or set PBX_LUA_SO\n",
			so);
		return 1;
	}
	snprintf(link, sizeof(link), "%s/pbx_lua.so", dir);
	snprintf(conf, sizeof(conf), "%s/plexus.conf", dir);
	if (symlink(real, link) < 0)
		return 1;
	px_daemon_init(dir, conf);
	write_file("extensions.lua", trivial, 0);
	if (px_loader_init(dir, &err) < 0 || px_func_builtin_register(&err) < 0 ||
	    px_channel_tech_register(NULL, &tech, &err) < 0 ||
	    px_app_register(NULL, &dial, &err) < 0 || px_loader_load("pbx_lua", &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	printf("pbx_lua per-call cost, %d calls each, one thread:\n", n);
	measure_alloc_overhead(n);
	measure("trivial Dial extension", trivial, 0, n);
	measure("50-line routing function", routing, 0, n);
	measure("trivial, in a 5000-extension file", trivial, 1, n);
	measure("routing, in a 5000-extension file", routing, 1, n);
	px_loader_shutdown();
	px_func_builtin_unregister();
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
