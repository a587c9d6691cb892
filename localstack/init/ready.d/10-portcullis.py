#!/usr/bin/env python3
"""LocalStack ready hook: creates the Portcullis table (from infra/table.json, the one source
of the table definition) and the KMS key alias, as the local bootstrap and the template do.

Inside the LocalStack container it talks to LocalStack itself; `make test` runs it against
moto (AWS_ENDPOINT_URL) so it cannot rot. Idempotent.
"""

import json
import os
import pathlib
import sys

import boto3

HERE = pathlib.Path(__file__).resolve()
DEFINITION = pathlib.Path(os.environ.get("PORTCULLIS_TABLE_DEFINITION", "/etc/portcullis/table.json"))
if not DEFINITION.exists():  # running from a checkout
    DEFINITION = HERE.parents[3] / "infra" / "table.json"


def main() -> int:
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
    region = os.environ.get("AWS_REGION", "us-east-1")
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=region,
    )
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    kms = session.client("kms", endpoint_url=endpoint)

    definition = json.loads(DEFINITION.read_text())
    table = os.environ.get("PORTCULLIS_TABLE", definition["TableName"])
    ttl = definition.pop("TimeToLiveSpecification")
    definition["TableName"] = table
    if table not in ddb.list_tables()["TableNames"]:
        ddb.create_table(**definition)
        ddb.get_waiter("table_exists").wait(TableName=table)
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
        print(f"created table {table}")
    else:
        print(f"table {table} exists")

    alias = os.environ.get("PORTCULLIS_KMS_KEY_ID", "alias/portcullis")
    if alias.startswith("alias/"):
        aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
        if alias not in aliases:
            key_id = kms.create_key(Description="Portcullis data-key wrapping key")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
            print(f"created KMS key {key_id} as {alias}")
        else:
            print(f"KMS alias {alias} exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
