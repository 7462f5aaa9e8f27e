"""Output comparison of a candidate (INT8 Q/DQ, FP16, TensorRT engine) with the FP32 reference.

``metrics.py`` holds the per-sample metrics, ``compare.py`` runs both models over a calibration
dataset (``orinbench accuracy``), ``sensitivity.py`` measures which node groups hurt INT8 accuracy
(``orinbench sensitivity``).
"""
