"""Telling managers: each new alert published to an Amazon SNS topic (`sns:ARN`) or POSTed as JSON to
a webhook (`https://…`).

"New" is kept in a state file of alert ids already handled, so a report run again on grown data
sends only episodes it has not sent before. Only alerts that need attention (open, or raised in the
last 14 days) are sent; older history found on a first run is recorded as handled, not sent.
boto3 reads credentials, region and endpoint (AWS_ENDPOINT_URL_SNS) the usual way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from checkins.http import Retry, post

SUBJECT_LIMIT = 100  # SNS refuses longer subjects


def check_target(target: str) -> str:
    """`target` if it is `sns:arn:aws:sns:…` or an http(s) URL, else ValueError (at start, not after scoring)."""
    if target.startswith("sns:arn:") and target.count(":") >= 6:
        return target
    if target.startswith(("http://", "https://")):
        return target
    raise ValueError(f"--notify {target!r}: expected sns:arn:aws:sns:REGION:ACCOUNT:TOPIC or an http(s) URL")


def read_state(path: Path) -> set[str]:
    return set(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else set()


def notify(records: Iterable[dict], targets: list[str], state: Path, retry: Retry | None = None) -> int:
    """Send every record not in `state` that needs attention to every target; return how many were sent.

    The state is saved after each record, so a failure midway does not send the earlier ones twice.
    """
    handled = read_state(state)
    state.parent.mkdir(parents=True, exist_ok=True)
    sent = 0
    clients: dict[str, object] = {}
    for record in records:
        if record["id"] in handled:
            continue
        if record["needs_attention"]:
            for target in targets:
                _send(record, target, clients, retry)
            sent += 1
        handled.add(record["id"])
        state.write_text(json.dumps(sorted(handled)), encoding="utf-8")
    return sent


def _send(record: dict, target: str, clients: dict, retry: Retry | None) -> None:
    body = json.dumps(record, ensure_ascii=False)
    if target.startswith("sns:"):
        arn = target.removeprefix("sns:")
        if arn not in clients:
            import boto3  # only this path needs it

            clients[arn] = boto3.client("sns", region_name=arn.split(":")[3])
        subject = f"Check-in alert: {record['rule']} for {record['participant']} ({record['group']})"
        clients[arn].publish(TopicArn=arn, Subject=subject[:SUBJECT_LIMIT], Message=body,
                             MessageAttributes={"rule": {"DataType": "String", "StringValue": record["rule"]}})
    else:
        post(target, body.encode(), {"Content-Type": "application/json"}, retry)
