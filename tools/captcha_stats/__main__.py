"""``python -m captcha_stats``."""

from captcha_stats.cli import main

raise SystemExit(main())
