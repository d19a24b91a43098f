#define TC_ELEMENT_FN static /* one copy of each rule: the smallest code */
#include "tc_elementwise_ref.h"

void tc_add_s8(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TC_BROADCAST_LOOP(add_one)
}

void tc_mul_s8(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TC_BROADCAST_LOOP(mul_one)
}
