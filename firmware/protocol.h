/* tinyconv device protocol (version 1). Shared by every firmware port; the Python side is
 * tinyconv/harness/protocol.py. Keep the two in step.
 *
 * Transport: COBS-encoded frames, each terminated by one 0x00 byte.
 * Request  (host -> device): [version u8][seq u8][cmd u8][payload ...][crc32 le]
 * Response (device -> host): [version u8][seq u8][cmd|0x80 u8][status u8][payload ...][crc32 le]
 * CRC-32 is the IEEE/zlib one (reflected 0xEDB88320) over every byte before it.
 * Every request gets exactly one response. Multi-byte integers are little endian.
 * The only unsolicited frame is TCR_CMD_FAULT, sent just before the firmware stops.
 */
#ifndef TCR_PROTOCOL_H
#define TCR_PROTOCOL_H

#define TCR_PROTOCOL_VERSION 1u

#define TCR_MAX_CHUNK 240u   /* max data bytes carried by one frame */
#define TCR_MAX_FRAME 272u   /* max decoded frame length */

enum {
    TCR_CMD_IDENTIFY = 0x01,   /* -> info block, see runner.c */
    TCR_CMD_SET_INPUT = 0x02,  /* offset u32, data -> - */
    TCR_CMD_RUN = 0x03,        /* - -> model return code i32 */
    TCR_CMD_GET_OUTPUT = 0x04, /* offset u32, len u16 -> data */
    TCR_CMD_COUNTERS = 0x05,   /* first layer u16 -> total u64, stack u32, stack region u32, nlayers u16, first u16, n u16, n x u32 */
    TCR_CMD_DUMP_LAYER = 0x06, /* layer u16, offset u32, len u16 -> data (re-runs the model on the current input when needed) */
    TCR_CMD_ECHO = 0x07,       /* data -> same data */
    TCR_CMD_BYE = 0x0F,        /* - -> -, then the firmware exits (emulators) or idles */
    TCR_CMD_FAULT = 0x7F       /* unsolicited: kind u8, then u32 pc, lr, cfsr, hfsr, mmfar, bfar, signal */
};

enum {
    TCR_OK = 0,
    TCR_ERR_CRC = 1,
    TCR_ERR_FRAME = 2,
    TCR_ERR_UNKNOWN_CMD = 3,
    TCR_ERR_VERSION = 4,
    TCR_ERR_ARG = 5,
    TCR_ERR_MODEL = 6,
    TCR_ERR_FAULT = 7
};

/* INSTRUCTIONS: exact executed-instruction count (QEMU plugin on Linux user-mode emulation). */
enum { TCR_COUNTER_NONE = 0, TCR_COUNTER_SYSTICK = 1, TCR_COUNTER_CYCLES = 2, TCR_COUNTER_INSTRUCTIONS = 3 };

enum { TCR_FAULT_HARDFAULT = 1, TCR_FAULT_SIGNAL = 2 };

#endif
