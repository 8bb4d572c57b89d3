/*
 * The dialplan's view of how a call was forwarded before it reached us:
 * REDIRECTING(from-num|from-name|reason|count), read from the Diversion
 * (RFC 5806) or, without one, History-Info (RFC 7044) headers a trunk's
 * call came with (kept by call.c as SIP_DIVERSION and SIP_HISTORY_INFO;
 * those variables are also what is passed on when the call leaves through
 * a trunk). The names follow Asterisk's REDIRECTING function. The most
 * recent diversion is the first Diversion entry, or the last History-Info
 * entry but one (the last is the target that was finally reached).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>

#include <plexus/func.h>

#include "sip.h"

/* Split value at commas outside <...> and quotes; at most max entries,
 * each copied (trimmed) into out[i]. Returns the count. */
static int split_entries(const char *value, char out[][512], int max)
{
	int n = 0, depth = 0;
	bool quoted = false;
	const char *start = value;

	for (const char *p = value;; p++) {
		if (*p == '"' && (p == value || p[-1] != '\\'))
			quoted = !quoted;
		else if (!quoted && *p == '<')
			depth++;
		else if (!quoted && *p == '>' && depth > 0)
			depth--;
		if (*p && (*p != ',' || quoted || depth))
			continue;
		while (start < p && (*start == ' ' || *start == '\t'))
			start++;
		size_t len = (size_t)(p - start);
		while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
			len--;
		if (len && n < max)
			snprintf(out[n++], sizeof(out[0]), "%.*s", (int)len, start);
		if (!*p)
			break;
		start = p + 1;
	}
	return n;
}

struct diversion {
	char num[80], name[80], reason[40];
	int counter; /* the entry's counter=, 1 without one */
};

/* One entry: a name-addr with parameters ("\"Bob\" <sip:100@h>;reason=busy"). */
static bool parse_entry(const char *text, struct diversion *d)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	sip_from_t *a = sip_from_make(home, text);
	bool ok = a && a->a_url->url_user;

	memset(d, 0, sizeof(*d));
	d->counter = 1;
	if (ok) {
		const char *r = msg_params_find(a->a_params, "reason=");
		const char *c = msg_params_find(a->a_params, "counter=");
		snprintf(d->num, sizeof(d->num), "%s", a->a_url->url_user);
		if (a->a_display) {
			const char *s = a->a_display;
			size_t len = strlen(s);
			if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
				s++;
				len -= 2;
			}
			snprintf(d->name, sizeof(d->name), "%.*s", (int)len, s);
		}
		if (r) {
			size_t len = strlen(r);
			if (len >= 2 && r[0] == '"' && r[len - 1] == '"') {
				r++;
				len -= 2;
			}
			snprintf(d->reason, sizeof(d->reason), "%.*s", (int)len, r);
		}
		if (c && atoi(c) > 0)
			d->counter = atoi(c);
	}
	su_home_deinit(home);
	return ok;
}

/* RFC 4458's cause= of a History-Info target URI, as a Diversion reason. */
static const char *cause_reason(const char *entry)
{
	const char *c = strstr(entry, "cause=");
	int code = c ? atoi(c + 6) : 0;

	switch (code) {
	case 404:
		return "unknown";
	case 302:
		return "unconditional";
	case 486:
		return "user-busy";
	case 408:
	case 480:
		return "no-answer";
	case 503:
		return "unavailable";
	case 487:
		return "deflection";
	default:
		return code ? "unknown" : "";
	}
}

/* The most recent diversion of the channel, and how many there were. */
static bool channel_diversion(px_channel *ch, struct diversion *d, int *count)
{
	char value[1024], entries[16][512];
	int n;

	*count = 0;
	if (px_channel_var_get(ch, "SIP_DIVERSION", value, sizeof(value)) == 0 && value[0]) {
		n = split_entries(value, entries, 16);
		for (int i = 0; i < n; i++) {
			struct diversion e;
			if (parse_entry(entries[i], &e))
				*count += e.counter;
		}
		return n > 0 && parse_entry(entries[0], d);
	}
	if (px_channel_var_get(ch, "SIP_HISTORY_INFO", value, sizeof(value)) == 0 && value[0]) {
		n = split_entries(value, entries, 16);
		if (n < 2)
			return false;
		*count = n - 1;
		if (!parse_entry(entries[n - 2], d))
			return false;
		/* The reason is on the entry that was diverted to (RFC 7044). */
		snprintf(d->reason, sizeof(d->reason), "%s", cause_reason(entries[n - 1]));
		return true;
	}
	return false;
}

static int redirecting_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	struct diversion d;
	int count;
	bool have;

	if (!ch)
		return px_err_set(err, "REDIRECTING: needs a channel");
	have = channel_diversion(ch, &d, &count);
	if (!strcasecmp(args, "count")) {
		snprintf(buf, size, "%d", count);
		return 0;
	}
	buf[0] = '\0';
	if (!strcasecmp(args, "from-num")) {
		if (have)
			snprintf(buf, size, "%s", d.num);
	} else if (!strcasecmp(args, "from-name")) {
		if (have)
			snprintf(buf, size, "%s", d.name);
	} else if (!strcasecmp(args, "reason")) {
		if (have)
			snprintf(buf, size, "%s", d.reason);
	} else {
		return px_err_set(err,
				  "REDIRECTING: unknown field '%s' (from-num, from-name, reason "
				  "or count)",
				  args);
	}
	return 0;
}

static const struct px_func redirecting_func = {
	.name = "REDIRECTING",
	.synopsis = "How a call from a trunk was forwarded before it came in",
	.syntax = "REDIRECTING(from-num|from-name|reason|count)",
	.description = "Reads the Diversion headers of a call from a SIP trunk (or its\n"
		       "History-Info when it has no Diversion): from-num and from-name are the\n"
		       "party that forwarded it last, reason why (unconditional, user-busy,\n"
		       "no-answer ...), count how many times it was forwarded. Empty (count 0)\n"
		       "for a call that was not forwarded. The headers themselves are in\n"
		       "${SIP_DIVERSION} and ${SIP_HISTORY_INFO}, and are passed on when the\n"
		       "call leaves through a trunk.",
	.read = redirecting_read,
};

int sip_redirecting_register(px_module *self, px_err *err)
{
	return px_func_register(self, &redirecting_func, err);
}

void sip_redirecting_unregister(void)
{
	px_func_unregister(&redirecting_func);
}
