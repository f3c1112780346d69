"""`make deploy`: a short guided first deploy, then plain `sam deploy`."""
