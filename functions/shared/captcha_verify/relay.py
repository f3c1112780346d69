"""The relay: each committed submission, from the submission store's DynamoDB stream to the bus.

A function rather than an EventBridge Pipe: a Pipe targeting a bus puts the whole stream record
as the event's detail unless an input template reshapes it, and the committed detail is a string
attribute that an input template can only insert as a string, not as the object the contract
names. Visitor text must never pass through an input transformer anyway: this puts the stored
detail exactly as committed, so the event keeps its shape and its `submission_id`.

At least once: the event source mapping only sends committed items (its filter), a record whose
put fails is reported as a batch item failure, and Lambda retries the batch from it (records after
it in the batch are put again: the same detail, the same `submission_id`); what still fails after
the mapping's retries goes to the relay's dead-letter queue, and the item stays in the store.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from captcha_verify.config import ConfigurationError
from captcha_verify.delivery import DeliveryFailed, SubmissionBus
from captcha_verify.telemetry import SUBMISSION_DELIVERED, SUBMISSION_RELAY_FAILED


def relay_record(
    record: DynamoDBRecord, bus: SubmissionBus, logger: Logger, metrics: EphemeralMetrics
) -> None:
    """Puts one committed item's detail; raises so the batch reports this record as failed."""
    image = record.dynamodb.new_image if record.dynamodb else {}
    detail = image.get("detail")
    submission_id = image.get("submission_id")
    if not isinstance(detail, str):
        # Not a committed submission (the mapping's filter lets none through): nothing to put.
        logger.warning("stream record without a detail", extra={"submission_id": submission_id})
        return
    try:
        event_id = bus.put_serialised(detail)
    except DeliveryFailed as failure:
        logger.error(
            "submission not relayed", extra={"submission_id": submission_id, "reason": failure.reason}
        )
        metrics.add_metric(name=SUBMISSION_RELAY_FAILED, unit=MetricUnit.Count, value=1)
        raise
    logger.info("submission relayed", extra={"submission_id": submission_id, "event_id": event_id})
    metrics.add_metric(name=SUBMISSION_DELIVERED, unit=MetricUnit.Count, value=1)


def build_relay_handler(bus: SubmissionBus | None = None) -> Any:
    bus_name = os.environ.get("SUBMISSION_BUS_NAME", "").strip()
    if bus is None and not bus_name:
        raise ConfigurationError("SUBMISSION_BUS_NAME is required")
    bus = bus or SubmissionBus(bus_name)
    logger = Logger()
    metrics = EphemeralMetrics()
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    @logger.inject_lambda_context
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return process_partial_response(  # type: ignore[return-value]
            event=event,
            record_handler=lambda record: relay_record(record, bus, logger, metrics),
            processor=processor,
            context=context,
        )

    return lambda_handler
