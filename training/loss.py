"""Losses of the GAN families. Every family sends real and generated images through the same
adaptive diffusion (training/diffusion.py) before its timestep-aware discriminator D(x_t, c, t)."""

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur truncated at 3 sigma, kernel 2^-(x/sigma)^2 normalized (StyleGAN3's); sigma 0: img itself."""
    blur_size = np.floor(sigma * 3)
    if blur_size <= 0:
        return img
    with torch.autograd.profiler.record_function('blur'):
        f = torch.arange(-blur_size, blur_size + 1, device=img.device).div(sigma).square().neg().exp2()
        return upfirdn2d.filter2d(img, f / f.sum())

#----------------------------------------------------------------------------

class Loss:
    """Interface the training loop drives: one call per phase and minibatch slice."""
    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor,
                             gen_z: torch.Tensor, gen_c: torch.Tensor, gain: float, cur_nimg: int) -> None:
        raise NotImplementedError()

#----------------------------------------------------------------------------

class StyleGAN2Loss(Loss):
    """Non-saturating logistic loss with lazy R1 on D, lazy path-length regularization and style mixing on G.
    Phases: Gmain, Greg, Gboth, Dmain, Dreg, Dboth (the *both phases fuse main loss and regularization)."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # generator (mapping + synthesis)
        D,                              # timestep-aware discriminator D(img, c, t)
        diffusion           = None,     # training.diffusion.Diffusion, or None for the plain StyleGAN2 baseline
        r1_gamma            = 10,       # R1 weight gamma
        style_mixing_prob   = 0.9,      # probability of mixing two latents per sample
        pl_weight           = 2,        # path-length regularization weight, 0 = off
        pl_batch_shrink     = 2,        # path-length minibatch = batch // pl_batch_shrink
        pl_decay            = 0.01,     # decay of the running path-length mean
        pl_no_weight_grad   = False,    # skip weight gradients in the path-length Jacobian (StyleGAN3 practice)
        blur_init_sigma     = 0,        # Gaussian blur of every image D sees, sigma in pixels at the start (StyleGAN3-R: 10)
        blur_fade_kimg      = 0,        # the blur's sigma falls linearly to 0 over this many kimg, 0 = no blur
        G_adv_weight        = 1,        # weight of G's adversarial loss, beside a family's own term (DuDGAN: 0.95)
    ):
        self.device             = device
        self.G                  = G
        self.D                  = D
        self.diffusion          = diffusion
        self.G_adv_weight       = G_adv_weight
        self.r1_gamma           = r1_gamma
        self.style_mixing_prob  = style_mixing_prob
        self.pl_weight          = pl_weight
        self.pl_batch_shrink    = pl_batch_shrink
        self.pl_decay           = pl_decay
        self.pl_no_weight_grad  = pl_no_weight_grad
        self.blur_init_sigma    = blur_init_sigma
        self.blur_fade_kimg     = blur_fade_kimg
        self.pl_mean            = torch.zeros([], device=device)

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            with torch.autograd.profiler.record_function('style_mixing'):
                # With probability style_mixing_prob, the layers from a random cutoff on take their w from a second latent.
                cutoff = torch.randint(1, ws.shape[1], [], device=ws.device)
                mix = torch.rand([], device=ws.device) < self.style_mixing_prob
                cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, ws.shape[1]))
                ws_mix = self.G.mapping(torch.randn_like(z), c, update_emas=False)
                ws = torch.where(torch.arange(ws.shape[1], device=ws.device)[None, :, None] < cutoff, ws, ws_mix)
        img = self.G.synthesis(ws, update_emas=update_emas)
        return img, ws

    def blur_sigma(self, cur_nimg: int) -> float:
        if self.blur_fade_kimg <= 0:
            return 0
        return max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    def run_D(self, img: torch.Tensor, c: torch.Tensor, blur_sigma: float = 0, update_emas: bool = False) -> torch.Tensor:
        img = blur(img, blur_sigma)
        if self.diffusion is not None:
            img, t = self.diffusion(img)
        else:
            t = torch.zeros([img.shape[0], 1], dtype=torch.int64, device=img.device)
        return self.D(img, c, t, update_emas=update_emas)

    def extra_G_loss(self, gen_img: torch.Tensor, gen_c: torch.Tensor):
        """A family's scalar term added to G's main loss (InsGen), None = none."""
        return None

    def extra_D_loss(self, real_img: torch.Tensor, real_c: torch.Tensor, gen_img: torch.Tensor, gen_z: torch.Tensor, gen_c: torch.Tensor):
        """A family's scalar term added to D's main loss (InsGen), computed after D's real and fake logits; None = none."""
        return None

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        if self.pl_weight == 0:
            phase = {'Greg': 'none', 'Gboth': 'Gmain'}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {'Dreg': 'none', 'Dboth': 'Dmain'}.get(phase, phase)
        do_Gmain = phase in ['Gmain', 'Gboth']
        do_Dmain = phase in ['Dmain', 'Dboth']
        do_Gpl   = phase in ['Greg', 'Gboth']
        do_Dr1   = phase in ['Dreg', 'Dboth']
        blur_sigma = self.blur_sigma(cur_nimg)

        # G: make D call the fakes real, -log sigmoid(D(G(z))) = softplus(-D).
        if do_Gmain:
            with torch.autograd.profiler.record_function('Gmain_forward'):
                gen_img, _gen_ws = self.run_G(gen_z, gen_c)
                gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma)
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                loss_Gmain = torch.nn.functional.softplus(-gen_logits)
                training_stats.report('Loss/G/loss', loss_Gmain)
                if self.G_adv_weight != 1:
                    loss_Gmain = loss_Gmain * self.G_adv_weight
                loss_Gextra = self.extra_G_loss(gen_img, gen_c)
            with torch.autograd.profiler.record_function('Gmain_backward'):
                (loss_Gmain.mean() if loss_Gextra is None else loss_Gmain.mean() + loss_Gextra).mul(gain).backward()

        # Path-length regularization: keep |J_w^T y| constant for random image-space directions y.
        if do_Gpl:
            with torch.autograd.profiler.record_function('Gpl_forward'):
                batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
                gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size])
                pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
                with torch.autograd.profiler.record_function('pl_grads'), conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad):
                    pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True)[0]
                pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
                batch_mean = pl_lengths.mean()
                if misc.num_ranks() > 1:
                    # The running mean follows the global minibatch, as in one process (the official code keeps one
                    # per GPU, which drift apart): its value is all-reduced, its gradient each rank's own share.
                    global_mean = batch_mean.detach().clone()
                    torch.distributed.all_reduce(global_mean)
                    batch_mean = batch_mean + (global_mean / misc.num_ranks() - batch_mean.detach())
                pl_mean = self.pl_mean.lerp(batch_mean, self.pl_decay)
                self.pl_mean.copy_(pl_mean.detach())
                pl_penalty = (pl_lengths - pl_mean).square()
                training_stats.report('Loss/pl_penalty', pl_penalty)
                loss_Gpl = pl_penalty * self.pl_weight
                training_stats.report('Loss/G/reg', loss_Gpl)
            with torch.autograd.profiler.record_function('Gpl_backward'):
                loss_Gpl.mean().mul(gain).backward()

        # D on fakes: push D(G(z)) down, softplus(D).
        loss_Dgen = 0
        if do_Dmain:
            with torch.autograd.profiler.record_function('Dgen_forward'):
                gen_img, _gen_ws = self.run_G(gen_z, gen_c, update_emas=True)
                gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, update_emas=True)
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                loss_Dgen = torch.nn.functional.softplus(gen_logits)
            with torch.autograd.profiler.record_function('Dgen_backward'):
                loss_Dgen.mean().mul(gain).backward()

        # D on reals: push D(x) up, softplus(-D); R1 = gamma/2 |grad_x D(x)|^2 through the diffusion.
        if do_Dmain or do_Dr1:
            name = 'Dreal' if do_Dmain and not do_Dr1 else 'Dr1' if do_Dr1 and not do_Dmain else 'Dreal_Dr1'
            with torch.autograd.profiler.record_function(name + '_forward'):
                real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
                real_logits = self.run_D(real_img_tmp, real_c, blur_sigma=blur_sigma)
                training_stats.report('Loss/scores/real', real_logits)
                training_stats.report('Loss/signs/real', real_logits.sign())

                loss_Dreal = 0
                if do_Dmain:
                    loss_Dreal = torch.nn.functional.softplus(-real_logits)
                    training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
                    loss_Dextra = self.extra_D_loss(real_img, real_c, gen_img, gen_z, gen_c)
                    if loss_Dextra is not None:
                        loss_Dreal = loss_Dreal + loss_Dextra

                loss_Dr1 = 0
                if do_Dr1:
                    with torch.autograd.profiler.record_function('r1_grads'), conv2d_gradfix.no_weight_gradients():
                        r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True, only_inputs=True)[0]
                    r1_penalty = r1_grads.square().sum([1, 2, 3])
                    loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                    training_stats.report('Loss/r1_penalty', r1_penalty)
                    training_stats.report('Loss/D/reg', loss_Dr1)
            with torch.autograd.profiler.record_function(name + '_backward'):
                (loss_Dreal + loss_Dr1).mean().mul(gain).backward()

