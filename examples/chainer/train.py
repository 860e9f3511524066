"""Chainer training script in the style of the SageMaker Chainer docs.

SageMaker (here: smlaunch) runs it as
    python train.py --epochs 5 --batch-size 64 --learning-rate 0.05
with the data and model locations passed through SM_* environment variables.

Under MPI (mpirun ... python -m mpi4py train.py ..., as the SageMaker Chainer
container runs it on several hosts or with sagemaker_process_slots_per_host) it
trains data-parallel with ChainerMN, as the SageMaker Chainer examples do: rank 0
loads the data and scatters it, gradients are averaged over all ranks, and only
rank 0 reports, prints the final accuracy and saves model.npz. MPI is on when
OMPI_COMM_WORLD_SIZE (or PMI_SIZE) is more than 1, or --communicator is given.
Every rank then writes output_data_dir/rank-<rank>.json (its place in the job).

Test hooks: --fail-on-rank N raises on world rank N before the communicator is
created; --sleep-on-rank N --sleep-seconds S makes rank N sleep S seconds at the
very end and then write output_data_dir/late-rank-N.txt.
"""
import argparse
import json
import os
import socket
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


def _env_int(names, default):
    for name in names:
        value = os.environ.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                pass
    return default


def mpi_world_size():
    """Number of MPI processes this one was started with (1 when not under mpirun)."""
    return _env_int(('OMPI_COMM_WORLD_SIZE', 'PMI_SIZE'), 1)


def mpi_world_rank():
    """This process's MPI rank, known before MPI is initialised (0 when not under mpirun)."""
    return _env_int(('OMPI_COMM_WORLD_RANK', 'PMI_RANK'), 0)


def ranks_from_processor_names(names, rank):
    """intra/inter ranks and sizes the way ChainerMN derives them.

    names[r] is MPI.Get_processor_name() of rank r. Processes with the same name
    share a node; nodes are numbered in the order of their lowest rank.
    """
    nodes = []
    for name in names:
        if name not in nodes:
            nodes.append(name)
    mine = names[rank]
    local = [r for r, name in enumerate(names) if name == mine]
    return {'intra_rank': local.index(rank), 'intra_size': len(local),
            'inter_rank': nodes.index(mine), 'inter_size': len(nodes)}


