"""The engine: face detection with landmarks, alignment, preprocessing, the CNN and its
runtimes (Keras, ONNX, INT8), inference on photos, tracking, Grad-CAM and the model manifest.

May import: ``src.config``, ``src.common``. No Streamlit, no database, no TensorFlow at import."""