#----------------------------------------------------------------------------

class InsGenLoss(StyleGAN2Loss):
    """StyleGAN2Loss plus InsGen's instance discrimination (training/insgen.py), as the Diffusion-InsGen fork adds
    it. In D's main phases: real instance discrimination (DHead; query and key: two ADA views of each real) and
    fake instance discrimination (GHead; query: an ADA view of each fake, key: one of the fake of its latent moved by
    N(0, fake_view_z_std^2)), their InfoNCE losses added to D's loss; the heads' gradients come from these terms
    and they step with D (step_with in the overlay). In G's main phases, unless cl_on_g is off: GHead's loss of
    the fakes (key: a second view of the same fake) added to G's loss, so G keeps its fakes distinguishable.
    Queries come from D, keys from D_ema, both at t = 0: the heads see the images, not their diffusion."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # generator
        D,                              # timestep-aware D; D(img, c, t, return_feats=True) -> (logits, features)
        DHead,                          # training.insgen.ContrastiveHead of real instances
        GHead,                          # training.insgen.ContrastiveHead of fake instances
        D_ema,                          # momentum copy of D: the keys' features
        diffusion           = None,     # as StyleGAN2Loss
        lw_real_cl          = 1.0,      # weight of the real-instance loss in D's loss
        lw_fake_cl          = 1.0,      # weight of the fake-instance loss in D's loss
        lw_fake_cl_on_g     = 0.1,      # weight of the fake-instance loss in G's loss
        cl_on_g             = True,     # False: G's loss has no fake-instance term (the fork's --no_cl_on_g)
        view_aug_p          = 0.2,      # probability multiplier of ADA's 'bgc' pipeline making the views
        fake_view_z_std     = 0.15,     # std of the latent offset making the fake key view
        **stylegan2_kwargs,             # r1_gamma, style_mixing_prob, pl_weight, ...: see StyleGAN2Loss
    ):
        from training.augment import AugmentPipe
        from training.diffusion import ADA_BGC_KWARGS
        super().__init__(device=device, G=G, D=D, diffusion=diffusion, **stylegan2_kwargs)
        self.DHead              = DHead
        self.GHead              = GHead
        self.D_ema              = D_ema
        self.lw_real_cl         = lw_real_cl
        self.lw_fake_cl         = lw_fake_cl
        self.lw_fake_cl_on_g    = lw_fake_cl_on_g
        self.cl_on_g            = cl_on_g
        self.fake_view_z_std    = fake_view_z_std
        self.view_aug = AugmentPipe(**ADA_BGC_KWARGS).train().requires_grad_(False).to(device)
        self.view_aug.p.fill_(view_aug_p)

    def instance_loss(self, head, img: torch.Tensor, c: torch.Tensor, key_img: torch.Tensor, enqueue, name: str) -> torch.Tensor:
        """InfoNCE of a head: query features D(view of img), key features D_ema(view of key_img)."""
        img_q = self.view_aug(img)
        img_k = self.view_aug(key_img)
        t = torch.zeros([img.shape[0], 1], dtype=torch.int64, device=img.device)
        _, feat_q = self.D(img_q, c, t, return_feats=True)
        with torch.no_grad():
            _, feat_k = self.D_ema(img_k, c, t, return_feats=True)
        loss = head(feat_q, feat_k, enqueue=enqueue)
        training_stats.report(f'Loss/{name}', loss)
        return loss

    def extra_G_loss(self, gen_img, gen_c):
        if not self.cl_on_g:
            return None
        return self.lw_fake_cl_on_g * self.instance_loss(self.GHead, gen_img, gen_c, gen_img, enqueue=None, name='G_cl_on_g')

    def extra_D_loss(self, real_img, real_c, gen_img, gen_z, gen_c):
        loss = self.lw_real_cl * self.instance_loss(self.DHead, real_img.detach(), real_c, real_img.detach(), enqueue='keys', name='D_cl')
        with torch.no_grad():
            moved_img, _ = self.run_G(gen_z + torch.randn_like(gen_z) * self.fake_view_z_std, gen_c)
        return loss + self.lw_fake_cl * self.instance_loss(self.GHead, gen_img.detach(), gen_c, moved_img, enqueue='queries', name='G_cl')

#----------------------------------------------------------------------------

def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07, base_temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, all views as anchors): features [N, V, F] unit vectors of V
    views of N samples, labels [N]. For each anchor (a view of a sample) with at least one positive (another view of
    any sample of its label), minus the mean over its positives of log softmax over all other views of a.x / tau,
    times tau / base_tau; averaged over those anchors."""
    N, V, F = features.shape
    views = features.transpose(0, 1).reshape(N * V, F)     # view-major: all first views, then all second views
    labels = labels.reshape(N).repeat(V)
    self_mask = torch.eye(N * V, dtype=torch.bool, device=features.device)
    logits = (views @ views.T / temperature).masked_fill(self_mask, float('-inf'))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    num_positives = positives.sum(dim=1)
    mean_log_prob = log_prob.masked_fill(~positives, 0).sum(dim=1) / num_positives.clamp(min=1)
    return -(temperature / base_temperature) * mean_log_prob[num_positives > 0].mean()

