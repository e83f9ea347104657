"""Facial emotion recognition engine: data, preprocessing, detection, model, inference."""
