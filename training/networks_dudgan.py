"""DuDGAN's classifier C ("DuDGAN: Improving Class-Conditional GANs via Dual-Diffusion", Yeom and Lee, 2023), the third
network of the DuDGAN family besides StyleGAN2's G and timestep-aware D.

C(x_t, t) is a StyleGAN2 discriminator trunk (the same blocks and 4x4 epilogue as D: minibatch stddev, conv, fc, fc)
whose epilogue ends in proj_dim features h instead of projecting them onto a label map. It returns the unit vector
of h, the projection a supervised contrastive loss compares, and class logits conditioned on C's own timestep: a
linear layer on h * t_map * sqrt(proj_dim), normalized to unit length, t_map a mapping of t (a 1-layer mapping
network, as D maps [c, t]). These are the public code's numbers.

The public code picks one of the two outputs by the minibatch size (more than 16 images: the projection); here both
come from every call. It also computes h * t_map on the projection's path and then normalizes h: the projection does
not depend on t there, and not here either (at t = 0, t_map starts at 0 and would null the projection).

The layers StyleGAN2 already has are imported where they are constructed: a pickle carries this module's source and
must rebuild with dnnlib and torch_utils alone."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class Classifier(torch.nn.Module):
    """C(img, t) -> (projection [N, proj_dim] of unit length, class logits [N, c_dim] of unit length)."""
    def __init__(self,
        c_dim,                          # Number of classes (the dataset's label dimension), >= 2.
        img_resolution,                 # Input resolution, a power of 2 >= 4.
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Overall multiplier for the number of channels.
        channel_max         = 512,      # Maximum number of channels in any layer.
        num_fp16_res        = 0,        # Use float16 for the N highest resolutions (CUDA only).
        conv_clamp          = None,     # Clamp the output of convolution layers to +-conv_clamp, None = no clamp.
        proj_dim            = 512,      # Dimensionality of the contrastive features.
        block_kwargs        = {},       # Arguments of StyleGAN2's DiscriminatorBlock.
        mapping_kwargs      = {},       # Arguments of the timestep's MappingNetwork (public code: 1 layer).
        epilogue_kwargs     = {},       # Arguments of StyleGAN2's DiscriminatorEpilogue (its features only are used).
    ):
        from training.networks_stylegan2 import DiscriminatorBlock, DiscriminatorEpilogue, MappingNetwork
        if c_dim < 2:
            raise ValueError(f"DuDGAN's classifier needs class labels, the dataset gives c_dim={c_dim} (train with --cond=1 on a dataset with a dataset.json of labels)")
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 2, -1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (int(np.log2(img_resolution)) + 1 - num_fp16_res), 8)
        common_kwargs = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels_dict[res] if res < img_resolution else 0, channels_dict[res], channels_dict[res // 2], resolution=res,
                first_layer_idx=cur_layer_idx, use_fp16=(res >= fp16_resolution), **block_kwargs, **common_kwargs)
            setattr(self, f'b{res}', block)
            cur_layer_idx += block.num_layers
        self.proj_dim = proj_dim
        self.mapping = MappingNetwork(z_dim=0, c_dim=1, w_dim=proj_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels_dict[4], cmap_dim=proj_dim, resolution=4, **epilogue_kwargs, **common_kwargs)
        self.cls = torch.nn.Linear(proj_dim, c_dim)

    def forward(self, img: torch.Tensor, t: torch.Tensor, **block_kwargs):
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        t = t.reshape(-1, 1).to(torch.float32)
        misc.assert_shape(t, [img.shape[0], 1])
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        h = self.b4.features(x, img)
        projection = torch.nn.functional.normalize(h, dim=1)
        logits = torch.nn.functional.normalize(self.cls(h * self.mapping(None, t) * np.sqrt(self.proj_dim)), dim=1)
        return projection, logits

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}'

#----------------------------------------------------------------------------