#----------------------------------------------------------------------------

class DuDGANLoss(StyleGAN2Loss):
    """StyleGAN2Loss plus DuDGAN's classifier C (training/networks_dudgan.py) with its own diffusion diffusion_C. C is
    trained on reals in its own phase (Cboth): (1 - lw_C_ce) x the supervised contrastive loss of two independently
    diffused views of each image + lw_C_ce x the cross-entropy of its class logits of a third. G's loss is
    (1 - lw_G_supcon) x the adversarial loss + lw_G_supcon x C's contrastive loss of the fakes with their labels."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # conditional generator
        D,                              # timestep-aware D
        C,                              # training.networks_dudgan.Classifier: C(img, t) -> (projection, logits)
        diffusion           = None,     # D's diffusion, as StyleGAN2Loss
        diffusion_C         = None,     # C's diffusion (companion diffusion; its p rises linearly), None = C sees t = 0
        lw_G_supcon         = 0.05,     # weight of C's contrastive loss of the fakes in G's loss (the adversarial: 1 - it)
        lw_C_ce             = 0.05,     # weight of the cross-entropy in C's loss (the contrastive: 1 - it)
        temperature         = 0.07,     # SupCon temperature (and base temperature)
        **stylegan2_kwargs,             # r1_gamma, style_mixing_prob, pl_weight, ...: see StyleGAN2Loss
    ):
        super().__init__(device=device, G=G, D=D, diffusion=diffusion, G_adv_weight=1 - lw_G_supcon, **stylegan2_kwargs)
        self.C                  = C
        self.diffusion_C        = diffusion_C
        self.lw_G_supcon        = lw_G_supcon
        self.lw_C_ce            = lw_C_ce
        self.temperature        = temperature

    def run_C(self, img: torch.Tensor):
        if self.diffusion_C is not None:
            img, t = self.diffusion_C(img)
        else:
            t = torch.zeros([img.shape[0], 1], dtype=torch.int64, device=img.device)
        return self.C(img, t)

    def contrastive_loss(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """SupCon of C's projections of two independently diffused views of each image, positives by label."""
        projection, _logits = self.run_C(torch.cat([img, img]))
        return supcon_loss(torch.stack(projection.chunk(2), dim=1), c.argmax(dim=1), self.temperature, self.temperature)

    def extra_G_loss(self, gen_img, gen_c):
        loss = self.contrastive_loss(gen_img, gen_c)
        training_stats.report('Loss/C/fake_contra', loss)
        return self.lw_G_supcon * loss

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        if phase not in ['Cmain', 'Cboth']:
            return super().accumulate_gradients(phase=phase, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c, gain=gain, cur_nimg=cur_nimg)
        with torch.autograd.profiler.record_function('Cmain_forward'):
            real_img = real_img.detach()
            loss_contra = self.contrastive_loss(real_img, real_c)
            _projection, logits = self.run_C(real_img)
            loss_ce = torch.nn.functional.cross_entropy(logits, real_c.argmax(dim=1))
            training_stats.report('Loss/C/real_contra', loss_contra)
            training_stats.report('Loss/C/recon', loss_ce)
            loss_C = (1 - self.lw_C_ce) * loss_contra + self.lw_C_ce * loss_ce
            training_stats.report('Loss/C/loss', loss_C)
        with torch.autograd.profiler.record_function('Cmain_backward'):
            loss_C.mul(gain).backward()

