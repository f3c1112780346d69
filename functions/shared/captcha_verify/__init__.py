"""Server-side CAPTCHA verification for static-site forms, shared by every provider's Lambda."""
