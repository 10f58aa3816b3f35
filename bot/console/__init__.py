"""The console front end: the same handlers as Slack, in a terminal or a pipe."""