#----------------------------------------------------------------------------

class DCGANLoss(StyleGAN2Loss):
    """StyleGAN2Loss for generators without a mapping network (DCGAN): G(z, c) makes the images; the non-saturating
    logistic loss is DCGAN's binary cross-entropy on logits. No style mixing or path length; R1 only when r1_gamma
    is set (DCGAN has none)."""
    def __init__(self, device, G, D, diffusion=None, r1_gamma=0, style_mixing_prob=0, pl_weight=0, **stylegan2_kwargs):
        super().__init__(device=device, G=G, D=D, diffusion=diffusion, r1_gamma=r1_gamma, style_mixing_prob=style_mixing_prob, pl_weight=pl_weight, **stylegan2_kwargs)

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        return self.G(z, c, update_emas=update_emas), None

#----------------------------------------------------------------------------

ETA_SCHEDULES = ('uniform', 'final', 'linear')

def difgan_eta(eta, steps: int) -> np.ndarray:
    """DifGAN's weights of the intermediate outputs z_{T-1}, ..., z_0 (generation order), normalized to sum 1: a
    schedule name ('uniform': equal; 'final': z_0 only, a plain GAN with an unrolled G; 'linear': 1, 2, ..., T, later
    outputs weigh more) or T non-negative numbers. ValueError naming --eta otherwise."""
    if isinstance(eta, str):
        if eta not in ETA_SCHEDULES:
            raise ValueError(f'--eta={eta}: expected {", ".join(ETA_SCHEDULES)} or {steps} comma-separated weights')
        weights = dict(uniform=np.ones(steps), final=np.eye(steps)[-1], linear=np.arange(1, steps + 1))[eta]
    else:
        weights = np.asarray(eta, dtype=np.float64).reshape(-1)
        if len(weights) != steps:
            raise ValueError(f'--eta: {len(weights)} weights for {steps} generator steps (--steps); expected one per step, z_(T-1) first')
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f'--eta={",".join(f"{w:g}" for w in weights)}: expected non-negative weights, not all 0')
    return weights / weights.sum()

