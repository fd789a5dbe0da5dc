"""Small helpers with no TensorFlow import: progress bars, file names, memory readings."""
