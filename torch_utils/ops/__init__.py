"""Custom PyTorch operators: an exact PyTorch reference for each, plus an optional CUDA kernel built on first use."""
