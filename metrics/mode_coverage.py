"""Mode coverage of a generator on labelled digit-like data (the built-in digits, MNIST made by dataset_tool.py):
a small classifier fitted on the real labelled images (multinomial logistic regression on 8x8 gray thumbnails, a
few seconds on a CPU) labels the generated images, and the class histogram is compared with the real one.

Reports: the classifier's accuracy on a held-out fifth of the real images (how far to trust the rest), the number
of classes covered (a class counts when its share of the generated images is at least COVERED_FRACTION of its
real share), KL(generated || real) of the class histograms (0 = the real class balance, log(10) = 2.30 for one
class out of ten balanced ones), and the classifier's mean confidence on the generated images (low for images
that look like no class). For a conditional generator also the accuracy with which G(z, c) draws class c: per
class, the share of num_gen / classes images G(z, c) (the same latents for every class) that the classifier labels
c, and their mean.
Limits: it sees classes, not quality (a blurry 3 is a 3) nor variety within a class (one 3 repeated is full
coverage of class 3); the thumbnail classifier suits centred glyphs, not natural images; it needs class labels."""

import copy

import numpy as np
import torch

import dnnlib
from . import metric_utils

COVERED_FRACTION = 0.5      # a class is covered when its generated share >= this x its real share (a few
                            # percent of misclassified images of another class do not count as coverage)

#----------------------------------------------------------------------------

def thumbnails(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, 64]: the channel mean, area-averaged to 8x8, in [0, 1]."""
    x = images.to(torch.float32).mean(dim=1, keepdim=True)
    return torch.nn.functional.adaptive_avg_pool2d(x, [8, 8]).flatten(1) / 255

class DigitClassifier(torch.nn.Module):
    """Multinomial logistic regression on thumbnails(); called like a feature detector on uint8 images, it
    returns class probabilities [N, classes]."""
    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        super().__init__()
        self.register_buffer('weight', torch.as_tensor(weight, dtype=torch.float32)) # [classes, 64]
        self.register_buffer('bias', torch.as_tensor(bias, dtype=torch.float32))     # [classes]

    def forward(self, images: torch.Tensor, **_detector_kwargs) -> torch.Tensor:
        return torch.softmax(thumbnails(images) @ self.weight.T + self.bias, dim=1)

def fit_classifier(dataset_kwargs: dict, seed: int = 0) -> tuple:
    """(DigitClassifier, held-out accuracy, real class histogram) for the labelled dataset; the classifier is fitted
    on a stratified four fifths of it and scored on the rest."""
    from sklearn.linear_model import LogisticRegression # deferred: importing scikit-learn takes about a second
    from sklearn.model_selection import train_test_split
    kwargs = dict(dataset_kwargs, xflip=False, max_size=None)
    try:
        dataset = dnnlib.util.construct_class_by_name(**dict(kwargs, use_labels=True))
    except dnnlib.UserError:
        dataset = None
    if dataset is None or not dataset.has_labels or not dataset.has_onehot_labels:
        name = dnnlib.util.construct_class_by_name(**dict(kwargs, use_labels=False)).name
        raise dnnlib.UserError(f'mode coverage needs class labels, and {name} has none (dataset.json "labels" with class indices)')
    # One pass over the data: each item is (image, one-hot label); thumbnails are taken 1024 images at a time.
    features, labels = [], []
    for start in range(0, len(dataset), 1024):
        images, onehots = zip(*[dataset[i] for i in range(start, min(start + 1024, len(dataset)))])
        features.append(thumbnails(torch.from_numpy(np.stack(images))))
        labels.extend(int(np.argmax(onehot)) for onehot in onehots)
    features = torch.cat(features).numpy().astype(np.float64)
    labels = np.array(labels)
    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.2, stratify=labels, random_state=seed)
    model = LogisticRegression(max_iter=5000).fit(train_x, train_y)
    num_classes = dataset.label_dim
    weight = np.zeros([num_classes, features.shape[1]])
    bias = np.full([num_classes], -1e4) # classes missing from the fit are never predicted
    weight[model.classes_] = model.coef_
    bias[model.classes_] = model.intercept_
    real_hist = np.bincount(labels, minlength=num_classes) / len(labels)
    return DigitClassifier(weight, bias), float(model.score(test_x, test_y)), real_hist

def coverage_from_probs(gen_probs: np.ndarray, real_hist: np.ndarray) -> dict:
    """classes, kl, confidence of generated class probabilities [N, classes] against the real histogram."""
    gen_hist = np.bincount(gen_probs.argmax(axis=1), minlength=len(real_hist)) / len(gen_probs)
    nonzero = gen_hist > 0
    return dict(
        classes     = int(np.sum(gen_hist >= COVERED_FRACTION * real_hist)),
        kl          = float(np.sum(gen_hist[nonzero] * np.log(gen_hist[nonzero] / real_hist[nonzero]))),
        confidence  = float(gen_probs.max(axis=1).mean()),
    )

#----------------------------------------------------------------------------

class FixedLabelGenerator(torch.nn.Module):
    """A conditional G with its label fixed to one class, called like an unconditional one (c_dim 0), so that the
    generator features of metric_utils draw G(z, c) for that class only."""
    def __init__(self, G: torch.nn.Module, label: int):
        super().__init__()
        self.G = G
        self.z_dim, self.c_dim = G.z_dim, 0
        self.register_buffer('onehot', torch.nn.functional.one_hot(torch.tensor([label]), G.c_dim).to(torch.float32))

    def forward(self, z: torch.Tensor, c: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.G(z=z, c=self.onehot.expand(z.shape[0], -1), **kwargs)

def conditional_accuracy(opts: metric_utils.MetricOptions, classifier: DigitClassifier, num_per_class: int) -> list:
    """Per class c of a conditional opts.G: the share of num_per_class images G(z, c) that the classifier labels c."""
    per_class = []
    for label in range(opts.G.c_dim):
        class_opts = copy.copy(opts)
        class_opts.G = FixedLabelGenerator(opts.G, label)
        probs = metric_utils.compute_feature_stats_for_generator(opts=class_opts, detector_url=classifier, detector_kwargs={},
            capture_all=True, max_items=num_per_class).get_all()
        per_class.append(float(np.mean(probs.argmax(axis=1) == label)))
    return per_class

def compute_mode_coverage(opts: metric_utils.MetricOptions, num_gen: int) -> dict:
    """dict(classes, kl, confidence, accuracy) of num_gen generated images, and for a conditional G cond_accuracy
    (the mean over classes) and cond_accuracy_classK for each class K; NaN on ranks > 0."""
    classifier, accuracy, real_hist = fit_classifier(opts.dataset_kwargs)
    if opts.G.c_dim not in (0, len(real_hist)):
        raise dnnlib.UserError(f'mode coverage: the generator has {opts.G.c_dim} classes and the data {len(real_hist)}; expected the same')
    gen_probs = metric_utils.compute_feature_stats_for_generator(opts=opts, detector_url=classifier, detector_kwargs={},
        capture_all=True, max_items=num_gen).get_all()
    per_class = conditional_accuracy(opts, classifier, num_per_class=max(num_gen // opts.G.c_dim, 1)) if opts.G.c_dim > 0 else []
    result = dict(coverage_from_probs(gen_probs, real_hist), accuracy=accuracy)
    if per_class:
        result.update(cond_accuracy=float(np.mean(per_class)), **{f'cond_accuracy_class{label}': value for label, value in enumerate(per_class)})
    if opts.rank != 0:
        return {key: float('nan') for key in result}
    return result

#----------------------------------------------------------------------------
