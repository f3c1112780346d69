"""A stand-in for Lambda's DynamoDB Streams event source mapping, on moto's stream: it feeds the
relay function the store's committed items as Lambda would, so local mode and the tests deliver
through the real relay code.

What it keeps of Lambda's behaviour (Lambda developer guide, "Using AWS Lambda with Amazon
DynamoDB": batching, filtering, partial batch responses, error handling):
- records of a shard in order, in batches of at most the mapping's BatchSize;
- the mapping's filter pattern: a record that does not match is dropped, never sent;
- the event shape: {"Records": [{eventID, eventName, eventSource, awsRegion, eventSourceARN,
  dynamodb: {...}}]}, ApproximateCreationDateTime in epoch seconds;
- a handler that raises retries the whole batch; `batchItemFailures` retries from the lowest
  failed sequence number, so records after it are sent again (at least once);
- a batch that fails stays at the head of the shard: nothing after it is sent until it succeeds.
What it leaves out: bisecting, the retry limit and record age (the OnFailure destination), and
parallel shards. Only exact-value filter patterns are understood; anything else raises.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]


def matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """An EventBridge-style pattern of exact values (lists of allowed strings, nested objects)."""
    if not isinstance(value, Mapping):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, Mapping):
            if not matches(expected, value.get(key)):
                return False
        elif isinstance(expected, list) and all(isinstance(v, str | int | float | bool) for v in expected):
            if value.get(key) not in expected:
                return False
        else:
            raise ValueError(f"unsupported filter pattern at {key!r}")
    return True


def mapping_of(template: Mapping[str, Any], mapping: str) -> Mapping[str, Any]:
    """The event source mapping's properties, as the template declares them."""
    return template["Resources"][mapping]["Properties"]


@dataclass
class StreamRelay:
    """Reads one table's stream and invokes the relay with what Lambda would send it."""

    dynamodb: Any
    streams: Any
    table_name: str
    invoke: Invoke
    patterns: list[Mapping[str, Any]]
    batch_size: int = 10
    _iterators: dict[str, str] = field(default_factory=dict)
    _pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_template(
        cls, template: Mapping[str, Any], dynamodb: Any, streams: Any, table_name: str, invoke: Invoke
    ) -> StreamRelay:
        properties = mapping_of(template, "SubmissionRelayFunctionCommitted")
        return cls(
            dynamodb=dynamodb,
            streams=streams,
            table_name=table_name,
            invoke=invoke,
            patterns=[json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]],
            batch_size=int(properties["BatchSize"]),
        )

    def pump(self) -> int:
        """Sends every record available now, batch by batch; the number of records the relay took.
        A failed batch stays pending for the next pump (as Lambda retries it)."""
        with self._lock:
            taken = 0
            arn = self.dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
            for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
                taken += self._pump_shard(arn, shard["ShardId"])
            return taken

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No pass runs while this is held; records committed meanwhile wait in the stream, as they
        do while Lambda's poller is disabled."""
        with self._lock:
            yield

    def _pump_shard(self, arn: str, shard_id: str) -> int:
        pending = self._pending.setdefault(shard_id, [])
        if shard_id not in self._iterators:
            self._iterators[shard_id] = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        reply = self.streams.get_records(ShardIterator=self._iterators[shard_id])
        self._iterators[shard_id] = reply.get("NextShardIterator") or self._iterators[shard_id]
        pending.extend(
            record
            for record in (_as_lambda_record(r, arn) for r in reply["Records"])
            if any(matches(p, record) for p in self.patterns)
        )
        taken = 0
        while pending:
            batch = pending[: self.batch_size]
            done = self._deliver(batch)
            del pending[:done]
            taken += done
            if done < len(batch):
                break
        return taken

    def _deliver(self, batch: list[dict[str, Any]]) -> int:
        """How many records at the head of the batch are done."""
        try:
            answer = self.invoke({"Records": batch})
        except Exception:
            return 0
        if not isinstance(answer, Mapping):
            return len(batch)
        if "errorType" in answer:  # the function raised (as the local runner reports it)
            return 0
        failed = {str(item.get("itemIdentifier")) for item in answer.get("batchItemFailures") or []}
        for index, record in enumerate(batch):
            if record["dynamodb"]["SequenceNumber"] in failed:
                return index
        return len(batch)

    def start(self, interval_seconds: float = 0.2) -> Callable[[], None]:
        """Pumps in the background until the returned stop() is called."""
        stopped = threading.Event()

        def run() -> None:
            while not stopped.wait(interval_seconds):
                try:
                    self.pump()
                except Exception as error:
                    print(f"[stream relay] {type(error).__name__}: {error}", flush=True)

        thread = threading.Thread(target=run, name="stream-relay", daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            thread.join(timeout=5)

        return stop


def _as_lambda_record(record: Mapping[str, Any], arn: str) -> dict[str, Any]:
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "eventSourceARN": arn,
        "dynamodb": dynamodb,
    }
