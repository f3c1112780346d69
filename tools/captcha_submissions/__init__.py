"""``captcha-submissions``: list, export and erase the submissions in the submission store."""
