"""Operator's stats command over the CAPTCHA challenge log table (``captcha-stats``)."""
