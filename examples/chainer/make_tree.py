#!/usr/bin/env python3
"""Write a fake SageMaker /opt/ml tree for the Chainer example under BASE.

Creates, as the SageMaker Python SDK / training platform would:
    BASE/input/config/hyperparameters.json   every value is JSON text in a string
    BASE/input/config/resourceconfig.json
    BASE/input/config/inputdataconfig.json
    BASE/input/data/train/train.npz, BASE/input/data/test/test.npz
    BASE/model/, BASE/output/

Usage: make_tree.py BASE [--epochs N] [--batch-size N] [--learning-rate F]
                         [--units N] [--samples N] [--source-dir DIR]
                         [--hosts N] [--current-host NAME] [--slots K]
                         [--communicator NAME] [--use-mpi true|false]
                         [--fail-on-rank N] [--sleep-on-rank N] [--sleep-seconds S]

--hosts N lists algo-1..algo-N in resourceconfig.json (current_host: --current-host,
default algo-1); run it once per host, with that host's --current-host, for a
multi-host job. --slots K sets sagemaker_process_slots_per_host (MPI processes per
host), --use-mpi sets sagemaker_use_mpi, and --communicator, --fail-on-rank,
--sleep-on-rank, --sleep-seconds become train.py hyperparameters. Each is left out
of hyperparameters.json unless given.
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate_data  # noqa: E402


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
    print('wrote %s' % path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('base')
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--learning-rate', type=float, default=0.05)
    parser.add_argument('--units', type=int, default=None, help='omitted from hyperparameters unless given')
    parser.add_argument('--samples', type=int, default=6000)
    parser.add_argument('--source-dir', default=HERE, help='directory holding train.py')
    parser.add_argument('--code-in-tree', action='store_true',
                        help='copy the code into BASE/code and name /opt/ml/code as the submit directory '
                             '(for a container, where the host path of --source-dir does not exist)')
    parser.add_argument('--job-name', default='chainer-example')
    parser.add_argument('--hosts', type=int, default=1, help='hosts algo-1..algo-N in resourceconfig.json')
    parser.add_argument('--current-host', default='algo-1', help='this host (one of the --hosts names)')
    parser.add_argument('--slots', type=int, default=None,
                        help='sagemaker_process_slots_per_host; omitted unless given')
    parser.add_argument('--use-mpi', choices=('true', 'false'), default=None,
                        help='sagemaker_use_mpi; omitted unless given')
    parser.add_argument('--communicator', default=None,
                        help="ChainerMN communicator hyperparameter ('naive', 'pure_nccl', ...); omitted unless given")
    parser.add_argument('--fail-on-rank', type=int, default=None, help='train.py test hook; omitted unless given')
    parser.add_argument('--sleep-on-rank', type=int, default=None, help='train.py test hook; omitted unless given')
    parser.add_argument('--sleep-seconds', type=float, default=None, help='train.py test hook; omitted unless given')
    args = parser.parse_args()
    if args.hosts < 1:
        parser.error('--hosts must be at least 1')
    hosts = ['algo-%d' % i for i in range(1, args.hosts + 1)]
    if args.current_host not in hosts:
        parser.error('--current-host %s is not one of %s' % (args.current_host, ', '.join(hosts)))
    if args.slots is not None and args.slots < 1:
        parser.error('--slots must be at least 1')

    base = os.path.abspath(args.base)
    config = os.path.join(base, 'input', 'config')
    for d in (config, os.path.join(base, 'model'), os.path.join(base, 'output')):
        os.makedirs(d, exist_ok=True)

    hyperparameters = {
        'epochs': args.epochs,
        'batch-size': args.batch_size,
        'learning-rate': args.learning_rate,
        'sagemaker_program': 'train.py',
        'sagemaker_submit_directory': ('/opt/ml/code' if args.code_in_tree
                                       else 'file://' + os.path.abspath(args.source_dir)),
        'sagemaker_region': 'us-west-2',
        'sagemaker_container_log_level': 20,
        'sagemaker_job_name': args.job_name,
    }
    if args.units is not None:
        hyperparameters['units'] = args.units
    if args.slots is not None:
        hyperparameters['sagemaker_process_slots_per_host'] = args.slots
    if args.use_mpi is not None:
        hyperparameters['sagemaker_use_mpi'] = args.use_mpi == 'true'
    for name in ('communicator', 'fail_on_rank', 'sleep_on_rank', 'sleep_seconds'):
        if getattr(args, name) is not None:
            hyperparameters[name.replace('_', '-')] = getattr(args, name)
    # The SDK JSON-encodes each value, then stores it as a string: 5 -> "5", "train.py" -> "\"train.py\"".
    write_json(os.path.join(config, 'hyperparameters.json'),
               {k: json.dumps(v) for k, v in hyperparameters.items()})
    write_json(os.path.join(config, 'resourceconfig.json'),
               {'current_host': args.current_host, 'hosts': hosts,
                'network_interface_name': 'eth0', 'current_instance_type': 'local'})
    write_json(os.path.join(config, 'inputdataconfig.json'),
               {'train': {'TrainingInputMode': 'File'}, 'test': {'TrainingInputMode': 'File'}})

    if args.code_in_tree:
        os.makedirs(os.path.join(base, 'code'), exist_ok=True)
        for name in ('train.py', 'requirements.txt'):
            if os.path.exists(os.path.join(args.source_dir, name)):
                shutil.copy(os.path.join(args.source_dir, name), os.path.join(base, 'code', name))
    data = os.path.join(base, 'input', 'data')
    generate_data.generate(os.path.join(data, 'train'), os.path.join(data, 'test'), args.samples)


if __name__ == '__main__':
    main()
