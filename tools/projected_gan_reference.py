"""Write tests/data/projected_gan_reference-{fastgan,fastgan_lite_cond}.pkl: network pickles as the official Diffusion-ProjectedGAN code writes
them, made with that code (a checkout of Zhendong-Wang/Diffusion-GAN, folder diffusion-projected-gan, which this
project does not contain), for tests/test_legacy.py. Their G and G_ema are the release's FastGAN generators (plain
pickles that name pg_modules.* classes); their D stands for the release's projected discriminator and names a timm
class, as the release's do, so that the pickles cannot be unpickled with the release's D code absent. Beside the networks it
stores the latents, labels and the images G_ema gives for them (torch seeded before each call: the up-blocks of
'fastgan' draw noise).

    python tools/projected_gan_reference.py --repo=/path/to/Diffusion-GAN/diffusion-projected-gan
"""

import os
import pickle
import sys
import types

import click
import numpy as np
import torch

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'data')

@click.command()
@click.option('--repo', help='Checkout of diffusion-projected-gan', metavar='DIR', required=True)
def main(repo: str):
    if not os.path.isfile(os.path.join(repo, 'pg_modules/networks_fastgan.py')):   # else the imports below would find this project's own modules
        raise click.BadParameter(f'{repo}: expected a checkout of diffusion-projected-gan (with pg_modules/networks_fastgan.py)', param_hint='--repo')
    sys.path.insert(0, repo)
    from pg_modules.networks_fastgan import Generator # the release's class, from the checkout

    # A stand-in for timm's EfficientNet, pickled under timm's module name as the release's D is.
    timm_module = types.ModuleType('timm.models.efficientnet')
    class EfficientNet(torch.nn.Module):
        pass
    EfficientNet.__module__ = timm_module.__name__
    EfficientNet.__qualname__ = 'EfficientNet'
    timm_module.EfficientNet = EfficientNet
    sys.modules['timm'] = types.ModuleType('timm')
    sys.modules['timm.models'] = types.ModuleType('timm.models')
    sys.modules[timm_module.__name__] = timm_module

    for name, kwargs in [('fastgan', dict(cond=0, synthesis_kwargs=dict(lite=False))), ('fastgan_lite_cond', dict(cond=1, synthesis_kwargs=dict(lite=True, num_classes=10)))]:
        torch.manual_seed(1)
        G = Generator(z_dim=32, c_dim=10 if kwargs['cond'] else 0, img_resolution=64, img_channels=3, ngf=4, **kwargs)
        G.train()
        for _ in range(2): # batch norm statistics and spectral-norm vectors away from their initial values
            G(torch.randn(8, 32), torch.eye(10)[torch.arange(8)] if kwargs['cond'] else torch.zeros(8, 0))
        with torch.no_grad():
            for param in G.parameters():
                param.add_(torch.randn_like(param) * 0.05)
        G = G.eval().requires_grad_(False)
        for module in G.modules(): # drop the autograd graph the last training forward left in spectral norm's weights
            if hasattr(module, 'weight_orig'):
                module.weight = module.weight.detach()
        z = torch.from_numpy(np.random.RandomState(3).randn(4, 32)).float()
        c = torch.eye(10)[[1, 5, 7, 9]] if kwargs['cond'] else torch.zeros(4, 0)
        torch.manual_seed(123)
        img = G(z, c)
        path = os.path.join(DATA_DIR, f'projected_gan_reference-{name}.pkl')
        with open(path, 'wb') as f:
            pickle.dump(dict(G=G, D=EfficientNet(), G_ema=G, augment_pipe=None, training_set_kwargs=None, z=z.numpy(), c=c.numpy(), img=img.numpy()), f)
        print(f'Wrote {path}')

if __name__ == '__main__':
    main()
