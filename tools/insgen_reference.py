"""Write tests/data/insgen_reference.pkl: a snapshot as the official Diffusion-InsGen training loop writes it (G, D,
G_ema, augment_pipe, D_ema, DHead, GHead, training_set_kwargs, progress), made with that code (a checkout of
Zhendong-Wang/Diffusion-GAN, folder diffusion-insgen, which this project does not contain), for
tests/test_legacy.py. Its networks have the shapes of the tests' tiny InsGen run on the digits (16 px, 1 channel,
channel_base 256, channel_max 16, z and w of 16, 2 mapping layers, heads of 16 features and 89 negatives), so that
a run can start from it. Beside them it stores, computed by the release's own modules: G_ema's images for fixed
latents, D's logits and features (the heads' input) for fixed images, and the heads' projections of those features.
The release's heads run on CUDA only (their labels are made with .cuda()); their MLPs are called directly here.

    python tools/insgen_reference.py --repo=/path/to/Diffusion-GAN/diffusion-insgen
"""

import copy
import os
import pickle
import sys

import click
import numpy as np
import torch

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'data')

@click.command()
@click.option('--repo', help='Checkout of diffusion-insgen', metavar='DIR', required=True)
def main(repo: str):
    if not os.path.isfile(os.path.join(repo, 'training/contrastive_head.py')):   # else the imports below would find this project's own modules
        raise click.BadParameter(f'{repo}: expected a checkout of diffusion-insgen (with training/contrastive_head.py)', param_hint='--repo')
    sys.path.insert(0, repo)
    np.int = int # the release's diffusion uses NumPy's alias, removed in NumPy 1.24
    from training.networks import Generator, Discriminator    # the release's classes, from the checkout
    from training.contrastive_head import CLHead
    from training.augment import AugmentPipe

    torch.manual_seed(1)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None))
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=1, channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None,
                      mapping_kwargs=dict(num_layers=2), epilogue_kwargs=dict(mbstd_group_size=4))
    heads = {name: CLHead(inplanes=16, temperature=0.2, queue_size=89, momentum=0.999) for name in ['DHead', 'GHead']}
    with torch.no_grad(): # weights away from their initial values; the heads' key encoders apart from their MLPs
        for module in [G, D, *heads.values()]:
            for param in module.parameters():
                param.add_(torch.randn_like(param) * 0.05)
        for i, head in enumerate(heads.values()):
            head.queue_ptr[0] = 17 + i
    D_ema = copy.deepcopy(D).eval()
    with torch.no_grad():
        for param in D_ema.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = AugmentPipe(t_max=500, noise_std=0.05, aug='ADA', ts_dist='uniform')
    augment_pipe.p = 0.25
    augment_pipe.update_T()

    z = torch.from_numpy(np.random.RandomState(3).randn(4, 16)).float()
    img = G_ema(z, torch.zeros([4, 0]), noise_mode='const')
    x = torch.from_numpy(np.random.RandomState(4).rand(4, 1, 16, 16) * 2 - 1).float()
    t = torch.tensor([[0], [3], [10], [40]])
    with torch.no_grad():
        logits, feats = D(x, torch.zeros([4, 0]), t, return_feats=True)
        pooled = feats.mean([2, 3])
        projections = {name: torch.nn.functional.normalize(head.mlp(pooled), dim=1).numpy() for name, head in heads.items()}
        key_projections = {name: torch.nn.functional.normalize(head.momentum_mlp(pooled), dim=1).numpy() for name, head in heads.items()}
    data = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, D_ema=D_ema, **heads,
                training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='digits.zip', use_labels=False, max_size=1797, xflip=False, resolution=16),
                progress=dict(cur_nimg=torch.LongTensor([64000]), cur_tick=torch.LongTensor([16]), cur_p=torch.FloatTensor([augment_pipe.p]), batch_idx=torch.LongTensor([2000])),
                reference=dict(z=z.numpy(), img=img.detach().numpy(), x=x.numpy(), t=t.numpy(), logits=logits.numpy(), feats=feats.numpy(),
                               projections=projections, key_projections=key_projections))
    path = os.path.join(DATA_DIR, 'insgen_reference.pkl')
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    print(f'Wrote {path}')

if __name__ == '__main__':
    main()
