"""The README's example: latency tests for two small models that the project generates."""

from __future__ import annotations

import pytest


@pytest.mark.tpu_bench(model="examples/models/tiny_conv.tflite")
def test_conv_latency(tpu_bench):
    result = tpu_bench()  # times the marker's model on generated inputs
    assert result.p50_ms < 50  # an absolute budget on top of the baseline gate


def test_dense_pipeline(edgetpu, tpu_bench):
    model = edgetpu.load("examples/models/tiny_dense.tflite")
    inputs = model.random_inputs(seed=1)

    def classify():
        scores = model.run(inputs)[0]
        return int(scores.argmax())

    tpu_bench(classify)  # times the callable: inference plus its post-processing
