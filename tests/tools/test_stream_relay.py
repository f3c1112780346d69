"""The local stand-in for the store's stream mapping: held by `paused()`, it sends nothing, and
what was committed meanwhile goes out on the first pass after."""

from __future__ import annotations

import threading
from typing import Any

from captcha_local.stream_relay import StreamRelay

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/SubmissionTable/stream/1"


class OneShardStream:
    """A stream with one shard whose records are appended by the test."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.read = 0

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"LatestStreamArn": ARN}}

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **_: Any) -> dict[str, str]:
        return {"ShardIterator": "it"}

    def get_records(self, ShardIterator: str) -> dict[str, Any]:
        fresh, self.read = self.records[self.read :], len(self.records)
        return {"Records": fresh, "NextShardIterator": "it"}

    def commit(self, sequence: str) -> None:
        self.records.append(
            {
                "eventID": sequence,
                "eventName": "MODIFY",
                "dynamodb": {"SequenceNumber": sequence, "ApproximateCreationDateTime": 0},
            }
        )


def test_a_paused_relay_sends_nothing_and_the_next_pass_sends_what_waited() -> None:
    stream, sent = OneShardStream(), []
    relay = StreamRelay(stream, stream, "SubmissionTable", lambda event: sent.append(event), patterns=[{}])
    stream.commit("1")
    with relay.paused():
        pumping = threading.Thread(target=relay.pump)
        pumping.start()
        pumping.join(timeout=0.5)
        assert pumping.is_alive() and sent == []  # the pass waits for the hold to end
    pumping.join(timeout=5)
    assert not pumping.is_alive()
    assert [record["dynamodb"]["SequenceNumber"] for event in sent for record in event["Records"]] == ["1"]
