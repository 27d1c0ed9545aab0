//! Float models, training and quantization methods (work in progress).
