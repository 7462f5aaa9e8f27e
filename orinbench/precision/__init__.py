"""Precision transforms of ONNX models: FP16 (``fp16.py``) and explicit INT8 Q/DQ (``qdq.py``)."""
