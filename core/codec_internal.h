/*
 * The codec registry seen from the core: the linear formats and resamplers
 * the core registers itself (with the media engine's start and stop), the
 * console commands, and the test signal used to measure translators.
 */
#ifndef PLEXUS_CODEC_INTERNAL_H
#define PLEXUS_CODEC_INTERNAL_H

#include <stdint.h>

#include <plexus/cli.h>
#include <plexus/codec.h>

/* Register slin, slin16, slin48 and the resamplers between them. */
int px_codec_init(px_err *err);
void px_codec_shutdown(void);

/* 1 kHz + 440 Hz at a speech-like level; offset in samples, for continuity. */
void px_codec_test_signal(int16_t *out, unsigned n, unsigned rate, unsigned offset);

enum px_cli_status px_codec_cmd_show_translation(px_cli *cli, int argc, char **argv);
enum px_cli_status px_codec_cmd_show_codecs(px_cli *cli, int argc, char **argv);

#endif
