"""INT8 calibration: datasets, TensorRT calibration caches and TensorRT's implicit calibrator.

``dataset.py`` (the .npz folder format and its validation), ``loader.py`` (the
``FILE.py:function`` data-loader hook), ``manifest.py`` (``manifest.toml``), ``synthetic.py``
(camera-like synthetic sets), ``cache.py`` (TensorRT's cache text format, inspect and diff),
``entropy.py`` (KL-divergence thresholds), ``trt_calibrator.py`` (the ``trt.IInt8*Calibrator``
made inside a factory), ``calibrate.py`` (``orinbench calibrate``). See docs/calibration.md.
"""
