/*
 * The table-driven half of a G.711 codec module, shared by codec_ulaw and
 * codec_alaw: each includes this once, after defining its own
 * encode_one()/decode_one() (the segment rules of its law). What is here
 * is the same for both laws: a 256-entry decode table and a 65536-entry
 * encode table filled at load, and the translator run functions that
 * convert a packet with one lookup per sample.
 */
#ifndef PLEXUS_CODEC_G711_H
#define PLEXUS_CODEC_G711_H

#include <stddef.h>
#include <stdint.h>

static int16_t decode_table[256];
static uint8_t encode_table[65536]; /* indexed by the sample as uint16_t */

static uint8_t encode_one(int s);
static int16_t decode_one(uint8_t code);

static void g711_fill_tables(void)
{
	for (int i = 0; i < 256; i++)
		decode_table[i] = decode_one((uint8_t)i);
	for (int i = 0; i < 65536; i++)
		encode_table[i] = encode_one((int16_t)(uint16_t)i);
}

static int g711_decode(void *state, const uint8_t *in, size_t inlen, uint8_t *out,
		       size_t outsize)
{
	int16_t *pcm = (int16_t *)(void *)out;

	(void)state;
	if (inlen * 2 > outsize)
		inlen = outsize / 2;
	for (size_t i = 0; i < inlen; i++)
		pcm[i] = decode_table[in[i]];
	return (int)(inlen * 2);
}

static int g711_encode(void *state, const uint8_t *in, size_t inlen, uint8_t *out,
		       size_t outsize)
{
	const int16_t *pcm = (const int16_t *)(const void *)in;
	size_t n = inlen / 2;

	(void)state;
	if (n > outsize)
		n = outsize;
	for (size_t i = 0; i < n; i++)
		out[i] = encode_table[(uint16_t)pcm[i]];
	return (int)n;
}

#endif
