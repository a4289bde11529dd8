"""Ship the image to AWS: push it to ECR, then start a training job or deploy an endpoint.

    python -m container.deploy push --repository sentiment --tag v1
    python -m container.deploy train --image URI --role ARN --train s3://b/train/ \\
        [--validation s3://b/validation/] --output s3://b/output/ [-p epochs=10 ...]
    python -m container.deploy endpoint --image URI --role ARN --model-data s3://b/output/job/output/model.tar.gz \\
        --name sentiment [--instance-type ml.m5.large] [--env SENTIMENT_THRESHOLD=0.8 ...]

Runs on your machine with your AWS credentials (boto3's usual configuration);
the region is boto3's default unless --region is given.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import time
from collections.abc import Callable

from container.training import DATA_CHANNELS, channel_flag

# SageMaker reads these from the training log (see container/training.py and model/evaluation.py).
METRIC_DEFINITIONS = [
    {"Name": name, "Regex": f"{name}=([0-9.]+)"}
    for name in ("validation:accuracy", "validation:macro_f1", "test:accuracy", "test:macro_f1", "train:loss")
]


def push_image(ecr, repository: str, tag: str, local_image: str,
               run: Callable[[list[str], str | None], None]) -> str:
    """Create the ECR repository if needed, log docker in, tag and push; return the image URI."""
    try:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException:
        uri = ecr.create_repository(repositoryName=repository)["repository"]["repositoryUri"]
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    run(["docker", "login", "--username", user, "--password-stdin", auth["proxyEndpoint"]], password)
    image = f"{uri}:{tag}"
    run(["docker", "tag", local_image, image], None)
    run(["docker", "push", image], None)
    return image


def start_training_job(sagemaker, name: str, image: str, role: str, channels: dict[str, str], output: str,
                       hyperparameters: dict[str, str], instance_type: str = "ml.m5.xlarge",
                       checkpoint_s3: str | None = None, max_seconds: int = 24 * 3600) -> str:
    """Create a training job running `docker run IMAGE train`; return its ARN."""
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                   "MetricDefinitions": METRIC_DEFINITIONS},
        "RoleArn": role,
        # SageMaker passes every hyperparameter as a string; train parses them.
        "HyperParameters": {key: str(value) for key, value in hyperparameters.items()},
        "InputDataConfig": [{"ChannelName": channel, "ContentType": "text/plain",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                                             "S3DataDistributionType": "FullyReplicated"}}}
                            for channel, uri in channels.items()],
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_seconds},
    }
    if checkpoint_s3:
        request["CheckpointConfig"] = {"S3Uri": checkpoint_s3, "LocalPath": "/opt/ml/checkpoints"}
    return sagemaker.create_training_job(**request)["TrainingJobArn"]


def deploy_endpoint(sagemaker, name: str, image: str, role: str, model_data: str, environment: dict[str, str],
                    instance_type: str = "ml.m5.large", instance_count: int = 1) -> str:
    """Create the model and an endpoint configuration named after `name` plus a timestamp, then create
    the endpoint `name`, or update it to the new configuration when it exists; return its ARN."""
    version = f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    sagemaker.create_model(ModelName=version, ExecutionRoleArn=role,
                           PrimaryContainer={"Image": image, "ModelDataUrl": model_data, "Environment": environment})
    sagemaker.create_endpoint_config(EndpointConfigName=version, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": version, "InstanceType": instance_type,
        "InitialInstanceCount": instance_count}])
    try:
        sagemaker.describe_endpoint(EndpointName=name)
    except sagemaker.exceptions.ClientError as error:
        if "Could not find endpoint" not in str(error):
            raise
        return sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=version)["EndpointArn"]
    return sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=version)["EndpointArn"]


def _run(command: list[str], stdin: str | None) -> None:
    subprocess.run(command, input=stdin, text=True, check=True)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {item!r}: expected NAME=VALUE")
        pairs[key] = value
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m container.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", help="AWS region (default: boto3's)")
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="push the local image to ECR")
    push.add_argument("--repository", required=True)
    push.add_argument("--tag", default="latest")
    push.add_argument("--local-image", default="sentiment-sagemaker:latest")
    train = commands.add_parser("train", help="start a SageMaker training job")
    endpoint = commands.add_parser("endpoint", help="create or update a real-time endpoint")
    for command in (train, endpoint):
        command.add_argument("--image", required=True, help="the ECR image URI `push` printed")
        command.add_argument("--role", required=True, help="SageMaker execution role ARN")
    train.add_argument("--name", default=f"sentiment-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    for channel in DATA_CHANNELS:
        train.add_argument(channel_flag(channel), dest=channel, metavar="S3_URI", required=channel == "train")
    train.add_argument("--output", required=True, metavar="S3_URI")
    train.add_argument("--checkpoints", metavar="S3_URI", help="enables resumable (spot) training")
    train.add_argument("--instance-type", default="ml.m5.xlarge")
    train.add_argument("-p", "--hyperparameter", action="append", default=[], metavar="NAME=VALUE")
    endpoint.add_argument("--name", required=True)
    endpoint.add_argument("--model-data", required=True, metavar="S3_URI", help="the job's model.tar.gz")
    endpoint.add_argument("--instance-type", default="ml.m5.large")
    endpoint.add_argument("--instance-count", type=int, default=1)
    endpoint.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.Session(region_name=args.region)
    if args.command == "push":
        print(push_image(session.client("ecr"), args.repository, args.tag, args.local_image, _run))
    elif args.command == "train":
        channels = {c: getattr(args, c) for c in DATA_CHANNELS if getattr(args, c)}
        print(start_training_job(session.client("sagemaker"), args.name, args.image, args.role, channels,
                                 args.output, _pairs(args.hyperparameter, "-p"), args.instance_type,
                                 args.checkpoints))
    else:
        print(deploy_endpoint(session.client("sagemaker"), args.name, args.image, args.role, args.model_data,
                              _pairs(args.env, "--env"), args.instance_type, args.instance_count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
