"""Offline weight layouts for specialised kernels (the order their inner loops read).

Each function mirrors one C kernel's reading order exactly; the kernel's comment names it.
"""

from __future__ import annotations

import numpy as np

DSP_CHUNK = 128  # kernels/dsp TCD_K: values of a patch per chunk in the shared kernels
DSP_CHUNK_SPEED = 288  # TCD_K_SPEED: a patch up to this long is one chunk in per-layer code


def dsp_chunk(k: int) -> int:
    """The chunk length per-layer DSP code uses for a patch of k values (tcd_conv_s8's choice)."""
    return k if k <= DSP_CHUNK_SPEED else DSP_CHUNK


def dsp_pairs_int16(w: np.ndarray, chunk: int = DSP_CHUNK) -> np.ndarray:
    """Dense conv weights OHWI (groups 1) → int16 words for tcd_block2x2 (kernels/dsp).

    Per output channel pair (a, b) (an odd last channel is paired with itself), per chunk of
    `chunk` patch values: for each group of 4 values k..k+3 the words (a[k], a[k+2]),
    (a[k+1], a[k+3]), (b[k], b[k+2]), (b[k+1], b[k+3]) (SXTB16 order, low half first), then for
    each value of the chunk's tail (length % 4) the word (a[k], b[k]). A pair takes K words.
    """
    rows = np.asarray(w, np.int16).reshape(w.shape[0], -1)
    if rows.shape[0] % 2:
        rows = np.concatenate([rows, rows[-1:]])
    K = rows.shape[1]
    pairs = rows.reshape(-1, 2, K)  # [P, (a, b), K]
    parts = []
    for k_lo in range(0, K, chunk):
        kn = min(chunk, K - k_lo)
        k4 = kn & ~3
        quads = pairs[:, :, k_lo : k_lo + k4].reshape(len(pairs), 2, k4 // 4, 4)[..., [0, 2, 1, 3]]
        parts.append(quads.transpose(0, 2, 1, 3).reshape(len(pairs), 2 * k4))  # [P, group, (a, b), 4]
        parts.append(pairs[:, :, k_lo + k4 : k_lo + kn].transpose(0, 2, 1).reshape(len(pairs), 2 * (kn - k4)))  # tail: (a[k], b[k])
    return np.concatenate(parts, axis=1).reshape(-1) if parts else np.zeros(0, np.int16)


def dsp_depthwise_int16(w: np.ndarray) -> np.ndarray:
    """Depthwise weights [C, kh, kw, 1] (channel multiplier 1) → int16 words for tcd_dw_packed
    (kernels/dsp): per group of 4 channels c..c+3 (C // 4 groups; the rest are not packed), per
    tap t, the words (w[c][t], w[c+2][t]), (w[c+1][t], w[c+3][t]), low half first."""
    rows = np.asarray(w, np.int16).reshape(w.shape[0], -1)
    groups = rows[: rows.shape[0] // 4 * 4].reshape(-1, 4, rows.shape[1])  # [G, 4, taps]
    return groups[:, [0, 2, 1, 3], :].transpose(0, 2, 1).reshape(-1).astype(np.int16)


def dsp_row_run(w_shape, attrs) -> int:
    """The padded row length for kernels/dsp tcd_fill_rows (0: the layer does not use it).

    Dense convs whose patch is filled from the input (not a 1x1 without padding, which is read in
    place) with dil_w 1 copy each kernel row (k_w * in_c contiguous values) by words, padded to a
    multiple of 4, when the padded patch fits one chunk."""
    cout, kh, kw, cin = w_shape
    pads, dil = attrs["pads"], attrs["dilations"]
    if attrs["groups"] != 1 or dil[1] != 1 or (kh == 1 and kw == 1 and pads[0] == 0 and pads[1] == 0):
        return 0
    run = -(-kw * cin // 4) * 4
    return run if kh * run <= DSP_CHUNK_SPEED else 0


def pad_rows(w: np.ndarray, run: int) -> np.ndarray:
    """OHWI weights → [cout, kh, run]: each kernel row's k_w * in_c values then zeros."""
    cout, kh, kw, cin = w.shape
    out = np.zeros((cout, kh, run), w.dtype)
    out[:, :, : kw * cin] = w.reshape(cout, kh, kw * cin)
    return out


def dsp_fc_quads(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Fully connected weights [out, in] → (int16 words, int32 biases) for tcd_fc_quads
    (kernels/dsp): per 4 rows r0..r3 (out // 4 quads; the rest are not packed), per 4 inputs k,
    for each row the words (w[k], w[k+2]), (w[k+1], w[k+3]); then per tail input the words
    (r0, r1), (r2, r3). Biases: bias + input_offset * sum(w) over every row (folded so the
    kernel widens inputs without the offset; exact in int32 as the sum itself is)."""
    w16 = np.asarray(w, np.int16)
    out_f, n = w16.shape
    n4 = n & ~3
    quads = w16[: out_f // 4 * 4].reshape(-1, 4, n)  # [Q, row, n]
    main = quads[:, :, :n4].reshape(len(quads), 4, n4 // 4, 4)[..., [0, 2, 1, 3]].transpose(0, 2, 1, 3)  # [Q, group, row, 4]
    tail = quads[:, :, n4:].transpose(0, 2, 1)  # [Q, k, row]
    words = np.concatenate([main.reshape(len(quads), 4 * n4), tail.reshape(len(quads), 4 * (n - n4))], axis=1).reshape(-1)
    b = np.zeros(out_f, np.int64) if bias is None else np.asarray(bias, np.int64)
    folded = b + input_offset * w16.astype(np.int64).sum(axis=1)
    return words.astype(np.int16), folded.astype(np.int32)
