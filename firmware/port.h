/* What runner.c needs from a board or OS port. */
#ifndef TCR_PORT_H
#define TCR_PORT_H

#include <stdint.h>

void tcr_port_init(void);
/* Blocking read of one byte from the host link. */
int tcr_port_getc(void);
void tcr_port_write(const uint8_t *data, uint32_t n);
/* Stop the program with a status (semihosting exit on boards, exit() on Linux). */
void tcr_port_exit(int code) __attribute__((noreturn));

/* Monotonic performance counter: TCR_COUNTER_* kind, its frequency in Hz (0 if unknown). */
uint8_t tcr_port_counter_kind(void);
uint32_t tcr_port_counter_hz(void);
uint64_t tcr_port_counter(void);

/* Stack high-water: paint the unused stack below the caller, later measure how deep it got.
 * tcr_port_stack_used returns bytes used below the paint point's frame, and the painted size. */
void tcr_port_stack_paint(void);
uint32_t tcr_port_stack_used(uint32_t *painted);

#endif
