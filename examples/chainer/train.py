"""Chainer training script in the style of the SageMaker Chainer docs.

SageMaker (here: smlaunch) runs it as
    python train.py --epochs 5 --batch-size 64 --learning-rate 0.05
with the data and model locations passed through SM_* environment variables.
"""
import argparse
import json
import os
import time

import numpy as np

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import training
from chainer.training import extensions


class MLP(chainer.Chain):
    """Three-layer perceptron; input size is inferred on the first call."""

    def __init__(self, n_units, n_out):
        super(MLP, self).__init__()
        with self.init_scope():
            self.l1 = L.Linear(None, n_units)
            self.l2 = L.Linear(None, n_units)
            self.l3 = L.Linear(None, n_out)

    def forward(self, x):
        h1 = F.relu(self.l1(x))
        h2 = F.relu(self.l2(h1))
        return self.l3(h2)


def load_npz_data(directory, name):
    with np.load(os.path.join(directory, name)) as data:
        return data['x'].astype(np.float32), data['y'].astype(np.int32)


def model_fn(model_dir):
    """Load the model for hosting (SageMaker calls this with SM_MODEL_DIR).

    The layer sizes are read back from the saved weights, so the hyperparameters
    used in training need not be known here.
    """
    path = os.path.join(model_dir, 'model.npz')
    with np.load(path) as params:
        n_units = params['l1/W'].shape[0]
        n_out = params['l3/W'].shape[0]
    model = MLP(n_units, n_out)
    chainer.serializers.load_npz(path, model)  # also sizes the lazily initialised l1
    return model


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    # Hyperparameters (hyperparameters.json -> command line arguments).
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--learning-rate', type=float, default=0.05)
    parser.add_argument('--units', type=int, default=100)
    # SageMaker locations (environment variables set by the launcher).
    parser.add_argument('--model-dir', type=str, default=os.environ.get('SM_MODEL_DIR'))
    parser.add_argument('--train', type=str, default=os.environ.get('SM_CHANNEL_TRAIN'))
    parser.add_argument('--test', type=str, default=os.environ.get('SM_CHANNEL_TEST'))
    parser.add_argument('--output-data-dir', type=str, default=os.environ.get('SM_OUTPUT_DATA_DIR'))
    parser.add_argument('--num-gpus', type=int, default=int(os.environ.get('SM_NUM_GPUS', 0)))
    args = parser.parse_args()
    for name in ('model_dir', 'train', 'test', 'output_data_dir'):
        if not getattr(args, name):
            parser.error('--%s (or its SM_* environment variable) is required' % name.replace('_', '-'))

    start = time.time()
    np.random.seed(0)  # deterministic weight init and shuffling

    train_x, train_y = load_npz_data(args.train, 'train.npz')
    test_x, test_y = load_npz_data(args.test, 'test.npz')
    n_classes = int(train_y.max()) + 1
    print('train: %d samples, test: %d samples, %d features, %d classes'
          % (len(train_x), len(test_x), train_x.shape[1], n_classes))

    device = chainer.get_device('@cupy:0' if args.num_gpus > 0 else '@numpy')
    device.use()
    model = MLP(args.units, n_classes)
    classifier = L.Classifier(model)  # adds softmax cross entropy loss + accuracy
    classifier.to_device(device)

    optimizer = chainer.optimizers.MomentumSGD(lr=args.learning_rate)
    optimizer.setup(classifier)

    train_iter = chainer.iterators.SerialIterator(
        chainer.datasets.TupleDataset(train_x, train_y), args.batch_size)
    test_iter = chainer.iterators.SerialIterator(
        chainer.datasets.TupleDataset(test_x, test_y), args.batch_size, repeat=False, shuffle=False)

    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epochs, 'epoch'), out=args.output_data_dir)
    trainer.extend(extensions.Evaluator(test_iter, classifier, device=device))
    log_report = extensions.LogReport()  # also writes output_data_dir/log
    trainer.extend(log_report)

    # One plain line per epoch (PrintReport would add terminal escape codes to the log).
    @training.make_extension(trigger=(1, 'epoch'), priority=training.PRIORITY_READER)
    def print_epoch(trainer):
        e = log_report.log[-1]
        print('epoch %d: loss %.4f accuracy %.4f test_loss %.4f test_accuracy %.4f'
              % (e['epoch'], e['main/loss'], e['main/accuracy'],
                 e['validation/main/loss'], e['validation/main/accuracy']), flush=True)
    trainer.extend(print_epoch)
    trainer.run()

    # Final evaluation on the whole test set.
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        logits = model(device.send(test_x))
        t = device.send(test_y)
        test_loss = float(F.softmax_cross_entropy(logits, t).array)
        test_acc = float(F.accuracy(logits, t).array)

    classifier.to_cpu()
    os.makedirs(args.model_dir, exist_ok=True)
    chainer.serializers.save_npz(os.path.join(args.model_dir, 'model.npz'), model)
    metrics = {'test_accuracy': test_acc, 'test_loss': test_loss,
               'epochs': args.epochs, 'seconds': round(time.time() - start, 3)}
    with open(os.path.join(args.output_data_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)

    print('final test accuracy: %.4f' % test_acc, flush=True)
