/* Stack high-water for every Cortex-M port: paint [__stack_limit, sp - margin) before a run, count
 * the painted words still intact after it. The linker scripts define both symbols. */
#include <stdint.h>
#include "../port.h"

extern uint32_t __stack_limit, __stack_top;
#define PAINT 0xC5C5C5C5u

void tcr_port_stack_paint(void)
{
    uint32_t *p = &__stack_limit;
    uint32_t *end = (uint32_t *)__builtin_frame_address(0) - 16; /* spare this frame and its callee's */
    while (p < end) *p++ = PAINT;
}

uint32_t tcr_port_stack_used(uint32_t *painted)
{
    uint32_t *p = &__stack_limit;
    uint32_t *top = &__stack_top;
    while (p < top && *p == PAINT) p++;
    *painted = (uint32_t)((uintptr_t)top - (uintptr_t)&__stack_limit);
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}
