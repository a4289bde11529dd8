"""The deploy helper against botocore's Stubber: every AWS call and its parameters are checked
(there is no AWS here). Docker commands are recorded, not run: they would push to ECR."""

from __future__ import annotations

import base64

import boto3
import pytest
from botocore.stub import ANY, Stubber

from container.deploy import METRIC_DEFINITIONS, deploy_endpoint, push_image, start_training_job

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sentiment:v1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:"
ENDPOINT_ARN = ARN + "endpoint/sentiment"


def client(service: str):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_push_creates_the_repository_logs_in_tags_and_pushes():
    ecr = client("ecr")
    commands = []
    with Stubber(ecr) as stub:
        stub.add_client_error("describe_repositories", "RepositoryNotFoundException",
                              expected_params={"repositoryNames": ["sentiment"]})
        stub.add_response("create_repository", {"repository": {
            "repositoryUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sentiment"}},
            {"repositoryName": "sentiment"})
        stub.add_response("get_authorization_token", {"authorizationData": [{
            "authorizationToken": base64.b64encode(b"AWS:secret").decode(),
            "proxyEndpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}]}, {})
        image = push_image(ecr, "sentiment", "v1", "sentiment-sagemaker:latest",
                           lambda command, stdin: commands.append((command, stdin)))
        stub.assert_no_pending_responses()
    assert image == IMAGE
    assert commands == [
        (["docker", "login", "--username", "AWS", "--password-stdin",
          "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"], "secret"),
        (["docker", "tag", "sentiment-sagemaker:latest", IMAGE], None),
        (["docker", "push", IMAGE], None),
    ]


def test_training_job_with_string_hyperparameters_metrics_and_checkpoints():
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": ARN + "training-job/job-1"}, {
            "TrainingJobName": "job-1",
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                       "MetricDefinitions": METRIC_DEFINITIONS},
            "RoleArn": ROLE,
            "HyperParameters": {"algorithm": "lstm", "epochs": "3", "early_stopping": "False"},
            "InputDataConfig": [
                {"ChannelName": "train", "ContentType": "text/plain", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://b/train/", "S3DataDistributionType": "FullyReplicated"}}},
                {"ChannelName": "validation", "ContentType": "text/plain", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://b/validation/",
                    "S3DataDistributionType": "FullyReplicated"}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://b/output/"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "CheckpointConfig": {"S3Uri": "s3://b/checkpoints/", "LocalPath": "/opt/ml/checkpoints"},
        })
        arn = start_training_job(sagemaker, "job-1", IMAGE, ROLE,
                                 {"train": "s3://b/train/", "validation": "s3://b/validation/"}, "s3://b/output/",
                                 {"algorithm": "lstm", "epochs": 3, "early_stopping": False},
                                 checkpoint_s3="s3://b/checkpoints/")
        stub.assert_no_pending_responses()
    assert arn.endswith("training-job/job-1")
    assert {"Name": "validation:accuracy", "Regex": "validation:accuracy=([0-9.]+)"} in METRIC_DEFINITIONS


@pytest.mark.parametrize("exists", [False, True])
def test_endpoint_creates_model_and_config_then_creates_or_updates_the_endpoint(exists):
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        stub.add_response("create_model", {"ModelArn": ARN + "model/m"}, {
            "ModelName": ANY, "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz",
                                 "Environment": {"SENTIMENT_THRESHOLD": "0.8"}}})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": ARN + "endpoint-config/c"}, {
            "EndpointConfigName": ANY, "ProductionVariants": [{
                "VariantName": "AllTraffic", "ModelName": ANY, "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2}]})
        if exists:
            stub.add_response("describe_endpoint", {
                "EndpointName": "sentiment", "EndpointArn": ENDPOINT_ARN, "EndpointConfigName": "old",
                "EndpointStatus": "InService", "CreationTime": "2026-01-01", "LastModifiedTime": "2026-01-01"},
                {"EndpointName": "sentiment"})
            stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN},
                              {"EndpointName": "sentiment", "EndpointConfigName": ANY})
        else:
            stub.add_client_error("describe_endpoint", "ValidationException", 'Could not find endpoint "sentiment".',
                                  expected_params={"EndpointName": "sentiment"})
            stub.add_response("create_endpoint", {"EndpointArn": ENDPOINT_ARN},
                              {"EndpointName": "sentiment", "EndpointConfigName": ANY})
        arn = deploy_endpoint(sagemaker, "sentiment", IMAGE, ROLE, "s3://b/model.tar.gz",
                              {"SENTIMENT_THRESHOLD": "0.8"}, instance_count=2)
        stub.assert_no_pending_responses()
    assert arn == ENDPOINT_ARN