def rank_info(comm):
    """This rank's place in the job, as written to rank-<rank>.json (collective call)."""
    from mpi4py import MPI
    info = {'rank': comm.rank, 'size': comm.size}
    keys = ('intra_rank', 'intra_size', 'inter_rank', 'inter_size')
    values = {key: getattr(comm, key, None) for key in keys}
    if any(value is None for value in values.values()):
        mpi_comm = getattr(comm, 'mpi_comm', None) or MPI.COMM_WORLD
        values = ranks_from_processor_names(mpi_comm.allgather(MPI.Get_processor_name()),
                                            comm.rank)
    info.update((key, int(values[key])) for key in keys)
    info.update(hostname=socket.gethostname(), processor_name=MPI.Get_processor_name(),
                sm_current_host=os.environ.get('SM_CURRENT_HOST'))
    return info


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
    parser.add_argument('--batch-size', type=int, default=64)  # per process under MPI
    parser.add_argument('--learning-rate', type=float, default=0.05)
    parser.add_argument('--units', type=int, default=100)
    parser.add_argument('--communicator', type=str, default=None,
                        help="ChainerMN communicator; giving it turns ChainerMN on even without "
                             "MPI variables. Default under MPI: 'pure_nccl' with GPUs, else 'naive'.")
    parser.add_argument('--fail-on-rank', type=int, default=-1,
                        help='raise RuntimeError on this MPI world rank before training (test hook)')
    parser.add_argument('--sleep-on-rank', type=int, default=-1,
                        help='this rank sleeps --sleep-seconds at the very end (test hook)')
    parser.add_argument('--sleep-seconds', type=float, default=5.0)
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

    use_mpi = mpi_world_size() > 1 or bool(args.communicator)
    if use_mpi:
        import chainermn
        # An uncaught exception on one rank calls MPI_Abort, so the other ranks do not
        # hang in a collective (python -m mpi4py does the same; this covers plain python).
        if not os.environ.get('CHAINERMN_FORCE_ABORT_ON_EXCEPTION'):
            chainermn.global_except_hook.add_hook()

    if args.fail_on_rank >= 0 and mpi_world_rank() == args.fail_on_rank:
        raise RuntimeError('rank %d failed on purpose' % args.fail_on_rank)

    comm = None
    rank, size = 0, 1
    if use_mpi:
        communicator = args.communicator or ('pure_nccl' if args.num_gpus > 0 else 'naive')
        comm = chainermn.create_communicator(communicator)
        rank, size = comm.rank, comm.size
        info = rank_info(comm)
        os.makedirs(args.output_data_dir, exist_ok=True)
        with open(os.path.join(args.output_data_dir, 'rank-%d.json' % rank), 'w') as f:
            json.dump(info, f, indent=2)
        if rank == 0:
            print('ChainerMN: communicator %s, %d processes on %d host(s)'
                  % (communicator, size, info['inter_size']), flush=True)
    is_root = rank == 0

    start = time.time()
    np.random.seed(0)  # deterministic weight init and shuffling

    train = test = test_x = test_y = n_classes = None
    if is_root:  # under MPI rank 0 loads the data and scatters it
        train_x, train_y = load_npz_data(args.train, 'train.npz')
        test_x, test_y = load_npz_data(args.test, 'test.npz')
        n_classes = int(train_y.max()) + 1
        print('train: %d samples, test: %d samples, %d features, %d classes'
              % (len(train_x), len(test_x), train_x.shape[1], n_classes))
        train = chainer.datasets.TupleDataset(train_x, train_y)
        test = chainer.datasets.TupleDataset(test_x, test_y)
    if comm is not None:
        n_classes = comm.bcast_obj(n_classes)
        train = chainermn.scatter_dataset(train, comm, shuffle=True, seed=0)
        test = chainermn.scatter_dataset(test, comm, shuffle=True, seed=1)
        if is_root:
            print('scattered over %d processes: %d train and %d test samples each'
                  % (size, len(train), len(test)), flush=True)

    gpu = comm.intra_rank if comm is not None else 0  # one GPU per process on a host
    device = chainer.get_device('@cupy:%d' % gpu if args.num_gpus > 0 else '@numpy')
    device.use()
    model = MLP(args.units, n_classes)
    classifier = L.Classifier(model)  # adds softmax cross entropy loss + accuracy
    classifier.to_device(device)

    optimizer = chainer.optimizers.MomentumSGD(lr=args.learning_rate)
    if comm is not None:  # averages the gradients over all ranks (and broadcasts rank 0's weights)
        optimizer = chainermn.create_multi_node_optimizer(optimizer, comm)
    optimizer.setup(classifier)

    train_iter = chainer.iterators.SerialIterator(train, args.batch_size)
    test_iter = chainer.iterators.SerialIterator(test, args.batch_size, repeat=False, shuffle=False)

    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epochs, 'epoch'), out=args.output_data_dir)
    evaluator = extensions.Evaluator(test_iter, classifier, device=device)
    if comm is not None:  # averages the validation results over all ranks
        evaluator = chainermn.create_multi_node_evaluator(evaluator, comm)
    trainer.extend(evaluator)
    if is_root:
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

    if is_root:
        # Final evaluation on the whole test set (every rank holds the same weights).
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
        if comm is not None:
            metrics['processes'] = size
        with open(os.path.join(args.output_data_dir, 'metrics.json'), 'w') as f:
            json.dump(metrics, f, indent=2)

        print('final test accuracy: %.4f' % test_acc, flush=True)

    if args.sleep_on_rank >= 0 and rank == args.sleep_on_rank:
        time.sleep(args.sleep_seconds)
        os.makedirs(args.output_data_dir, exist_ok=True)
        with open(os.path.join(args.output_data_dir, 'late-rank-%d.txt' % rank), 'w') as f:
            f.write('rank %d of %d finished after sleeping %g s\n' % (rank, size, args.sleep_seconds))
        print('rank %d: wrote late-rank-%d.txt after sleeping %g s'
              % (rank, rank, args.sleep_seconds), flush=True)
