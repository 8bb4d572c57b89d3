/*
 * chan_sip's console commands: "sip show endpoints", "sip show endpoint
 * NAME" (with its registered contacts from the location service), "sip
 * show settings" (listeners, TLS, NAT, overload) and "sip set debug
 * on|off" (every SIP message to the log).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <plexus/cli.h>
#include <plexus/location.h>

#include "sip.h"

static void codecs_string(const struct sip_endpoint *ep, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < ep->ncodecs && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "",
					 ep->codecs[i]);
}

static enum px_cli_status cmd_show_endpoints(px_cli *cli, int argc, char **argv)
{
	struct sip_config *cfg;
	char codecs[64];

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	cfg = sip_stack_config();
	if (!cfg)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "%-20s %-16s %-10s %-5s %-8s %-13s %s\n", "Endpoint", "Context",
		      "Codecs", "NAT", "Contacts", "Status", "CallerID");
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		const struct sip_endpoint *ep = &cfg->endpoints[i];
		struct px_binding b[1];
		size_t n = px_location_lookup(ep->name, b, 1);
		char status[32] = "Unmonitored";
		codecs_string(ep, codecs, sizeof(codecs));
		if (ep->qualify && n)
			sip_qualify_summary(ep->name, status, sizeof(status));
		else if (ep->qualify)
			snprintf(status, sizeof(status), "-");
		px_cli_printf(cli, "%-20s %-16s %-10s %-5s %-8zu %-13s \"%s\" <%s>\n", ep->name,
			      ep->context, codecs, ep->nat ? "yes" : "no", n, status,
			      ep->callerid_name, ep->callerid_num);
	}
	px_cli_printf(cli, "%zu endpoint%s\n", cfg->nendpoints, cfg->nendpoints == 1 ? "" : "s");
	sip_config_unref(cfg);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_show_endpoint(px_cli *cli, int argc, char **argv)
{
	struct sip_config *cfg;
	const struct sip_endpoint *ep;
	struct px_binding b[16];
	size_t n;
	char codecs[64], transports[64];
	time_t now = time(NULL);

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	cfg = sip_stack_config();
	if (!cfg)
		return PX_CLI_FAILURE;
	ep = sip_config_endpoint(cfg, argv[3]);
	if (!ep) {
		px_cli_printf(cli, "Unable to find endpoint '%s'\n", argv[3]);
		sip_config_unref(cfg);
		return PX_CLI_FAILURE;
	}
	codecs_string(ep, codecs, sizeof(codecs));
	px_cli_printf(cli, " Endpoint:      %s\n", ep->name);
	px_cli_printf(cli, " Defined at:    %s:%d\n", ep->file, ep->line);
	px_cli_printf(cli, " Auth user:     %s\n", ep->username);
	px_cli_printf(cli, " Context:       %s\n", ep->context);
	px_cli_printf(cli, " Caller ID:     \"%s\" <%s>\n", ep->callerid_name, ep->callerid_num);
	px_cli_printf(cli, " Codecs:        %s\n", codecs);
	px_cli_printf(
		cli, " DTMF mode:     %s\n",
		(const char *const[]){"rfc4733", "info", "inband", "auto"}[ep->dtmf_mode & 3]);
	px_cli_printf(cli, " NAT:           %s\n", ep->nat ? "yes" : "no");
	sip_transports_format(ep->transports, transports, sizeof(transports));
	px_cli_printf(cli, " Transport:     %s\n", transports);
	px_cli_printf(cli, " Max contacts:  %d\n", ep->max_contacts);
	if (ep->qualify)
		px_cli_printf(cli, " Qualify:       every %d s, timeout %d ms\n", ep->qualify,
			      ep->qualify_timeout_ms);
	else
		px_cli_printf(cli, " Qualify:       off\n");
	n = px_location_lookup(ep->name, b, sizeof(b) / sizeof(b[0]));
	px_cli_printf(cli, " Contacts:      %zu\n", n);
	for (size_t i = 0; i < n && i < sizeof(b) / sizeof(b[0]); i++) {
		char status[32] = "";
		if (ep->qualify)
			sip_qualify_status(ep->name, b[i].contact, status, sizeof(status));
		if (!sip_binding_allowed(ep, &b[i]))
			snprintf(status, sizeof(status), "not called (transport)");
		else if (sip_flow_binding_gone(ep->name, &b[i]))
			snprintf(status, sizeof(status), "not called (connection gone)");
		px_cli_printf(cli, "   %s via %s, expires in %llds, %s%s%s\n", b[i].contact,
			      b[i].received, (long long)(b[i].expires_at - now), b[i].user_agent,
			      status[0] ? ", " : "", status);
	}
	sip_config_unref(cfg);
	return PX_CLI_SUCCESS;
}

static void acl_string(const struct sip_acl_entry *acl, size_t n, char *buf, size_t size)
{
	size_t used = 0;
	char entry[64];

	snprintf(buf, size, "-");
	for (size_t i = 0; i < n && used < size; i++) {
		sip_acl_format(&acl[i], entry, sizeof(entry));
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", entry);
	}
}

static enum px_cli_status cmd_show_settings(px_cli *cli, int argc, char **argv)
{
	struct sip_config *cfg;
	char nets[512], overload[256];

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	cfg = sip_stack_config();
	if (!cfg)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, " Bind:          %s (%s%s%s)\n", cfg->bind, cfg->udp ? "udp" : "",
		      cfg->udp && cfg->tcp ? ", " : "", cfg->tcp ? "tcp" : "");
	if (sip.tls_running) {
		px_cli_printf(cli, " TLS:           on, %s, certificates in %s, verify peer %s\n",
			      cfg->tls_bind, cfg->tls_cert_dir,
			      cfg->tls_verify_peer ? "yes" : "no");
		px_cli_printf(cli, " TLS versions:  1.%d and later\n", sip.tls_min_version);
	} else if (cfg->tls_problem[0])
		px_cli_printf(cli, " TLS:           off: %s\n", cfg->tls_problem);
	else if (cfg->tls)
		px_cli_printf(cli, " TLS:           off: not listening on %s (see the log)\n",
			      cfg->tls_bind);
	else
		px_cli_printf(cli, " TLS:           off (no tls_bind)\n");
	px_cli_printf(cli, " Realm:         %s\n", cfg->realm);
	px_cli_printf(cli, " RTP address:   %s\n",
		      cfg->rtp_address[0] ? cfg->rtp_address : "(bind)");
	px_cli_printf(cli, " External SIP:  %s\n",
		      cfg->external_signaling[0] ? cfg->external_signaling : "-");
	px_cli_printf(cli, " External RTP:  %s\n",
		      cfg->external_media[0] ? cfg->external_media : "-");
	acl_string(cfg->local_net, cfg->nlocal_net, nets, sizeof(nets));
	px_cli_printf(cli, " Local nets:    %s\n", nets);
	sip_overload_describe(overload, sizeof(overload));
	px_cli_printf(cli, " Overload:      %s\n", overload);
	sip_config_unref(cfg);
	return PX_CLI_SUCCESS;
}

static void complete_endpoint(px_cli_completion *c, int argc, char **argv, int pos)
{
	struct sip_config *cfg;

	if (pos != 3 || !(cfg = sip_stack_config()))
		return;
	for (size_t i = 0; i < cfg->nendpoints; i++)
		px_cli_complete_add(c, cfg->endpoints[i].name);
	sip_config_unref(cfg);
}

static void do_debug(void *arg)
{
	sip_set_debug(*(bool *)arg);
}

static enum px_cli_status cmd_set_debug(px_cli *cli, int argc, char **argv)
{
	bool on;

	if (argc != 4 || px_parse_bool(argv[3], &on) < 0)
		return PX_CLI_SHOWUSAGE;
	if (sip_call_sync(do_debug, &on) < 0)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "SIP debugging %s\n", on ? "enabled" : "disabled");
	return PX_CLI_SUCCESS;
}

static void complete_on_off(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3) {
		px_cli_complete_add(c, "on");
		px_cli_complete_add(c, "off");
	}
}

static const struct px_cli_command commands[] = {
	{"sip show endpoints", "List the SIP endpoints",
	 "Usage: sip show endpoints\n"
	 "       Lists the endpoints of sip.conf with their context, codecs and number of\n"
	 "       registered contacts.",
	 cmd_show_endpoints, NULL, PX_ROLE_MONITOR},
	{"sip show endpoint", "Show one SIP endpoint",
	 "Usage: sip show endpoint <name>\n"
	 "       Shows an endpoint's settings (the transports it may use among them)\n"
	 "       and its registered contacts, marking those not called.",
	 cmd_show_endpoint, complete_endpoint, PX_ROLE_MONITOR},
	{"sip show settings", "Show chan_sip's listeners, TLS, NAT and overload settings",
	 "Usage: sip show settings\n"
	 "       Shows where chan_sip listens, whether TLS is on (or why it is off) and the\n"
	 "       oldest TLS version it accepts, the external addresses and local\n"
	 "       networks of NAT handling, and the overload control: what it watches,\n"
	 "       whether it refuses new calls now and how many it refused.",
	 cmd_show_settings, NULL, PX_ROLE_MONITOR},
	{"sip set debug", "Enable or disable SIP message logging",
	 "Usage: sip set debug on|off\n"
	 "       Writes every SIP message sent and received to the log (notice level).",
	 cmd_set_debug, complete_on_off, PX_ROLE_ADMIN},
};

int sip_commands_register(px_module *self, px_err *err)
{
	return px_cli_register(self, commands, sizeof(commands) / sizeof(commands[0]), err);
}

void sip_commands_unregister(void);
void sip_commands_unregister(void)
{
	px_cli_unregister(commands, sizeof(commands) / sizeof(commands[0]));
}
