/*
 * app_say: SayDigits, SayNumber and SayAlpha, which speak text to the
 * caller with the prompt set (sounds/prompts.txt): digits one by one
 * (digits/N), a number the English way ("one hundred five", "two thousand
 * twenty": digits/N, digits/hundred, thousand, million, minus), and text
 * letter by letter (letters/x, digits/N, a few symbols). Each word is one
 * prompt played through the core's prompt player; a word whose prompt is
 * missing is a warning, and the rest is still said.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/play.h>

#define WORD_MAX 32
/* The prompt set names numbers up to the millions. */
#define NUMBER_MAX 999999999LL

/* Say one word: 0, or -1 when the channel hung up. */
static int say(px_channel *ch, const char *app, const char *prompt)
{
	px_err err = {""};
	int r = px_play_file(ch, prompt, NULL, &err);

	if (r == PX_PLAY_HANGUP)
		return -1;
	if (r == PX_PLAY_NOFILE || r == PX_PLAY_NOMEDIA)
		px_log_warning("%s: %s: %s", app, px_channel_name(ch), err.msg);
	return 0;
}

/* The prompt for one character, or NULL for one that is not said. */
static const char *char_prompt(char c, bool letters, char *buf, size_t size)
{
	if (isdigit((unsigned char)c)) {
		snprintf(buf, size, "digits/%c", c);
		return buf;
	}
	switch (c) {
	case '*':
		return "digits/star";
	case '#':
		return "digits/pound";
	case '-':
		return letters ? "letters/dash" : "digits/minus";
	default:
		break;
	}
	if (!letters)
		return NULL;
	if (isalpha((unsigned char)c)) {
		snprintf(buf, size, "letters/%c", tolower((unsigned char)c));
		return buf;
	}
	switch (c) {
	case '@':
		return "letters/at";
	case '.':
		return "letters/dot";
	case '/':
		return "letters/slash";
	case ' ':
		return "letters/space";
	default:
		return NULL;
	}
}

static int say_chars(px_channel *ch, const char *app, const char *text, bool letters)
{
	char buf[WORD_MAX];

	for (const char *p = text; *p; p++) {
		const char *prompt = char_prompt(*p, letters, buf, sizeof(buf));
		if (!prompt) {
			px_debug(1, "%s: '%c' is not said", app, *p);
			continue;
		}
		if (say(ch, app, prompt) < 0)
			return -1;
	}
	return 0;
}

static int saydigits_exec(px_channel *ch, const char *data)
{
	if (!*data) {
		px_log_warning("SayDigits requires an argument: digits");
		return 0;
	}
	return say_chars(ch, "SayDigits", data, false);
}

static int sayalpha_exec(px_channel *ch, const char *data)
{
	if (!*data) {
		px_log_warning("SayAlpha requires an argument: text");
		return 0;
	}
	return say_chars(ch, "SayAlpha", data, true);
}

/* The words of n (0 <= n <= NUMBER_MAX) into words[]: their count. */
static int number_words(long long n, char words[][WORD_MAX], int max)
{
	static const struct {
		long long unit;
		const char *name;
	} groups[] = {{1000000, "digits/million"}, {1000, "digits/thousand"}};
	int k = 0;

	if (n == 0) {
		snprintf(words[k++], WORD_MAX, "digits/0");
		return k;
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (n >= groups[g].unit) {
			k += number_words(n / groups[g].unit, words + k, max - k);
			if (k < max)
				snprintf(words[k++], WORD_MAX, "%s", groups[g].name);
			n %= groups[g].unit;
		}
	}
	if (n >= 100 && k < max - 1) {
		snprintf(words[k++], WORD_MAX, "digits/%lld", n / 100);
		snprintf(words[k++], WORD_MAX, "digits/hundred");
		n %= 100;
	}
	if (n >= 20 && k < max) {
		snprintf(words[k++], WORD_MAX, "digits/%lld", n / 10 * 10);
		n %= 10;
	}
	if (n > 0 && k < max)
		snprintf(words[k++], WORD_MAX, "digits/%lld", n);
	return k;
}

static int saynumber_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *argv[2], *arg, *end;
	char words[24][WORD_MAX];
	long long n;
	int argc, k = 0;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 2);
	arg = argc > 0 ? px_app_trim(argv[0]) : "";
	errno = 0;
	n = strtoll(arg, &end, 10);
	if (!*arg || *end || errno || n > NUMBER_MAX || n < -NUMBER_MAX) {
		px_log_warning("SayNumber: '%s' is not a whole number between %lld and %lld", arg,
			       -NUMBER_MAX, NUMBER_MAX);
		free(copy);
		return 0;
	}
	if (argc > 1 && *px_app_trim(argv[1]))
		px_debug(1, "SayNumber: gender '%s' does not change English", argv[1]);
	free(copy);
	if (n < 0) {
		snprintf(words[k++], WORD_MAX, "digits/minus");
		n = -n;
	}
	k += number_words(n, words + k, (int)(sizeof(words) / sizeof(words[0])) - k);
	for (int i = 0; i < k; i++)
		if (say(ch, "SayNumber", words[i]) < 0)
			return -1;
	return 0;
}

static const struct px_app apps[] = {
	{
		.name = "SayDigits",
		.synopsis = "Say Digits",
		.syntax = "SayDigits(digits)",
		.description = "Says each digit (0-9), '*' (star), '#' (pound) and '-' (minus) in\n"
			       "turn, with the prompts digits/N; other characters are skipped.\n"
			       "The channel is not answered first (answer it, or use Progress).\n"
			       "A missing prompt is a warning; the rest is still said.",
		.exec = saydigits_exec,
	},
	{
		.name = "SayNumber",
		.synopsis = "Say Number",
		.syntax = "SayNumber(digits[,gender])",
		.description =
			"Says a whole number in English words: 105 is \"one hundred five\",\n"
			"2020 \"two thousand twenty\", -3 \"minus three\"; up to 999 999 999 "
			"either\n"
			"way. gender is accepted and ignored (English has none for numbers). A\n"
			"value that is not a whole number in range is a warning, and nothing is\n"
			"said.",
		.exec = saynumber_exec,
	},
	{
		.name = "SayAlpha",
		.synopsis = "Say Alpha",
		.syntax = "SayAlpha(text)",
		.description =
			"Spells text: letters (letters/a ... letters/z, either case), digits,\n"
			"'@' (at), '.' (dot), '-' (dash), '/' (slash), ' ' (space), '*' and\n"
			"'#'; other characters are skipped.",
		.exec = sayalpha_exec,
	},
};
#define NAPPS (sizeof(apps) / sizeof(apps[0]))

static int say_load(px_module *self)
{
	px_err err = {""};

	for (size_t i = 0; i < NAPPS; i++) {
		if (px_app_register(self, &apps[i], &err) < 0) {
			px_log_error("app_say: %s", err.msg);
			return -1;
		}
	}
	return 0;
}

static int say_unload(px_module *self)
{
	(void)self;
	for (size_t i = NAPPS; i-- > 0;)
		px_app_unregister(&apps[i]);
	return 0;
}

PX_MODULE(.name = "app_say", .description = "SayDigits, SayNumber, SayAlpha",
	  .kind = PX_MODULE_APPLICATION, .load = say_load, .unload = say_unload);
