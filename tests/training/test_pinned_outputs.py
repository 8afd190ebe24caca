"""Pinned outputs of the StyleGAN2 networks: G and D with fixed weights on fixed inputs must give the numbers stored
in tests/data/stylegan2_pinned.npz, so that any change in their numerics is seen. When a change is deliberate,
rewrite the file and say why in the commit:

    python tests/training/test_pinned_outputs.py --update"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from training import networks_stylegan2 as net  # noqa: E402 (the repository root on sys.path for --update)

PINNED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'stylegan2_pinned.npz')
G_KWARGS = dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2), channel_base=256, channel_max=16)
D_KWARGS = dict(c_dim=3, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2))

#----------------------------------------------------------------------------

def networks(weights=None):
    torch.manual_seed(0)
    G = net.Generator(**G_KWARGS).eval()
    D = net.Discriminator(**D_KWARGS).eval()
    if weights is not None:
        for prefix, module in [('G.', G), ('D.', D)]:
            module.load_state_dict({name[len(prefix):]: torch.as_tensor(np.asarray(value)) for name, value in weights.items() if name.startswith(prefix)})
    return G, D

def outputs(G, D, inputs):
    with torch.no_grad():
        z, c, t = (torch.from_numpy(inputs[name]) for name in ['z', 'c', 't'])
        img = G(z, c, truncation_psi=0.7, noise_mode='const')
        logits = D(img, c, t)
        ws = G.mapping(z, c)
    return dict(img=img.numpy(), logits=logits.numpy(), ws=ws.numpy())

def update() -> None:
    G, D = networks()
    rnd = np.random.RandomState(1)
    # Random weights instead of the initialization: every layer, bias and noise strength takes part.
    weights = {f'{prefix}{name}': (value.numpy() + np.asarray(rnd.standard_normal(tuple(value.shape)), dtype=np.float32) * 0.1 if value.is_floating_point() else value.numpy())
               for prefix, module in [('G.', G), ('D.', D)] for name, value in module.state_dict().items()}
    inputs = dict(z=rnd.randn(4, 8).astype(np.float32), c=np.eye(3, dtype=np.float32)[[0, 1, 2, 1]], t=np.array([[0], [3], [17], [250]], dtype=np.int64))
    G, D = networks(weights)
    expected = outputs(G, D, inputs)
    np.savez_compressed(PINNED, **{f'w/{k}': v for k, v in weights.items()}, **{f'in/{k}': v for k, v in inputs.items()}, **{f'out/{k}': v for k, v in expected.items()})
    print(f'Wrote {PINNED}')

#----------------------------------------------------------------------------

def test_pinned_outputs():
    with np.load(PINNED) as data:
        weights = {key[2:]: data[key] for key in data.files if key.startswith('w/')}
        inputs = {key[3:]: data[key] for key in data.files if key.startswith('in/')}
        expected = {key[4:]: data[key] for key in data.files if key.startswith('out/')}
    G, D = networks(weights)
    actual = outputs(G, D, inputs)
    for name in expected:
        # float32 on different CPUs and thread counts: summation order may move the last bits, nothing more.
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    if sys.argv[1:] != ['--update']:
        sys.exit(f'usage: python {sys.argv[0]} --update   (rewrites {PINNED})')
    update()

#----------------------------------------------------------------------------
