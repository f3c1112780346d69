from captcha_deploy.cli import main

raise SystemExit(main())
