"""The conversion side: training, the reference predictor (the oracle), ONNX export and the parity certificate.

The only correct behaviour of the ONNX graph is to behave exactly like the PyTorch encoder + fitted sklearn
pipeline it was converted from; every check here compares the two. torch's CPU kernels are pinned before torch
is first imported (``convert.kernels``), so training and export give the same bits on every x86-64 CPU.
"""

from convert import kernels

kernels.pin()
