"""torch_utils: PyTorch helpers shared by the whole code base (persistence, misc, training_stats, custom_ops, ops)."""
