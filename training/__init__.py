"""Training: networks of every GAN family, the adaptive diffusion, augmentation, losses, data sets and the training loop."""
