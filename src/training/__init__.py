"""Training: datasets (FER2013, FER+, ExpW, image folders), training runs, model export
(ONNX and INT8 twins), evaluation, the baseline, the model card and the versioned outputs/vN.

May import: ``src.config``, ``src.common``, ``src.engine``."""