class DifGANLoss(DCGANLoss):
    """DifGAN: G unrolled over T steps (training/networks_difgan.py), D judges every intermediate output z_k.
    D: softplus(-D(x)) + sum_k eta_k softplus(D(z_k)), i.e. -sum_k eta_k [log D(x) + log(1 - D(z_k))] with the eta
    summing to 1; G: sum_k eta_k softplus(-D(z_k)), the non-saturating form of sum_k eta_k log(1 - D(z_k)).
    Outputs with eta_k = 0 are not shown to D. Gradients of every term flow back through all earlier steps."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # training.networks_difgan.Generator
        D,                              # timestep-aware D (t = 0 for every z_k unless a diffusion is given)
        diffusion           = None,     # training.diffusion.Diffusion in front of D, or None (DifGAN's own setting)
        eta                 = 'uniform',# weights of z_(T-1), ..., z_0: a name of ETA_SCHEDULES or T numbers (see difgan_eta)
        **dcgan_kwargs,                 # r1_gamma, ...: see DCGANLoss
    ):
        super().__init__(device=device, G=G, D=D, diffusion=diffusion, **dcgan_kwargs)
        weights = difgan_eta(eta, G.steps)
        self.active = np.flatnonzero(weights).tolist()  # plain lists: constants of the run, not part of its resume state
        self.eta = weights[weights > 0].tolist()

    @staticmethod
    def check_kwargs(kwargs: dict, networks: dict) -> None:
        difgan_eta(kwargs.get('eta', 'uniform'), networks['G'].steps)

    def run_G_steps(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        """The outputs with eta_k > 0, [N, K, C, H, W]."""
        return self.G(z, c, return_steps=True, update_emas=update_emas)[:, 1:][:, self.active]

    def run_D_steps(self, steps_img: torch.Tensor, c: torch.Tensor, blur_sigma: float = 0, update_emas: bool = False) -> torch.Tensor:
        """D's logits [N, K] of every output, one step's outputs per call: a D with batch norm then sees each step's
        batch statistics (with all steps in one batch, their differences dwarf a step's collapse)."""
        return torch.cat([self.run_D(steps_img[:, k], c, blur_sigma=blur_sigma, update_emas=update_emas) for k in range(steps_img.shape[1])], dim=1)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        blur_sigma = self.blur_sigma(cur_nimg)
        if phase in ['Gmain', 'Gboth']:
            with torch.autograd.profiler.record_function('Gmain_forward'):
                gen_logits = self.run_D_steps(self.run_G_steps(gen_z, gen_c), gen_c, blur_sigma=blur_sigma)
                training_stats.report('Loss/scores/fake', gen_logits[:, -1])
                training_stats.report('Loss/signs/fake', gen_logits[:, -1].sign())
                loss_Gmain = (torch.nn.functional.softplus(-gen_logits) * gen_logits.new_tensor(self.eta)).sum(dim=1)
                training_stats.report('Loss/G/loss', loss_Gmain)
            with torch.autograd.profiler.record_function('Gmain_backward'):
                loss_Gmain.mean().mul(gain).backward()
        if phase in ['Dmain', 'Dboth']:
            with torch.autograd.profiler.record_function('Dgen_forward'):
                gen_logits = self.run_D_steps(self.run_G_steps(gen_z, gen_c, update_emas=True), gen_c, blur_sigma=blur_sigma, update_emas=True)
                training_stats.report('Loss/scores/fake', gen_logits[:, -1])
                training_stats.report('Loss/signs/fake', gen_logits[:, -1].sign())
                loss_Dgen = (torch.nn.functional.softplus(gen_logits) * gen_logits.new_tensor(self.eta)).sum(dim=1)
            with torch.autograd.profiler.record_function('Dgen_backward'):
                loss_Dgen.mean().mul(gain).backward()
            with torch.autograd.profiler.record_function('Dreal_forward'):
                real_logits = self.run_D(real_img.detach(), real_c, blur_sigma=blur_sigma)
                training_stats.report('Loss/scores/real', real_logits)
                training_stats.report('Loss/signs/real', real_logits.sign())
                loss_Dreal = torch.nn.functional.softplus(-real_logits)
                training_stats.report('Loss/D/loss', loss_Dgen[:, None] + loss_Dreal)
            with torch.autograd.profiler.record_function('Dreal_backward'):
                loss_Dreal.mean().mul(gain).backward()
        if phase in ['Dreg', 'Dboth'] and self.r1_gamma != 0:
            super().accumulate_gradients('Dreg', real_img, real_c, gen_z, gen_c, gain, cur_nimg)

#----------------------------------------------------------------------------

class ProjectedGANLoss(Loss):
    """Hinge loss of Projected GANs on the multi-scale logits of the projected D, whose feature maps the diffusion
    acts on (D draws the timesteps); G raises D's logits of its images. No regularization: Greg/Dreg do nothing.
    Phases: Gmain, Gboth, Dmain, Dboth (and Greg, Dreg, which compute nothing)."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # generator G(z, c, update_emas=...): FastGAN or StyleGAN2
        D,                              # projected discriminator D(img, c, diffusion=...)
        diffusion           = None,     # training.diffusion.Diffusion for the feature maps, or None
        blur_init_sigma     = 0,        # Gaussian blur of D's input, sigma in pixels at the start
        blur_fade_kimg      = 0,        # the blur fades out linearly over this many kimg, 0 = no blur
    ):
        self.device             = device
        self.G                  = G
        self.D                  = D
        self.diffusion          = diffusion
        self.blur_init_sigma    = blur_init_sigma
        self.blur_fade_kimg     = blur_fade_kimg

    blur_sigma = StyleGAN2Loss.blur_sigma

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        return self.G(z, c, update_emas=update_emas) # FastGAN, or StyleGAN2 (its w_avg tracked in the D phase)

    def run_D(self, img: torch.Tensor, c: torch.Tensor, blur_sigma: float = 0) -> torch.Tensor:
        return self.D(blur(img, blur_sigma), c, diffusion=self.diffusion)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        blur_sigma = self.blur_sigma(cur_nimg)

        # G: maximize D's logits of generated images.
        if phase in ['Gmain', 'Gboth']:
            with torch.autograd.profiler.record_function('Gmain_forward'):
                gen_logits = self.run_D(self.run_G(gen_z, gen_c), gen_c, blur_sigma=blur_sigma)
                loss_Gmain = (-gen_logits).mean()
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                training_stats.report('Loss/G/loss', loss_Gmain)
            with torch.autograd.profiler.record_function('Gmain_backward'):
                loss_Gmain.mul(gain).backward()

        # D: hinge, relu(1 + D(fake)) + relu(1 - D(real)); the signs of every real logit of every scale drive p.
        if phase in ['Dmain', 'Dboth']:
            with torch.autograd.profiler.record_function('Dgen_forward'):
                gen_logits = self.run_D(self.run_G(gen_z, gen_c, update_emas=True), gen_c, blur_sigma=blur_sigma)
                loss_Dgen = torch.nn.functional.relu(1 + gen_logits).mean()
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
            with torch.autograd.profiler.record_function('Dgen_backward'):
                loss_Dgen.mul(gain).backward()
            with torch.autograd.profiler.record_function('Dreal_forward'):
                real_logits = self.run_D(real_img.detach(), real_c, blur_sigma=blur_sigma)
                loss_Dreal = torch.nn.functional.relu(1 - real_logits).mean()
                training_stats.report('Loss/scores/real', real_logits)
                training_stats.report('Loss/signs/real', real_logits.sign())
                training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
            with torch.autograd.profiler.record_function('Dreal_backward'):
                loss_Dreal.mul(gain).backward()

#----------------------------------------------------------------------------

class DDPMLoss(Loss):
    """DDPM's L_simple (training/networks_ddpm.py): |eps - G.unet(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, c)|^2
    averaged over pixels, t uniform on 1..T, eps ~ N(0, I). G phases only (Gmain, Gboth); there is no D. The family
    has its own forward process, so the adaptive diffusion of Diffusion-GAN is refused."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # training.networks_ddpm.Generator
        diffusion           = None,     # must not diffuse (train.py gives a no-op one unless --diffusion)
    ):
        if diffusion is not None and diffusion.diffuse:
            raise dnnlib.UserError('--diffusion: DDPM and DDGAN have their own forward process; leave --diffusion out')
        self.device = device
        self.G = G

    def training_pair(self, x_0: torch.Tensor):
        """(x_t, t [N], eps): a timestep per image and its noised image."""
        t = torch.randint(1, self.G.num_timesteps + 1, [x_0.shape[0]], device=x_0.device)
        eps = torch.randn_like(x_0)
        return self.G.schedule.q_sample(x_0, t, eps), t, eps

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        assert phase in ['Gmain', 'Gboth']
        with torch.autograd.profiler.record_function('Gmain_forward'):
            x_t, t, eps = self.training_pair(real_img)
            loss = (self.G.unet(x_t, t, real_c) - eps).square().mean(dim=[1, 2, 3])
            training_stats.report('Loss/G/loss', loss)
        with torch.autograd.profiler.record_function('Gmain_backward'):
            loss.mean().mul(gain).backward()

