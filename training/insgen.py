"""InsGen's instance discrimination ("Data-Efficient Instance Generation from Instance Discrimination", Yang et al.,
NeurIPS 2021), as the Diffusion-InsGen fork of the Diffusion-GAN release trains it: contrastive heads on D's
features, MoCo-style.

A head maps D's features before its output layer (the input of the 4x4 epilogue, averaged over space) through a
2-layer MLP to a unit vector q; a momentum copy of the MLP gives the keys k of a second view from a momentum copy of
D (D_ema). The loss is InfoNCE: cross-entropy of the logits [q.k, q.queue] / temperature with the positive at index
0, against a queue of keys of earlier minibatches (the negatives). One head discriminates real instances (views:
two ADA augmentations of a real image), one fake instances (views: a fake and a fake of a slightly moved latent).

The queue is identical on every rank: each rank enqueues the keys of the whole global minibatch, gathered in rank
order, which is also the order a single process holding the global minibatch enqueues them in. MoCo shuffles the
keys' minibatch across ranks because its key encoder has batch-norm statistics; these heads have none (every key
depends on its own sample alone), so the shuffle would change no number and is not done.

Parameter and buffer names follow the fork's CLHead (mlp, momentum_mlp, queue [128, K], queue_ptr), so that the
weights of its pickles copy over. This module imports only torch_utils: a pickle rebuilds with it alone."""

import torch

from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE: q, k [N, F] unit queries and their positive keys, queue [F, K] unit negatives -> mean over N of
    -log softmax([q.k, q.queue] / temperature)[0]."""
    misc.assert_shape(k, list(q.shape))
    misc.assert_shape(queue, [q.shape[1], None])
    logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ queue], dim=1) / temperature
    labels = torch.zeros([q.shape[0]], dtype=torch.int64, device=q.device)
    return torch.nn.functional.cross_entropy(logits, labels)

def gather_ranks(x: torch.Tensor) -> torch.Tensor:
    """x of every rank concatenated in rank order (x itself in a single process); no gradient."""
    if misc.num_ranks() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(misc.num_ranks())]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.cat(parts)

#----------------------------------------------------------------------------

@persistence.persistent_class
class ContrastiveHead(torch.nn.Module):
    """One instance-discrimination head: MLP in_features -> in_features -> ReLU -> out_features, its momentum copy
    (the key encoder) and a ring buffer of queue_size keys. head(feat_q, feat_k) -> InfoNCE loss, a scalar."""
    def __init__(self,
        in_features,                    # channels of D's features (D's channels at 4x4)
        queue_size,                     # negatives kept, >= 1 (InsGen: 5% of the dataset, doubled with x-flips)
        temperature     = 0.2,          # softmax temperature of the logits
        momentum        = 0.999,        # key encoder <- momentum * itself + (1 - momentum) * MLP, at every call
        out_features    = 128,          # dimension of the unit vectors compared
        c_dim           = None,         # given to every network of a preset; a head does not use it
        img_resolution  = None,         # (idem)
        img_channels    = None,         # (idem)
    ):
        super().__init__()
        if queue_size < 1:
            raise ValueError(f'queue_size={queue_size}: expected at least 1 negative')
        self.in_features = in_features
        self.queue_size = queue_size
        self.temperature = temperature
        self.momentum = momentum
        self.mlp = torch.nn.Sequential(torch.nn.Linear(in_features, in_features), torch.nn.ReLU(), torch.nn.Linear(in_features, out_features))
        self.momentum_mlp = torch.nn.Sequential(torch.nn.Linear(in_features, in_features), torch.nn.ReLU(), torch.nn.Linear(in_features, out_features))
        self.momentum_mlp.load_state_dict(self.mlp.state_dict())
        self.momentum_mlp.requires_grad_(False)
        self.register_buffer('queue', torch.nn.functional.normalize(torch.randn([out_features, queue_size]), dim=0))
        self.register_buffer('queue_ptr', torch.zeros([1], dtype=torch.int64))

    def requires_grad_(self, requires_grad: bool = True):
        super().requires_grad_(requires_grad)
        self.momentum_mlp.requires_grad_(False) # the key encoder follows the MLP by momentum only
        return self

    @staticmethod
    def pool(feats: torch.Tensor) -> torch.Tensor:
        """D's feature maps [N, C, H, W] averaged over space (features [N, C] pass through), in float32."""
        feats = feats.to(torch.float32)
        return feats.mean(dim=[2, 3]) if feats.ndim > 2 else feats

    def encode(self, feats: torch.Tensor, momentum: bool = False) -> torch.Tensor:
        """Unit vectors [N, out_features] of pooled features, by the MLP or its momentum copy."""
        return torch.nn.functional.normalize((self.momentum_mlp if momentum else self.mlp)(feats), dim=1)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write the keys of the global minibatch into the ring buffer from queue_ptr on, one after another, wrapping
        around (with more keys than slots, the last queue_size keys stay)."""
        keys = gather_ranks(keys)
        slots = (int(self.queue_ptr) + torch.arange(keys.shape[0], device=keys.device)) % self.queue_size
        keep = slice(max(keys.shape[0] - self.queue_size, 0), None) # earlier keys would be overwritten in the same call
        self.queue[:, slots[keep]] = keys[keep].T.to(self.queue.dtype)
        self.queue_ptr[0] = (int(self.queue_ptr) + keys.shape[0]) % self.queue_size

    def forward(self, feat_q: torch.Tensor, feat_k: torch.Tensor, enqueue: str = 'keys') -> torch.Tensor:
        """InfoNCE of the queries (feat_q, with gradient) against their keys (feat_k, from D_ema) and the queue.
        Steps the key encoder first. Then enqueues: 'keys' the keys of feat_k, 'queries' the key encoder's
        vectors of feat_q (InsGen's fake head), None nothing (G's use of the fake head)."""
        assert enqueue in ['keys', 'queries', None]
        feat_q, feat_k = self.pool(feat_q), self.pool(feat_k)
        q = self.encode(feat_q)
        with torch.no_grad():
            misc.momentum_update(self.momentum_mlp, self.mlp, self.momentum)
            k = self.encode(feat_k, momentum=True)
        loss = info_nce(q, k, self.queue.clone(), self.temperature)
        if enqueue == 'keys':
            self.enqueue(k)
        elif enqueue == 'queries':
            self.enqueue(self.encode(feat_q.detach(), momentum=True))
        return loss

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, queue_size={self.queue_size}, temperature={self.temperature:g}, momentum={self.momentum:g}'

#----------------------------------------------------------------------------
