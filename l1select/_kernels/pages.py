"""The Parquet page decoder's hot loop: RLE/bit-packed hybrid data (definition levels and
dictionary indices) decoded into integers. :mod:`l1select.io.pages` calls it, and decodes with
numpy where no compiled module is available."""

import numpy as np
from numba import njit

# What hybrid_decode returns when the data is not what it should be.
CUT_SHORT, TOO_LARGE, BAD_RUN = -1, -2, -3


@njit(cache=True, fastmath=False, nogil=True)
def hybrid_decode(buf, bit_width, n, limit, out):
    """Decode the first ``n`` values of RLE/bit-packed hybrid data ``buf`` (uint8) of
    ``bit_width`` bits (at most 32) into ``out[:n]`` (int32).

    Returns 0, or ``CUT_SHORT`` when ``buf`` ends first, ``TOO_LARGE`` for a value not
    below ``limit``, ``BAD_RUN`` for an empty run or an overlong run header. A bit-packed run
    holds groups of eight values, least significant bit first; the last run may stop short
    of its padding.
    """
    size = buf.shape[0]
    width = (bit_width + 7) // 8
    mask = (np.int64(1) << bit_width) - 1
    pos = 0
    filled = 0
    while filled < n:
        header = np.int64(0)
        shift = 0
        while True:
            if pos >= size:
                return CUT_SHORT
            b = np.int64(buf[pos])
            pos += 1
            header |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 35:
                return BAD_RUN
        count = header >> 1
        if count == 0:
            return BAD_RUN
        if header & 1:
            end = pos + count * bit_width  # count groups of 8 values
            take = min(count * 8, n - filled)
            if (pos * 8 + take * bit_width + 7) // 8 > size:
                return CUT_SHORT
            # A window of the next bits, refilled a byte at a time (at most 39 bits).
            acc = np.int64(0)
            n_bits = 0
            p = pos
            for i in range(take):
                while n_bits < bit_width:
                    acc |= np.int64(buf[p]) << n_bits
                    p += 1
                    n_bits += 8
                v = acc & mask
                acc >>= bit_width
                n_bits -= bit_width
                if v >= limit:
                    return TOO_LARGE
                out[filled + i] = v
            filled += take
            pos = end
        else:
            if pos + width > size:
                return CUT_SHORT
            v = np.int64(0)
            for j in range(width):
                v |= np.int64(buf[pos + j]) << (8 * j)
            pos += width
            if v >= limit or v > mask:
                return TOO_LARGE
            take = min(count, n - filled)
            for i in range(take):
                out[filled + i] = v
            filled += take
    return 0
