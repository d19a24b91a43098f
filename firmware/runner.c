/* tinyconv device runner: the protocol loop around one generated model library.
 *
 * Built with -DTCR_MODEL_H="\"<prefix>.h\"" -DTCR_PREFIX=<prefix> -DTCR_PREFIX_UC=<PREFIX>
 * (defaults: tc_model) and -D<PREFIX>_LAYER_HOOKS. Protocol: see protocol.h.
 */
#include <stdint.h>
#include <string.h>

#include "port.h"
#include "protocol.h"

#ifndef TCR_MODEL_H
#define TCR_MODEL_H "tc_model.h"
#endif
#ifndef TCR_PREFIX
#define TCR_PREFIX tc_model
#define TCR_PREFIX_UC TC_MODEL
#endif
#ifndef TCR_BUILD_ID
#define TCR_BUILD_ID 0u
#endif
#ifndef TCR_DUMP_WINDOW_MAX
#define TCR_DUMP_WINDOW_MAX 4096u /* RAM spent on layer dumps; larger layers are read in windows */
#endif

#include TCR_MODEL_H

#define TCR_CAT_(a, b) a##b
#define TCR_CAT(a, b) TCR_CAT_(a, b)
#define M_FN(x) TCR_CAT(TCR_PREFIX, x)
#define M_K(x) TCR_CAT(TCR_PREFIX_UC, x)

#define IN_BYTES M_K(_INPUT_BYTES)
#define OUT_BYTES M_K(_OUTPUT_BYTES)
#define NLAYERS M_K(_NUM_LAYERS)

static int8_t in_buf[IN_BYTES] __attribute__((aligned(16)));
static int8_t out_buf[OUT_BYTES] __attribute__((aligned(16)));

/* ---- per-layer counters and layer capture (layer hook) ---- */
static uint32_t layer_ticks[NLAYERS];
static uint64_t run_ticks;
static uint64_t t_last;
static uint32_t stack_used, stack_painted;
static uint8_t counting;

static int32_t cap_layer = -1; /* layer being captured by the hook, -1 none */
static uint32_t cap_start;     /* first byte of the capture window */
static uint32_t cap_len;       /* bytes captured */
#define DUMP_WINDOW (TCR_DUMP_WINDOW_MAX)
static int8_t cap_buf[DUMP_WINDOW];
static int32_t cached_layer = -1; /* what cap_buf holds */
static uint32_t cached_start;
static uint32_t cached_len;
static uint32_t input_gen = 1, cached_gen = 0;

void M_FN(_layer_hook)(int layer, const int8_t *out, uint32_t bytes)
{
    if (counting && layer >= 0 && layer < NLAYERS) {
        uint64_t t = tcr_port_counter();
        layer_ticks[layer] = (uint32_t)(t - t_last);
        t_last = tcr_port_counter(); /* exclude the hook's own bookkeeping as far as possible */
    }
    if (layer == cap_layer) {
        uint32_t n = 0;
        if (cap_start < bytes) {
            n = bytes - cap_start;
            if (n > DUMP_WINDOW) n = DUMP_WINDOW;
            memcpy(cap_buf, out + cap_start, n);
        }
        cap_len = n;
    }
}

/* ---- CRC-32 (IEEE, reflected), nibble table ---- */
static const uint32_t crc_tab[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t crc32(const uint8_t *p, uint32_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        c = (c >> 4) ^ crc_tab[c & 15u];
        c = (c >> 4) ^ crc_tab[c & 15u];
    }
    return ~c;
}

static void put_u16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { put_u16(p, v & 0xFFFFu); put_u16(p + 2, v >> 16); }
static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) { return get_u16(p) | (get_u16(p + 2) << 16); }

/* ---- framing: COBS encode straight to the port ---- */
static void send_cobs(const uint8_t *src, uint32_t n)
{
    uint8_t block[255];
    uint32_t i = 0;
    for (;;) {
        uint32_t k = 0; /* data bytes in this block */
        while (i + k < n && src[i + k] != 0 && k < 254u) k++;
        block[0] = (uint8_t)(k + 1u);
        memcpy(block + 1, src + i, k);
        tcr_port_write(block, k + 1u);
        i += k;
        if (i >= n) break;
        if (k < 254u) i++; /* src[i] is a zero, implied by the block code */
    }
    {
        uint8_t z = 0;
        tcr_port_write(&z, 1);
    }
}

static uint8_t tx[TCR_MAX_FRAME + 8];

