#!/usr/bin/env python3
"""Deploys infra/template.yaml as a CloudFormation stack on an AWS endpoint (LocalStack) and
prints the stack's outputs as JSON, plus `ApiId` and `LocalApiUrl` (the API's address on
LocalStack).

The SAM template is transformed here with aws-sam-translator (the library `sam deploy` uses),
so the endpoint needs only plain CloudFormation; the code zip and the transformed template go
to an S3 bucket on the same endpoint. Called by localstack/deploy.sh; `make test` runs it
against moto, which builds what its CloudFormation knows and skips the rest.

    deploy.py --zip target/lambda/bootstrap/bootstrap.zip --stack portcullis-local \
        [--architecture x86_64] [--stage prod]
"""

import argparse
import json
import os
import pathlib
import sys

import boto3
import yaml
from botocore.exceptions import ClientError, WaiterError
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.yaml"


class NoManagedPolicies:
    """Every function has its own role in the template: no AWS managed policy to look up."""

    def load(self):
        return {}


def session():
    # The translator reads the region from a default boto3 session.
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    return boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


class CloudFormationLoader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: `2012-10-17` stays a string, not a date."""


CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def translated(code_bucket, code_key, parameters):
    sam = yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)
    sam["Globals"]["Function"]["CodeUri"] = f"s3://{code_bucket}/{code_key}"
    return transform(sam, parameters, NoManagedPolicies())


def deploy(cfn, stack, template_url, parameters):
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    args = dict(
        StackName=stack,
        TemplateURL=template_url,
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        cfn.describe_stacks(StackName=stack)
        exists = True
    except ClientError:
        exists = False
    if not exists:
        cfn.create_stack(**args)
        waiter = "stack_create_complete"
    else:
        try:
            cfn.update_stack(**args)
        except ClientError as e:
            if "No updates are to be performed" not in str(e):
                raise
            return
        waiter = "stack_update_complete"
    try:
        cfn.get_waiter(waiter).wait(StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": 300})
    except WaiterError:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        failed = [e for e in events if e["ResourceStatus"].endswith("FAILED")]
        for e in failed[:10]:
            print(f"  {e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}", file=sys.stderr)
        sys.exit(f"the stack {stack} did not deploy")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zip", required=True, help="the bootstrap zip (cargo lambda build --output-format zip)")
    ap.add_argument("--stack", default="portcullis-local")
    ap.add_argument("--stage", default="prod", choices=["prod", "staging"])
    ap.add_argument("--architecture", default="x86_64", choices=["x86_64", "arm64"])
    a = ap.parse_args()

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
    s = session()
    s3 = s.client("s3", endpoint_url=endpoint)
    cfn = s.client("cloudformation", endpoint_url=endpoint)
    bucket = f"{a.stack}-artifacts"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)

    code_key = "bootstrap.zip"
    s3.upload_file(a.zip, bucket, code_key)
    # Local stacks are throw-away: no deletion protection, short log retention.
    parameters = {
        "Stage": a.stage,
        "Architecture": a.architecture,
        "TableDeletionProtection": "false",
        "LogRetentionDays": "1",
    }
    template = translated(bucket, code_key, parameters)
    template_key = "template.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=json.dumps(template).encode())
    # Path-style S3 address: LocalStack and moto both map it onto their own S3.
    deploy(cfn, a.stack, f"https://s3.amazonaws.com/{bucket}/{template_key}", parameters)

    stack = cfn.describe_stacks(StackName=a.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {
        r.get("LogicalResourceId"): r.get("PhysicalResourceId")
        for r in cfn.describe_stack_resources(StackName=a.stack)["StackResources"]
    }
    outputs["Functions"] = sum(1 for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    api_id = resources.get("HttpApi")
    if api_id:
        outputs["ApiId"] = api_id
        # LocalStack serves an HTTP API's $default stage on this host name.
        outputs["LocalApiUrl"] = f"http://{api_id}.execute-api.localhost.localstack.cloud:4566"
    print(json.dumps(outputs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
