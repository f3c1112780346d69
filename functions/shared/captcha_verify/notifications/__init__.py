"""Notifications: the consumer of the submission bus that tells a person about each submission.

Every message is rendered here, in code, from the event's detail (email through SES, Slack,
Discord or a signed JSON webhook), never by an EventBridge input transformer, which does not
escape what it inserts.
"""
