/* word: eight bytes at a time. Byte tests on a 64-bit word, for scanners
 * that look for one of a few bytes in short strings, where a libc call
 * costs more than the bytes. */
#ifndef CANCELPROXY_WORD_H
#define CANCELPROXY_WORD_H

#include <stdint.h>
#include <string.h>

#define WORD_ONES	0x0101010101010101ULL
#define WORD_HIGHS	0x8080808080808080ULL

/* The eight bytes at p, unaligned. */
static inline uint64_t
word_load(const char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

/* A high bit set for each byte of x equal to c: nonzero when one is. The
 * lowest bit set is exact; bits above it may be false. */
static inline uint64_t
word_has_byte(uint64_t x, unsigned char c)
{
	uint64_t y = x ^ (c * WORD_ONES);

	return (y - WORD_ONES) & ~y & WORD_HIGHS;
}

/* The same for bytes below c (c at most 0x80). */
static inline uint64_t
word_has_below(uint64_t x, unsigned char c)
{
	return (x - c * WORD_ONES) & ~x & WORD_HIGHS;
}

#endif