#----------------------------------------------------------------------------

class DDGANLoss(DDPMLoss):
    """The Denoising Diffusion GAN's adversarial loss (training/networks_ddgan.py). A real pair: t uniform on 1..T,
    x_(t-1) ~ q(x_(t-1) | x_0), x_t ~ q(x_t | x_(t-1)); its fake: G's step from that x_t (x_0' = G.net(x_t, t, c, z),
    x_(t-1)' ~ q(x_(t-1) | x_t, x_0')). D(x_(t-1), c, t, x_t): non-saturating logistic loss, lazy R1 on the real
    x_(t-1) with weight r1_gamma / 2. G: softplus(-D) of its steps from fresh pairs. Labels: the real images'."""
    def __init__(self,
        device,                         # torch.device the loss runs on
        G,                              # training.networks_ddgan.Generator
        D,                              # training.networks_ddgan.Discriminator
        diffusion           = None,     # must not diffuse, as for DDPM
        r1_gamma            = 0.02,     # R1 weight gamma
    ):
        super().__init__(device=device, G=G, diffusion=diffusion)
        self.D = D
        self.r1_gamma = r1_gamma

    def real_pair(self, x_0: torch.Tensor):
        """(x_(t-1), x_t, t [N]) from the forward process."""
        t = torch.randint(1, self.G.num_timesteps + 1, [x_0.shape[0]], device=x_0.device)
        x_prev = self.G.schedule.q_sample(x_0, t - 1, torch.randn_like(x_0))
        alpha = self.G.schedule.abar(t) / self.G.schedule.abar(t - 1)
        return x_prev, alpha.sqrt() * x_prev + (1 - alpha).sqrt() * torch.randn_like(x_0), t

    def fake_prev(self, x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        z = torch.randn([x_t.shape[0], self.G.nz], device=x_t.device)
        return self.G.step(x_t, t, c, z, torch.randn_like(x_t))

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        if phase in ['Gmain', 'Gboth']:
            with torch.autograd.profiler.record_function('Gmain_forward'):
                _x_prev, x_t, t = self.real_pair(real_img)
                gen_logits = self.D(self.fake_prev(x_t, t, real_c), real_c, t, x_t)
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                loss_G = torch.nn.functional.softplus(-gen_logits)
                training_stats.report('Loss/G/loss', loss_G)
            with torch.autograd.profiler.record_function('Gmain_backward'):
                loss_G.mean().mul(gain).backward()
        do_Dmain = phase in ['Dmain', 'Dboth']
        do_Dr1 = phase in ['Dreg', 'Dboth'] and self.r1_gamma != 0
        if not (do_Dmain or do_Dr1):
            return
        x_prev, x_t, t = self.real_pair(real_img)
        loss_Dgen = 0
        if do_Dmain:
            with torch.autograd.profiler.record_function('Dgen_forward'):
                with torch.no_grad():
                    fake = self.fake_prev(x_t, t, real_c)
                gen_logits = self.D(fake, real_c, t, x_t)
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
                loss_Dgen = torch.nn.functional.softplus(gen_logits)
        with torch.autograd.profiler.record_function('Dreal_forward'):
            x_prev = x_prev.detach().requires_grad_(do_Dr1)
            real_logits = self.D(x_prev, real_c, t, x_t)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', real_logits.sign())
            loss_D = loss_Dgen
            if do_Dmain:
                loss_D = loss_D + torch.nn.functional.softplus(-real_logits)
                training_stats.report('Loss/D/loss', loss_D)
            if do_Dr1:
                r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[x_prev], create_graph=True, only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                training_stats.report('Loss/r1_penalty', r1_penalty)
                training_stats.report('Loss/D/reg', r1_penalty * (self.r1_gamma / 2))
                loss_D = loss_D + r1_penalty[:, None] * (self.r1_gamma / 2)
        with torch.autograd.profiler.record_function('Dreal_backward'):
            loss_D.mean().mul(gain).backward()

#----------------------------------------------------------------------------
