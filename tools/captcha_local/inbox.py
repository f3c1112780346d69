"""The local submission bus and its inbox: the template's rules on moto, a queue standing in for
each target (email, webhook), and what each target would receive, rendered with the template's
own input transformers.

Nothing here restates a rule or a message: the event patterns and the input transformers are
read from template.yaml, so the inbox shows the text users' inboxes will get.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from captcha_local.terminal import Terminal

# Template rule -> the local queue standing in for its target.
RULE_TARGETS = {"NotificationRule": "email", "WebhookRule": "webhook"}
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def lookup(event: Mapping[str, Any], path: str) -> Any:
    """The value at a JSONPath of the simple form EventBridge input paths use ($.detail.a.b)."""
    value: Any = event
    for part in path.removeprefix("$").strip(".").split("."):
        if not part:
            continue
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def render(transformer: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """What EventBridge hands the target for this InputTransformer.

    A template in double quotes is text: placeholders become their value (objects as JSON), and the
    quotes go. Otherwise it is JSON: a placeholder inside a JSON string is its escaped text, one
    outside becomes its JSON value.
    """
    values = {name: lookup(event, path) for name, path in transformer["InputPathsMap"].items()}
    template: str = transformer["InputTemplate"]
    text = template.startswith('"') and template.endswith('"')
    pieces: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match[1] not in values:
            continue
        before = template[position : match.start()]
        pieces.append(before)
        value = values[match[1]]
        as_text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        inside_string = _open_quote(template[: match.start()])
        if text:
            pieces.append(as_text)
        elif inside_string:
            pieces.append(json.dumps(as_text, ensure_ascii=False)[1:-1])
        else:
            pieces.append(json.dumps(value, ensure_ascii=False))
        position = match.end()
    pieces.append(template[position:])
    rendered = "".join(pieces)
    return rendered[1:-1] if text else rendered


def _open_quote(prefix: str) -> bool:
    """Whether a JSON text ending here is inside a string (an odd number of unescaped quotes)."""
    return len(re.findall(r'(?<!\\)"', prefix)) % 2 == 1


@dataclass(frozen=True)
class Delivery:
    target: str  # "email" or "webhook"
    event: dict[str, Any]
    rendered: str


@dataclass
class SubmissionInbox:
    """The bus, the rules and a poller that keeps what each stand-in target received, newest first."""

    resources: Mapping[str, Any]  # the template's Resources
    bus_name: str
    aws_client: Callable[[str], Any]
    # The terminal's own line writer, which escapes what the visitor typed (field names, origin).
    announce: Callable[[str], None] = field(default_factory=lambda: Terminal().notice)
    deliveries: list[Delivery] = field(default_factory=list, init=False)
    _queues: dict[str, str] = field(default_factory=dict, init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def create(self) -> None:
        events, sqs = self.aws_client("events"), self.aws_client("sqs")
        events.create_event_bus(Name=self.bus_name)
        for rule_id, target in RULE_TARGETS.items():
            url = sqs.create_queue(QueueName=f"inbox-{target}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self._queues[target] = url
            rule = self.resources[rule_id]["Properties"]
            events.put_rule(
                Name=rule_id, EventBusName=self.bus_name, EventPattern=json.dumps(rule["EventPattern"])
            )
            events.put_targets(Rule=rule_id, EventBusName=self.bus_name, Targets=[{"Id": target, "Arn": arn}])

    def start(self) -> Callable[[], None]:
        """Polls the queues in a thread; returns the function that stops it."""
        thread = threading.Thread(target=self._poll, name="inbox", daemon=True)
        thread.start()

        def stop() -> None:
            self._stopped.set()
            thread.join(timeout=5)

        return stop

    def snapshot(self) -> list[dict[str, Any]]:
        """One entry per submission, newest first: the event detail and what each target got."""
        entries: dict[str, dict[str, Any]] = {}
        with self._lock:
            deliveries = list(self.deliveries)
        for delivery in deliveries:
            detail = delivery.event.get("detail", {})
            entry = entries.setdefault(
                detail.get("submission_id", delivery.event.get("id")), {"detail": detail}
            )
            entry[delivery.target] = delivery.rendered
        return list(entries.values())[::-1]

    def _poll(self) -> None:
        sqs = self.aws_client("sqs")
        while not self._stopped.is_set():
            for target, url in self._queues.items():
                for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                    self._receive(target, json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            self._stopped.wait(0.2)

    def _receive(self, target: str, event: dict[str, Any]) -> None:
        rule_id = next(rule for rule, name in RULE_TARGETS.items() if name == target)
        [template_target] = self.resources[rule_id]["Properties"]["Targets"]
        delivery = Delivery(target, event, render(template_target["InputTransformer"], event))
        with self._lock:
            self.deliveries.append(delivery)
        detail = event.get("detail", {})
        if target == "email":
            # One line per delivered submission; field names only, as in the functions' own logs.
            fields = ", ".join(detail.get("form", {})) or "no fields"
            self.announce(
                f"[inbox] submission {detail.get('submission_id')} from {detail.get('origin')} "
                f"via {detail.get('provider')} delivered ({fields})"
            )
