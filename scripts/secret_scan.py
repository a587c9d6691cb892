#!/usr/bin/env python3
"""Post-suite leak check: no secret value the compatibility suite created may appear in the
clear in DynamoDB or in the logs. Stored credentials must be encrypted and keys hashed; logs
must carry neither.

    secret_scan.py --secrets FILE --logs DIR [--endpoint URL]

FILE is a JSON list of the secret values (tests/compat/conftest.py writes it). Every item of
every table on the endpoint is scanned as JSON text, and every line of every file under DIR.
Exits 1 naming where a secret was found (table and key, or file:line), showing only the first
six characters of the secret; also exits 1 when there is nothing to look for or nowhere to
look, since an empty scan proves nothing. Run it with a Python that has boto3
(.tools/moto/bin/python).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import boto3

MIN_SECRET_LENGTH = 8


def shown(secret: str) -> str:
    return f"{secret[:6]}…"


class Scanner:
    """Finds secrets in text and describes where, never printing a secret itself."""

    def __init__(self, secrets: list[str]):
        self.secrets = secrets
        self.findings: list[str] = []

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, shown(secret))
        return text

    def check(self, text: str, where: str) -> None:
        for secret in self.secrets:
            if secret in text:
                self.findings.append(f"{self.mask(where)}: {shown(secret)}")


def load_secrets(path: str) -> list[str]:
    values = json.loads(Path(path).read_text())
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        sys.exit(f"{path}: expected a JSON list of strings")
    if not values:
        sys.exit(f"{path}: the list of secrets is empty; a scan for nothing proves nothing")
    short = [v for v in values if len(v) < MIN_SECRET_LENGTH]
    if short:
        sys.exit(f"{path}: {len(short)} value(s) shorter than {MIN_SECRET_LENGTH} characters would match by chance")
    return sorted(set(values))


def as_text(item: dict) -> str:
    """An item (low-level attribute values) as JSON text. Binary attributes are decoded as
    Latin-1, byte for byte, so a secret stored as plain bytes is still found."""
    return json.dumps(item, default=lambda b: b.decode("latin-1"), ensure_ascii=False)


def scan_dynamodb(scanner: Scanner, endpoint: str) -> tuple[int, int]:
    """Scans every item of every table; returns (tables, items)."""
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
    tables = [t for page in client.get_paginator("list_tables").paginate() for t in page["TableNames"]]
    items = 0
    for table in tables:
        key_names = [k["AttributeName"] for k in client.describe_table(TableName=table)["Table"]["KeySchema"]]
        for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                items += 1
                key = {name: next(iter(item[name].values())) for name in key_names if name in item}
                scanner.check(as_text(item), f"table {table} item {json.dumps(key, default=str)}")
    return len(tables), items


def scan_logs(scanner: Scanner, logs_dir: Path) -> tuple[int, int]:
    """Scans every line of every file under the directory; returns (files, lines)."""
    files = lines = 0
    for path in sorted(p for p in logs_dir.rglob("*") if p.is_file()):
        files += 1
        with path.open(encoding="latin-1") as f:
            for number, line in enumerate(f, start=1):
                lines += 1
                scanner.check(line, f"{path}:{number}")
    return files, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secrets", required=True, help="JSON list of secret values")
    parser.add_argument("--logs", required=True, help="directory of log files")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="DynamoDB endpoint (default $AWS_ENDPOINT_URL)")
    args = parser.parse_args()
    if not args.endpoint:
        sys.exit("no --endpoint and no AWS_ENDPOINT_URL: refusing to scan real AWS")
    logs_dir = Path(args.logs)
    if not logs_dir.is_dir():
        sys.exit(f"{logs_dir} is not a directory")

    scanner = Scanner(load_secrets(args.secrets))
    tables, items = scan_dynamodb(scanner, args.endpoint)
    files, lines = scan_logs(scanner, logs_dir)
    print(f"checked {len(scanner.secrets)} secrets against {items} items in {tables} tables "
          f"and {lines} lines in {files} log files")
    if items == 0 or lines == 0:
        print("nothing to scan in DynamoDB or in the logs: the scan proves nothing")
        return 1
    if scanner.findings:
        print(f"{len(scanner.findings)} secret occurrence(s) found in the clear:")
        for finding in scanner.findings:
            print(f"  {finding}")
        return 1
    print("no secret found in the clear")
    return 0


if __name__ == "__main__":
    sys.exit(main())
