#!/usr/bin/env python3
"""Generate a deterministic synthetic 10-class data set for the Chainer example.

Each class is a Gaussian blob around a fixed random centre in 64 dimensions
(think of a noisy 8x8 "digit"). The centres and samples come from fixed seeds,
so every run writes exactly the same files:

    TRAIN_DIR/train.npz  and  TEST_DIR/test.npz   (x: float32 [N, 64], y: int32 [N])

Usage: generate_data.py TRAIN_DIR TEST_DIR [--samples N]
"""
import argparse
import os

import numpy as np

N_CLASSES = 10
N_FEATURES = 64  # 8x8
NOISE = 1.6      # large enough that the task is not trivially 100% accurate


def _make(centres, n, seed):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, N_CLASSES, size=n).astype(np.int32)
    x = centres[y] + NOISE * rng.randn(n, N_FEATURES)
    return x.astype(np.float32), y


def generate(train_dir, test_dir, samples=6000, seed=0):
    """Write train.npz (`samples` rows) and test.npz (samples // 4 rows)."""
    centres = np.random.RandomState(seed).randn(N_CLASSES, N_FEATURES)
    for directory, name, n, split_seed in ((train_dir, 'train.npz', samples, seed + 1),
                                           (test_dir, 'test.npz', max(samples // 4, 1), seed + 2)):
        x, y = _make(centres, n, split_seed)
        os.makedirs(directory, exist_ok=True)
        np.savez(os.path.join(directory, name), x=x, y=y)
        print('wrote %s: x %s, y %s' % (os.path.join(directory, name), x.shape, y.shape))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('train_dir')
    parser.add_argument('test_dir')
    parser.add_argument('--samples', type=int, default=6000, help='training samples (test gets 1/4)')
    args = parser.parse_args()
    generate(args.train_dir, args.test_dir, args.samples)