/* Send one response frame; payload may alias tx + 4. */
void tcr_send_frame(uint8_t seq, uint8_t cmd, uint8_t status, const uint8_t *payload, uint32_t n)
{
    if (n > TCR_MAX_FRAME - 8u) n = TCR_MAX_FRAME - 8u;
    tx[0] = TCR_PROTOCOL_VERSION;
    tx[1] = seq;
    tx[2] = (uint8_t)(cmd | 0x80u);
    tx[3] = status;
    if (n && payload != tx + 4) memmove(tx + 4, payload, n);
    put_u32(tx + 4 + n, crc32(tx, 4u + n));
    send_cobs(tx, 8u + n);
}

/* Called by ports from a fault handler or signal handler: report, then the port exits. */
void tcr_send_fault(uint8_t kind, const uint32_t values[7])
{
    uint8_t p[1 + 7 * 4];
    uint32_t k;
    p[0] = kind;
    for (k = 0; k < 7; k++) put_u32(p + 1 + 4 * k, values[k]);
    tcr_send_frame(0xFFu, TCR_CMD_FAULT, TCR_ERR_FAULT, p, sizeof p);
}

/* ---- model runs ---- */
static int run_model(int count)
{
    int rc;
    counting = (uint8_t)count;
    if (count) {
        memset(layer_ticks, 0, sizeof layer_ticks);
        tcr_port_stack_paint();
    }
    {
        uint64_t t0 = tcr_port_counter();
        t_last = t0;
        rc = M_FN(_run)(in_buf, out_buf);
        if (count) run_ticks = tcr_port_counter() - t0;
    }
    if (count) stack_used = tcr_port_stack_used(&stack_painted);
    counting = 0;
    return rc;
}

static uint8_t rx[TCR_MAX_FRAME + 8];
static uint8_t ans[TCR_MAX_FRAME];

