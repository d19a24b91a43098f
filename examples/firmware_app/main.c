/* Runs two instances of the digits model (caller-owned arenas) and a two-input, two-output model
 * (static arena), printing every output byte as hex for the host to compare with the reference:
 *     digits <instance> <sample> <hex>
 *     two <output> <hex>
 * then "done"; exit code 0, or 1 when an API call fails. */
#include <stddef.h>
#include <stdint.h>

#include "app_inputs.h" /* DIGITS_SAMPLES, digits_inputs[][DIGITS_INPUT_BYTES], two_in0[], two_in1[] */
#include "digits.h"
#include "platform.h"
#include "two.h"

/* One arena per instance, where the application wants it: here one in .bss, one in .data. */
static int8_t arena_a[DIGITS_ARENA_BYTES] __attribute__((aligned(DIGITS_ARENA_ALIGN)));
static int8_t arena_b[DIGITS_ARENA_BYTES + DIGITS_ARENA_ALIGN] __attribute__((aligned(DIGITS_ARENA_ALIGN))) = {1};

static void put_hex(const char *tag, int a, int b, const int8_t *data, int n)
{
    static const char digits[] = "0123456789abcdef";
    char line[16 + 2 * 4096 + 8];
    int k = 0;
    const char *t;
    for (t = tag; *t; t++) line[k++] = *t;
    line[k++] = ' ';
    line[k++] = (char)('0' + a);
    line[k++] = ' ';
    if (b >= 100) line[k++] = (char)('0' + b / 100);
    if (b >= 10) line[k++] = (char)('0' + b / 10 % 10);
    line[k++] = (char)('0' + b % 10);
    line[k++] = ' ';
    for (int i = 0; i < n && i < 4096; i++) {
        line[k++] = digits[((uint8_t)data[i]) >> 4];
        line[k++] = digits[((uint8_t)data[i]) & 15];
    }
    line[k++] = '\n';
    line[k] = 0;
    platform_write(line);
}

int main(void)
{
    digits_ctx a, b;
    int8_t out[DIGITS_OUTPUT_BYTES];

    /* A misaligned or short arena is refused. */
    if (digits_ctx_init(&a, arena_b + 1, DIGITS_ARENA_BYTES) != -1 || digits_ctx_init(&a, arena_a, DIGITS_ARENA_BYTES - 1) != -1)
        return 1;
    if (digits_ctx_init(&a, arena_a, sizeof arena_a) != 0 || digits_ctx_init(&b, arena_b, sizeof arena_b) != 0)
        return 1;
    /* Interleave the instances: a runs the even samples, b the odd ones. */
    for (int s = 0; s < DIGITS_SAMPLES; s++) {
        digits_ctx *ctx = (s % 2 == 0) ? &a : &b;
        if (digits_ctx_run(ctx, digits_inputs[s], out) != 0)
            return 1;
        put_hex("digits", s % 2, s, out, DIGITS_OUTPUT_BYTES);
    }

    static int8_t o0[TWO_OUTPUT0_BYTES], o1[TWO_OUTPUT1_BYTES];
    const int8_t *const ins[TWO_NUM_INPUTS] = {two_in0, two_in1};
    int8_t *const outs[TWO_NUM_OUTPUTS] = {o0, o1};
    if (two_init() != 0 || two_run_io(ins, outs) != 0)
        return 1;
    put_hex("two", 0, 0, o0, TWO_OUTPUT0_BYTES);
    put_hex("two", 1, 0, o1, TWO_OUTPUT1_BYTES);
    platform_write("done\n");
    return 0;
}
