/*
 * app_playback: the Playback application. It plays one or more prompts to
 * the caller, one after another, through the core's prompt player
 * (plexus/play.h: the file variant that suits the channel's codec, read on
 * the session thread, sent by the media worker), answering the call first
 * unless told not to, and leaves in PLAYBACKSTATUS whether every file
 * could be played. A missing or unreadable file is a warning naming it;
 * the call goes on.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/play.h>

static int playback_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *argv[2], *files, *file, *save = NULL;
	bool skip = false, noanswer = false, failed = false;
	int argc, rc = 0;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 2);
	files = argc > 0 ? px_app_trim(argv[0]) : "";
	if (!*files) {
		px_log_warning("Playback requires an argument: filename[&filename2...][,options]");
		px_channel_var_set(ch, "PLAYBACKSTATUS", "FAILED");
		free(copy);
		return 0;
	}
	if (argc > 1) {
		char *opt, *osave = NULL;
		for (opt = strtok_r(argv[1], "&| ", &osave); opt;
		     opt = strtok_r(NULL, "&| ", &osave)) {
			if (!strcasecmp(opt, "skip"))
				skip = true;
			else if (!strcasecmp(opt, "noanswer"))
				noanswer = true;
			else
				px_log_warning("Playback: unknown option '%s' (skip, noanswer)",
					       opt);
		}
	}
	if (px_channel_state(ch) != PX_STATE_UP) {
		if (skip) {
			/* Not up, and told to play only to an answered call. */
			px_channel_var_set(ch, "PLAYBACKSTATUS", "SUCCESS");
			free(copy);
			return 0;
		}
		if (!noanswer && px_channel_answer(ch) < 0) {
			px_channel_var_set(ch, "PLAYBACKSTATUS", "FAILED");
			free(copy);
			return -1;
		}
	}
	for (file = strtok_r(files, "&", &save); file; file = strtok_r(NULL, "&", &save)) {
		px_err err = {""};
		int r;

		file = px_app_trim(file);
		if (!*file)
			continue;
		r = px_play_file(ch, file, NULL, &err);
		if (r == PX_PLAY_HANGUP) {
			rc = -1;
			break;
		}
		if (r == PX_PLAY_NOFILE || r == PX_PLAY_NOMEDIA) {
			px_log_warning("Playback failed on %s for %s: %s", px_channel_name(ch),
				       file, err.msg);
			failed = true;
		}
	}
	px_channel_var_set(ch, "PLAYBACKSTATUS", failed ? "FAILED" : "SUCCESS");
	free(copy);
	return rc;
}

static const struct px_app playback_app = {
	.name = "Playback",
	.synopsis = "Play a file",
	.syntax = "Playback(filename[&filename2[&...]][,options])",
	.description =
		"Plays each file in turn to the caller; digits pressed meanwhile are ignored\n"
		"(Background is the one that listens). A file is named without extension\n"
		"(digits/5, welcome) and looked up in sounds.conf's directories, under the\n"
		"channel's language (LANGUAGE variable, else sounds.conf's language) first;\n"
		"of its variants the one that suits the channel's codec is played: .ulaw\n"
		"for PCMU, .alaw for PCMA, .sln16 for G.722 and Opus, else .wav (any rate\n"
		"and channel count). An absolute path, with or without extension, names a\n"
		"file directly.\n"
		"Options:\n"
		"  skip      do not play (and do not answer) when the call is not answered\n"
		"  noanswer  play without answering (early media, after Progress)\n"
		"Without them an unanswered call is answered first.\n"
		"Sets PLAYBACKSTATUS: SUCCESS when every file was played, FAILED when one\n"
		"could not be found or read (a warning names it; the other files still\n"
		"play and the dialplan goes on). A hangup during playback ends the call.",
	.exec = playback_exec,
};

static int playback_load(px_module *self)
{
	px_err err = {""};

	if (px_app_register(self, &playback_app, &err) < 0) {
		px_log_error("app_playback: %s", err.msg);
		return -1;
	}
	return 0;
}

static int playback_unload(px_module *self)
{
	(void)self;
	px_app_unregister(&playback_app);
	return 0;
}

PX_MODULE(.name = "app_playback", .description = "Playback: play sound files to a channel",
	  .kind = PX_MODULE_APPLICATION, .load = playback_load, .unload = playback_unload);
