#!/usr/bin/python3
"""Independent reader of the tiny safetensors files (json + numpy, not the
Go code): writes sums.json with, for every file and tensor, the dtype, the
shape, the sum and the sum of squares of the values (float64), which
hf's TestIndependentReader compares with what the Go reader decodes.

Run from the repository root: /usr/bin/python3 hf/testdata/sums.py
"""
import glob
import json
import os
import struct

import numpy as np

ROOT = os.path.join("hf", "testdata", "tiny")


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        dt = info["dtype"]
        if dt == "F32":
            x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            x = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            x = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: {name}: dtype {dt}")
        assert x.size == int(np.prod(info["shape"])), (path, name)
        out[name] = {"dtype": dt, "shape": info["shape"], "sum": float(x.sum()), "sumsq": float((x * x).sum())}
    return out


def main():
    sums = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "*", "*.safetensors"))):
        sums[os.path.relpath(path, ROOT)] = read(path)
    with open(os.path.join("hf", "testdata", "sums.json"), "w") as f:
        json.dump(sums, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
