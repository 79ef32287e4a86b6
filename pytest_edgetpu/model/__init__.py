"""TFLite model files: bounds-checked reading, and the project's generated example models."""
