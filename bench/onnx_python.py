"""Peer for the model-mode benchmark: ONNX Runtime's own Python API on the same fixture models and the
same rows as `crates/modelgate-onnx/examples/onnx_bench.rs`. Install: `pip install onnxruntime numpy onnx`."""
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
folder = Path(__file__).resolve().parent.parent / "crates/modelgate-onnx/fixtures"
index = np.arange(rows * 4, dtype=np.float64)
inputs = ((np.modf(index * 0.61803398875)[0]) * 6.0 - 3.0).astype(np.float32).reshape(rows, 4)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
print("model\trows\tseconds\trows_per_s")
for name in ["logistic", "gradient_boosting", "random_forest_zipmap", "mlp", "sigmoid_network"]:
    session = ort.InferenceSession(str(folder / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: inputs}
    started = time.perf_counter()
    outputs = session.run(None, feed)
    seconds = time.perf_counter() - started
    assert len(outputs[0]) == rows
    print(f"{name}\t{rows}\t{seconds:.3f}\t{rows / seconds:.0f}")

# The same forest with its ZipMap node removed and the probability tensor as an output — how modelgate
# runs it (crates/modelgate-onnx/src/zipmap.rs) — so the two engines are also compared on equal work.
import onnx

forest = onnx.load(str(folder / "random_forest_zipmap.onnx"))
zipmap = next(node for node in forest.graph.node if node.op_type == "ZipMap")
forest.graph.node.remove(zipmap)
for output in list(forest.graph.output):
    if output.name == zipmap.output[0]:
        forest.graph.output.remove(output)
forest.graph.output.append(onnx.ValueInfoProto(name=zipmap.input[0]))
session = ort.InferenceSession(forest.SerializeToString(), options, providers=["CPUExecutionProvider"])
started = time.perf_counter()
outputs = session.run(None, {session.get_inputs()[0].name: inputs})
seconds = time.perf_counter() - started
assert len(outputs[1]) == rows
print(f"random_forest (ZipMap removed)\t{rows}\t{seconds:.3f}\t{rows / seconds:.0f}")

