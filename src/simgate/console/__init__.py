"""The web console at /console (issue 19): server-rendered pages over the services."""
