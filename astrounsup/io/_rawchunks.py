"""Reading whole-cutout runs straight from the chunks of an uncompressed HDF5 store."""

from __future__ import annotations

import os
import sys

import numpy as np


class _RawChunkReader:
    """Positional reads of whole-cutout runs straight from an uncompressed store's chunks.

    For an unfiltered, little-endian float32 dataset each chunk's bytes on disk are its
    cutouts as they are in memory, so HDF5 is asked only where each chunk starts and the
    bytes are read with ``os.preadv`` directly into the destination array: about twice the
    throughput of ``h5py``'s own reads. :meth:`usable` says whether a dataset qualifies.
    """

    def __init__(self, dset):
        self.rows = dset.chunks[0]
        self.row_bytes = int(np.prod(dset.shape[1:])) * dset.dtype.itemsize
        n_chunks = -(-dset.shape[0] // self.rows)
        self.offsets = np.full(n_chunks, -1, dtype=np.int64)
        for k in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(k)
            self.offsets[info.chunk_offset[0] // self.rows] = info.byte_offset

    @staticmethod
    def usable(dset):
        return (
            hasattr(os, "preadv")
            and sys.byteorder == "little"
            and dset.chunks is not None
            and dset.chunks[1:] == dset.shape[1:]
            and dset.dtype == np.dtype("<f4")
            and dset.id.get_create_plist().get_nfilters() == 0
            and dset.id.get_num_chunks() == -(-dset.shape[0] // dset.chunks[0])
        )

    def read(self, fd, lo, hi, out):
        """Rows [lo, hi) into the C-contiguous float32 array ``out``."""
        view = memoryview(out).cast("B")
        pos = 0
        while lo < hi:
            c = lo // self.rows
            start, stop = lo - c * self.rows, min(hi - c * self.rows, self.rows)
            nbytes = (stop - start) * self.row_bytes
            got = os.preadv(
                fd, [view[pos : pos + nbytes]], int(self.offsets[c]) + start * self.row_bytes
            )
            if got != nbytes:
                msg = f"short read: {got} of {nbytes} bytes of chunk {c}"
                raise OSError(msg)
            pos += nbytes
            lo = c * self.rows + stop
