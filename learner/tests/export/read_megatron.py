"""Reads a Megatron-LM indexed dataset (`PREFIX.bin` + `PREFIX.idx`) the way
megatron/core/datasets/indexed_dataset.py (`_IndexReader`, `_MMapBinReader`) does — header,
numpy memmaps, `frombuffer` at the same offsets — and prints it as JSON:

    {"dtype": "uint16", "sequences": [[...], ...], "document_indices": [0, ...]}

It also checks what Megatron relies on without asserting: the index is consumed exactly, the
pointers are the running byte offsets, and the data file holds exactly the indexed tokens.

    python read_megatron.py PREFIX
"""

import json
import struct
import sys

import numpy

_INDEX_HEADER = b"MMIDIDX\x00\x00"
# Megatron's DType codes.
_DTYPES = {
    1: numpy.uint8,
    2: numpy.int8,
    3: numpy.int16,
    4: numpy.int32,
    5: numpy.int64,
    6: numpy.float64,
    7: numpy.float32,
    8: numpy.uint16,
}


def read(prefix):
    idx_path, bin_path = prefix + ".idx", prefix + ".bin"
    with open(idx_path, "rb") as stream:
        header = stream.read(9)
        assert header == _INDEX_HEADER, f"bad header {header!r}"
        (version,) = struct.unpack("<Q", stream.read(8))
        assert version == 1, f"bad version {version}"
        (code,) = struct.unpack("<B", stream.read(1))
        dtype = _DTYPES[code]
        (sequence_count,) = struct.unpack("<Q", stream.read(8))
        (document_count,) = struct.unpack("<Q", stream.read(8))
        offset = stream.tell()

    index = numpy.memmap(idx_path, mode="r", order="C")
    buffer = memoryview(index)
    lengths = numpy.frombuffer(buffer, dtype=numpy.int32, count=sequence_count, offset=offset)
    pointers = numpy.frombuffer(
        buffer, dtype=numpy.int64, count=sequence_count, offset=offset + lengths.nbytes
    )
    documents = numpy.frombuffer(
        buffer,
        dtype=numpy.int64,
        count=document_count,
        offset=offset + lengths.nbytes + pointers.nbytes,
    )
    end = offset + lengths.nbytes + pointers.nbytes + documents.nbytes
    assert end == index.size, f"index has {index.size} bytes, the fields use {end}"

    itemsize = numpy.dtype(dtype).itemsize
    running = numpy.concatenate([[0], numpy.cumsum(lengths.astype(numpy.int64) * itemsize)[:-1]])
    assert sequence_count == 0 or (pointers == running).all(), "pointers are not the running offsets"
    assert documents[0] == 0 and documents[-1] == sequence_count, "document index does not span the sequences"

    data = numpy.memmap(bin_path, mode="r", order="C")
    assert data.size == int(lengths.sum()) * itemsize, "the data file holds other than the indexed tokens"
    data_buffer = memoryview(data)
    sequences = [
        numpy.frombuffer(data_buffer, dtype=dtype, count=int(n), offset=int(p)).tolist()
        for n, p in zip(lengths, pointers)
    ]
    return {
        "dtype": numpy.dtype(dtype).name,
        "sequences": sequences,
        "document_indices": documents.tolist(),
    }


if __name__ == "__main__":
    json.dump(read(sys.argv[1]), sys.stdout)
