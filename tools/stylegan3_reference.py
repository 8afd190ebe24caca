"""Write tests/data/stylegan3_reference.npz: tiny StyleGAN3-T and -R generators built and run by NVIDIA's own code
(a checkout of NVlabs/stylegan3, which this project does not contain), as an independent reference for
tests/training/test_networks_stylegan3.py. For each config: the state dict (weights perturbed away from their
initial values, magnitude EMAs and w_avg set), the construction kwargs, latents, labels, and the images at
truncation 0.7 and under a user transform (translate 0.3,-0.2, rotate 30 degrees, as gen_images.py builds it).

    python tools/stylegan3_reference.py --stylegan3=/path/to/NVlabs/stylegan3
"""

import json
import os
import sys

import click
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'data', 'stylegan3_reference.npz')

@click.command()
@click.option('--stylegan3', 'repo', help='Checkout of NVlabs/stylegan3', metavar='DIR', required=True)
def main(repo: str):
    if not os.path.isfile(os.path.join(repo, 'training/networks_stylegan3.py')):   # else the imports below would find this project's own modules
        raise click.BadParameter(f'{repo}: expected a checkout of NVlabs/stylegan3 (with training/networks_stylegan3.py)', param_hint='--stylegan3')
    sys.path.insert(0, repo)
    from training.networks_stylegan3 import Generator # NVIDIA's class, from the checkout
    arrays = dict()
    for cfg in ['t', 'r']:
        torch.manual_seed(1)
        kwargs = dict(z_dim=16, c_dim=3, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                      channel_base=512 * (2 if cfg == 'r' else 1), channel_max=16 * (2 if cfg == 'r' else 1), magnitude_ema_beta=0.999)
        if cfg == 'r':
            kwargs.update(conv_kernel=1, use_radial_filters=True)
        G = Generator(**kwargs).eval().requires_grad_(False)
        for param in G.parameters():
            param.add_(torch.randn_like(param) * 0.1)
        for name, buf in G.named_buffers():
            if name.endswith('magnitude_ema'):
                buf.fill_(0.7)
            if name.endswith('w_avg'):
                buf.copy_(torch.randn_like(buf))
        z = torch.from_numpy(np.random.RandomState(5).randn(4, 16)).float()
        c = torch.eye(3)[[0, 1, 2, 0]]
        img = G(z, c, truncation_psi=0.7, force_fp32=True)
        angle = 30 / 180 * np.pi
        m = np.array([[np.cos(angle), np.sin(angle), 0.3], [-np.sin(angle), np.cos(angle), -0.2], [0, 0, 1]])
        G.synthesis.input.transform.copy_(torch.from_numpy(np.linalg.inv(m)))
        img_transformed = G(z, c, force_fp32=True)
        G.synthesis.input.transform.copy_(torch.eye(3))
        arrays[f'{cfg}/kwargs'] = np.array(json.dumps(kwargs))
        arrays[f'{cfg}/z'], arrays[f'{cfg}/c'] = z.numpy(), c.numpy()
        arrays[f'{cfg}/img'], arrays[f'{cfg}/img_transformed'] = img.numpy(), img_transformed.numpy()
        for name, value in G.state_dict().items():
            arrays[f'{cfg}/state/{name}'] = value.numpy()
    np.savez_compressed(OUT, **arrays)
    print(f'Wrote {OUT}')

if __name__ == '__main__':
    main()
