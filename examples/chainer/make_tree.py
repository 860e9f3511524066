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
"""
import argparse
import json
import os
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
    parser.add_argument('--job-name', default='chainer-example')
    args = parser.parse_args()

    base = os.path.abspath(args.base)
    config = os.path.join(base, 'input', 'config')
    for d in (config, os.path.join(base, 'model'), os.path.join(base, 'output')):
        os.makedirs(d, exist_ok=True)

    hyperparameters = {
        'epochs': args.epochs,
        'batch-size': args.batch_size,
        'learning-rate': args.learning_rate,
        'sagemaker_program': 'train.py',
        'sagemaker_submit_directory': 'file://' + os.path.abspath(args.source_dir),
        'sagemaker_region': 'us-west-2',
        'sagemaker_container_log_level': 20,
        'sagemaker_job_name': args.job_name,
    }
    if args.units is not None:
        hyperparameters['units'] = args.units
    # The SDK JSON-encodes each value, then stores it as a string: 5 -> "5", "train.py" -> "\"train.py\"".
    write_json(os.path.join(config, 'hyperparameters.json'),
               {k: json.dumps(v) for k, v in hyperparameters.items()})
    write_json(os.path.join(config, 'resourceconfig.json'),
               {'current_host': 'algo-1', 'hosts': ['algo-1'],
                'network_interface_name': 'eth0', 'current_instance_type': 'local'})
    write_json(os.path.join(config, 'inputdataconfig.json'),
               {'train': {'TrainingInputMode': 'File'}, 'test': {'TrainingInputMode': 'File'}})

    data = os.path.join(base, 'input', 'data')
    generate_data.generate(os.path.join(data, 'train'), os.path.join(data, 'test'), args.samples)


if __name__ == '__main__':
    main()
