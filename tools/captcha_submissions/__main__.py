"""``python -m captcha_submissions``."""

from captcha_submissions.cli import main

raise SystemExit(main())