static void handle(const uint8_t *f, uint32_t n)
{
    uint8_t seq, cmd;
    const uint8_t *p;
    uint32_t plen;
    if (n < 7u) {
        tcr_send_frame(n > 1 ? f[1] : 0xFFu, n > 2 ? f[2] : 0x7Eu, TCR_ERR_FRAME, 0, 0);
        return;
    }
    seq = f[1];
    cmd = f[2];
    if (crc32(f, n - 4u) != get_u32(f + n - 4u)) {
        tcr_send_frame(seq, cmd, TCR_ERR_CRC, 0, 0);
        return;
    }
    if (f[0] != TCR_PROTOCOL_VERSION) {
        uint8_t v = TCR_PROTOCOL_VERSION;
        tcr_send_frame(seq, cmd, TCR_ERR_VERSION, &v, 1);
        return;
    }
    p = f + 3;
    plen = n - 7u;
    switch (cmd) {
    case TCR_CMD_IDENTIFY: {
        static const char hash[] = M_K(_HASH);
        uint8_t *a = ans;
        a[0] = TCR_PROTOCOL_VERSION;
        a[1] = tcr_port_counter_kind();
        put_u16(a + 2, TCR_MAX_CHUNK);
        put_u32(a + 4, (uint32_t)TCR_BUILD_ID);
        put_u32(a + 8, (uint32_t)M_K(_ARENA_BYTES));
        put_u32(a + 12, (uint32_t)IN_BYTES);
        put_u32(a + 16, (uint32_t)OUT_BYTES);
        put_u16(a + 20, (uint32_t)NLAYERS);
        put_u32(a + 22, (uint32_t)DUMP_WINDOW);
        put_u32(a + 26, tcr_port_counter_hz());
        memset(a + 30, 0, 16);
        memcpy(a + 30, hash, sizeof hash - 1u < 16u ? sizeof hash - 1u : 16u);
        tcr_send_frame(seq, cmd, TCR_OK, a, 46);
        return;
    }
    case TCR_CMD_SET_INPUT: {
        uint32_t off, len;
        if (plen < 4u) break;
        off = get_u32(p);
        len = plen - 4u;
        if (off > IN_BYTES || len > IN_BYTES - off) break;
        memcpy(in_buf + off, p + 4, len);
        input_gen++;
        tcr_send_frame(seq, cmd, TCR_OK, 0, 0);
        return;
    }
    case TCR_CMD_RUN: {
        int rc = run_model(1);
        put_u32(ans, (uint32_t)rc);
        tcr_send_frame(seq, cmd, rc == 0 ? TCR_OK : TCR_ERR_MODEL, ans, 4);
        return;
    }
    case TCR_CMD_GET_OUTPUT: {
        uint32_t off, len;
        if (plen != 6u) break;
        off = get_u32(p);
        len = get_u16(p + 4);
        if (len > TCR_MAX_CHUNK || off > OUT_BYTES || len > OUT_BYTES - off) break;
        tcr_send_frame(seq, cmd, TCR_OK, (const uint8_t *)out_buf + off, len);
        return;
    }
    case TCR_CMD_COUNTERS: {
        uint32_t first, k, cnt = 0;
        if (plen != 2u) break;
        first = get_u16(p);
        if (first > NLAYERS) break;
        put_u32(ans, (uint32_t)run_ticks);
        put_u32(ans + 4, (uint32_t)(run_ticks >> 32));
        put_u32(ans + 8, stack_used);
        put_u32(ans + 12, stack_painted);
        put_u16(ans + 16, NLAYERS);
        put_u16(ans + 18, first);
        for (k = first; k < NLAYERS && cnt < 50u; k++, cnt++) put_u32(ans + 22 + 4 * cnt, layer_ticks[k]);
        put_u16(ans + 20, cnt);
        tcr_send_frame(seq, cmd, TCR_OK, ans, 22u + 4u * cnt);
        return;
    }
    case TCR_CMD_DUMP_LAYER: {
        uint32_t layer, off, len, lbytes;
        if (plen != 8u) break;
        layer = get_u16(p);
        off = get_u32(p + 2);
        len = get_u16(p + 6);
        if (layer >= NLAYERS || len > TCR_MAX_CHUNK || len > DUMP_WINDOW) break;
        lbytes = M_FN(_layer_output_bytes)[layer];
        if (off > lbytes || len > lbytes - off) break;
        if (cached_layer != (int32_t)layer || cached_gen != input_gen || off < cached_start || off + len > cached_start + cached_len) {
            int rc;
            cap_layer = (int32_t)layer;
            cap_start = off;
            cap_len = 0;
            rc = run_model(0);
            cap_layer = -1;
            if (rc != 0) {
                put_u32(ans, (uint32_t)rc);
                tcr_send_frame(seq, cmd, TCR_ERR_MODEL, ans, 4);
                return;
            }
            cached_layer = (int32_t)layer;
            cached_start = off;
            cached_len = cap_len;
            cached_gen = input_gen;
        }
        tcr_send_frame(seq, cmd, TCR_OK, (const uint8_t *)cap_buf + (off - cached_start), len);
        return;
    }
    case TCR_CMD_ECHO:
        tcr_send_frame(seq, cmd, TCR_OK, p, plen);
        return;
    case TCR_CMD_BYE:
        tcr_send_frame(seq, cmd, TCR_OK, 0, 0);
        tcr_port_exit(0);
    default:
        tcr_send_frame(seq, cmd, TCR_ERR_UNKNOWN_CMD, 0, 0);
        return;
    }
    tcr_send_frame(seq, cmd, TCR_ERR_ARG, 0, 0);
}

/* COBS decode in place; returns decoded length or -1. */
static int cobs_decode(uint8_t *buf, uint32_t n)
{
    uint32_t i = 0, o = 0;
    while (i < n) {
        uint32_t code = buf[i++], k;
        if (code == 0) return -1;
        for (k = 1; k < code; k++) {
            if (i >= n) return -1;
            buf[o++] = buf[i++];
        }
        if (code != 0xFFu && i < n) buf[o++] = 0;
    }
    return (int)o;
}

int main(void)
{
    uint32_t n = 0;
    uint8_t overflow = 0;
    tcr_port_init();
    M_FN(_init)();
    for (;;) {
        int c = tcr_port_getc();
        if (c < 0) tcr_port_exit(0); /* link closed */
        if (c != 0) {
            if (n < sizeof rx) rx[n++] = (uint8_t)c;
            else overflow = 1;
            continue;
        }
        if (n == 0) continue; /* idle delimiters */
        if (overflow) {
            tcr_send_frame(0xFFu, 0x7Eu, TCR_ERR_FRAME, 0, 0);
        } else {
            int m = cobs_decode(rx, n);
            if (m < 0) tcr_send_frame(n > 2 ? rx[2] : 0xFFu, 0x7Eu, TCR_ERR_FRAME, 0, 0);
            else handle(rx, (uint32_t)m);
        }
        n = 0;
        overflow = 0;
    }
}
