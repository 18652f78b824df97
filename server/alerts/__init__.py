"""Alerts: traffic judged against the site's own weekly pattern (`detect`), and the optional channels the
stack sends them to (`channels`: a webhook signed with HMAC-SHA256, a Slack-compatible incoming webhook,
SMTP), configured in the meta DB (`config`), whose secrets the API never returns."""
